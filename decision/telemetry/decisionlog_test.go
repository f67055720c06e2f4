package telemetry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/verdict-authz/verdict/decision"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// syncBuffer is a bytes.Buffer safe for the writer goroutine and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func sampleRequest() *decision.Request {
	return &decision.Request{
		Tenant: "bank", Key: "4ea5db4c", Member: "user_a",
		Action:   "finmars:Portfolio:retrieve",
		Resource: &decision.Resource{FRN: "frn:finmars:portfolios:portfolio:bonds"},
		Context:  map[string]any{"ip": "10.0.0.1", "token": "s3cret", "nested": map[string]any{"token": "also"}},
	}
}

func sampleDecision(id string) *decision.Decision {
	st := 0
	return &decision.Decision{
		DecisionID: id, Allow: false, Status: 403, Tenant: "bank", Action: "finmars:Portfolio:retrieve",
		Visibility: "none", Fields: []string{},
		Reasons: []decision.Reason{
			{Layer: "iam", Code: "iam.explicit_deny", Effect: "deny", Message: "denied by statement", Policy: "p1", Statement: &st},
		},
		Revision: map[string]string{"demo": "r1"},
	}
}

func closeLog(t *testing.T, l *DecisionLog) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestDecisionLogLineHasTheDocumentedFields(t *testing.T) {
	var out syncBuffer
	l, err := NewDecisionLog(&out, DecisionLogOptions{Log: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(t.Context(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	start := time.Date(2026, 11, 22, 10, 0, 0, 123, time.UTC)
	l.Log(ctx, sampleRequest(), sampleDecision("d-1"), start, 1500*time.Microsecond)
	closeLog(t, l)

	lines := out.lines(t)
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want 1", len(lines))
	}
	line := lines[0]
	for _, k := range []string{"decision_id", "time", "trace_id", "span_id", "input", "result", "reasons", "revisions", "duration"} {
		if _, ok := line[k]; !ok {
			t.Errorf("line lacks %q: %v", k, line)
		}
	}
	if line["decision_id"] != "d-1" || line["trace_id"] != tid.String() || line["span_id"] != sid.String() {
		t.Errorf("ids: %v", line)
	}
	if line["time"] != "2026-11-22T10:00:00.000000123Z" {
		t.Errorf("time = %v", line["time"])
	}
	if line["duration"] != 0.0015 {
		t.Errorf("duration = %v, want 0.0015 (seconds)", line["duration"])
	}
	if in := line["input"].(map[string]any); in["member"] != "user_a" || in["tenant"] != "bank" {
		t.Errorf("input = %v", in)
	}
	if res := line["result"].(map[string]any); res["allow"] != false || res["status"] != 403.0 {
		t.Errorf("result = %v", res)
	}
	if revs := line["revisions"].(map[string]any); revs["demo"] != "r1" {
		t.Errorf("revisions = %v", revs)
	}
	if _, ok := line["state_revision"]; ok {
		t.Errorf("a decision without shared state logs a state_revision: %v", line)
	}
	if l.Written() != 1 || l.Dropped() != 0 {
		t.Errorf("written %d dropped %d", l.Written(), l.Dropped())
	}
}

func TestDecisionLogMasksConfiguredPaths(t *testing.T) {
	var out syncBuffer
	l, err := NewDecisionLog(&out, DecisionLogOptions{Log: quietLog, Mask: []string{
		"/input/context/token", // the example
		"/input/key",
		"/input/context/*/token", // a wildcard over keys
		"/reasons/*/message",     // a wildcard over list elements
		"/input/absent/deeper",   // a path that reaches nothing changes nothing
	}})
	if err != nil {
		t.Fatal(err)
	}
	req := sampleRequest()
	l.Log(t.Context(), req, sampleDecision("d-2"), time.Now(), time.Millisecond)
	closeLog(t, l)

	line := out.lines(t)[0]
	in := line["input"].(map[string]any)
	ctx := in["context"].(map[string]any)
	if ctx["token"] != MaskedValue || in["key"] != MaskedValue {
		t.Errorf("token or key not masked: %v", in)
	}
	if ctx["nested"].(map[string]any)["token"] != MaskedValue {
		t.Errorf("wildcard mask missed: %v", ctx)
	}
	if ctx["ip"] != "10.0.0.1" || in["member"] != "user_a" {
		t.Errorf("unmasked values changed: %v", in)
	}
	if _, ok := in["absent"]; ok {
		t.Errorf("a mask created a field: %v", in)
	}
	reason := line["reasons"].([]any)[0].(map[string]any)
	if reason["message"] != MaskedValue || reason["code"] != "iam.explicit_deny" {
		t.Errorf("reason = %v", reason)
	}
	// The request the caller holds is untouched.
	if req.Context.(map[string]any)["token"] != "s3cret" || req.Key != "4ea5db4c" {
		t.Errorf("masking changed the caller's request: %+v", req)
	}
	if !strings.Contains(out.buf.String(), `"decision_id":"d-2"`) {
		t.Errorf("decision_id lost")
	}
}

func TestDecisionLogRejectsBadMasks(t *testing.T) {
	for _, m := range []string{"input/key", "/", "/input//key", "/decision_id", "/trace_id"} {
		if _, err := NewDecisionLog(io.Discard, DecisionLogOptions{Mask: []string{m}}); err == nil {
			t.Errorf("mask %q accepted", m)
		}
	}
}

// gatedWriter blocks every Write until released, and says when the first
// Write started.
type gatedWriter struct {
	started chan struct{}
	release chan struct{}
	once    sync.Once
	out     syncBuffer
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	g.once.Do(func() { close(g.started) })
	<-g.release
	return g.out.Write(p)
}

func TestDecisionLogDropsAndCountsWhenFullAndNeverBlocks(t *testing.T) {
	const buffer, extra = 4, 10
	g := &gatedWriter{started: make(chan struct{}), release: make(chan struct{})}
	m := NewMetrics()
	l, err := NewDecisionLog(g, DecisionLogOptions{Buffer: buffer, Metrics: m, Log: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	req, ctx := sampleRequest(), t.Context()
	// The first line reaches the writer, which then hangs (a slow disk).
	l.Log(ctx, req, sampleDecision("first"), time.Now(), time.Millisecond)
	select {
	case <-g.started:
	case <-time.After(5 * time.Second):
		t.Fatal("the writer never started")
	}
	// buffer lines fit in the queue; the rest are dropped at once.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < buffer+extra; i++ {
			l.Log(ctx, req, sampleDecision("more"), time.Now(), time.Millisecond)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Log blocked while the writer was stuck")
	}
	if got := l.Dropped(); got != extra {
		t.Errorf("dropped %d, want %d", got, extra)
	}
	close(g.release)
	closeLog(t, l)
	if got := l.Written(); got != 1+buffer {
		t.Errorf("written %d, want %d", got, 1+buffer)
	}
	if n := len(g.out.lines(t)); n != 1+buffer {
		t.Errorf("%d lines in the output, want %d", n, 1+buffer)
	}
	got := scrape(t, m)
	if v := value(t, got, "verdict_decision_log_lines_dropped_total", nil); v != extra {
		t.Errorf("dropped metric %v, want %d", v, extra)
	}
	if v := value(t, got, "verdict_decision_log_lines_written_total", nil); v != 1+buffer {
		t.Errorf("written metric %v, want %d", v, 1+buffer)
	}
	// After Close, lines are dropped, not written and not blocking.
	l.Log(ctx, req, sampleDecision("late"), time.Now(), time.Millisecond)
	if l.Dropped() != extra+1 {
		t.Errorf("a line logged after Close was not counted as dropped")
	}
}

func TestDecisionLogConcurrentWriters(t *testing.T) {
	var out syncBuffer
	l, err := NewDecisionLog(&out, DecisionLogOptions{Buffer: 64, Log: quietLog, Mask: []string{"/input/key"}})
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 8, 200
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				l.Log(t.Context(), sampleRequest(), sampleDecision("c"), time.Now(), time.Microsecond)
			}
		}()
	}
	wg.Wait()
	closeLog(t, l)
	if got := l.Written() + l.Dropped(); got != goroutines*each {
		t.Errorf("written %d + dropped %d != %d", l.Written(), l.Dropped(), goroutines*each)
	}
	if n := uint64(len(out.lines(t))); n != l.Written() {
		t.Errorf("%d lines in the output, Written says %d", n, l.Written())
	}
}

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestDecisionLogCountsWriteErrors(t *testing.T) {
	l, err := NewDecisionLog(failingWriter{}, DecisionLogOptions{Log: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		l.Log(t.Context(), sampleRequest(), sampleDecision("x"), time.Now(), time.Microsecond)
	}
	closeLog(t, l)
	if l.Failed() != 3 || l.Written() != 0 {
		t.Errorf("failed %d written %d, want 3 and 0", l.Failed(), l.Written())
	}
}

func TestDecisionLogMasksEveryShapeOfInput(t *testing.T) {
	type typedContext struct {
		Token string `json:"token"`
		Keep  string `json:"keep"`
	}
	cases := []struct {
		name  string
		mask  string
		req   func() *decision.Request
		check func(t *testing.T, in map[string]any)
	}{
		{"a whole object", "/input/resource", sampleRequest, func(t *testing.T, in map[string]any) {
			if in["resource"] != MaskedValue {
				t.Errorf("resource %v", in["resource"])
			}
		}},
		{"the whole context", "/input/context", sampleRequest, func(t *testing.T, in map[string]any) {
			if in["context"] != MaskedValue {
				t.Errorf("context %v", in["context"])
			}
		}},
		{"a field of the request", "/input/request/path", func() *decision.Request {
			r := sampleRequest()
			r.Request = &decision.HTTPRequest{Method: "GET", Path: "/users/42/"}
			return r
		}, func(t *testing.T, in map[string]any) {
			hr := in["request"].(map[string]any)
			if hr["path"] != MaskedValue || hr["method"] != "GET" {
				t.Errorf("request %v", hr)
			}
		}},
		{"one resource group", "/input/resource/resource_groups/1", func() *decision.Request {
			r := sampleRequest()
			r.Resource.ResourceGroups = []string{"a", "b", "c"}
			return r
		}, func(t *testing.T, in map[string]any) {
			gs := in["resource"].(map[string]any)["resource_groups"].([]any)
			if gs[0] != "a" || gs[1] != MaskedValue || gs[2] != "c" {
				t.Errorf("groups %v", gs)
			}
		}},
		{"a boolean", "/input/resource/reference", func() *decision.Request {
			r := sampleRequest()
			r.Resource.Reference = true
			return r
		}, func(t *testing.T, in map[string]any) {
			if in["resource"].(map[string]any)["reference"] != MaskedValue {
				t.Errorf("resource %v", in["resource"])
			}
		}},
		{"a Go struct as context (a library caller)", "/input/context/token", func() *decision.Request {
			r := sampleRequest()
			r.Context = typedContext{Token: "s3cret", Keep: "k"}
			return r
		}, func(t *testing.T, in map[string]any) {
			ctx := in["context"].(map[string]any)
			if ctx["token"] != MaskedValue || ctx["keep"] != "k" {
				t.Errorf("context %v", ctx)
			}
		}},
		{"a list in the context", "/input/context/items/*/secret", func() *decision.Request {
			r := sampleRequest()
			r.Context = map[string]any{"items": []any{map[string]any{"secret": 1, "id": "x"}, "plain"}}
			return r
		}, func(t *testing.T, in map[string]any) {
			items := in["context"].(map[string]any)["items"].([]any)
			if items[0].(map[string]any)["secret"] != MaskedValue || items[0].(map[string]any)["id"] != "x" || items[1] != "plain" {
				t.Errorf("items %v", items)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out syncBuffer
			l, err := NewDecisionLog(&out, DecisionLogOptions{Log: quietLog, Mask: []string{c.mask}})
			if err != nil {
				t.Fatal(err)
			}
			req := c.req()
			before, _ := json.Marshal(req)
			l.Log(t.Context(), req, sampleDecision("m"), time.Now(), time.Millisecond)
			closeLog(t, l)
			lines := out.lines(t)
			if len(lines) != 1 {
				t.Fatalf("%d lines (failed %d)", len(lines), l.Failed())
			}
			c.check(t, lines[0]["input"].(map[string]any))
			if after, _ := json.Marshal(req); string(after) != string(before) {
				t.Errorf("masking changed the caller's request:\n%s\n%s", before, after)
			}
		})
	}
}

func TestIsSecretName(t *testing.T) {
	for name, want := range map[string]bool{
		"authorization": true, "Authorization": true, "PROXY-AUTHORIZATION": true, "token": true, "refreshToken": true,
		"access_token": true, "password": true, "db_password": true, "Passwd": true, "secret": true, "client-secret": true,
		"api_key": true, "X-Api-Key": true, "APIKEY": true, "cookie": true, "Set-Cookie": true, "credentials": true,
		"private_key": true, "session_id": true, "signature": true, "passphrase": true,
		"ip": false, "marker": false, "user_agent": false, "amount": false, "key": false, "tenant": false,
		// Review 2, finding 5: common names the first list missed.
		"pass": true, "user_pass": true, "pwd": true, "oldPwd": true, "jwt": true, "X-JWT-Assertion": true, "x-jwt-assertion": true,
		"JWTAssertion": true, "otp": true, "otp_code": true, "totp": true, "pin": true, "card-pin": true, "PIN": true,
		"sessid": true, "PHPSESSID": true, "JSESSIONID": true, "sessionId": true, "session id": true, "sid": true,
		"refresh": true, "refresh_token": true, "sig": true, "X-Sig": true,
		// Words that merely contain the short ones are not secrets.
		"shipping": false, "design": false, "passenger": false, "topic": false, "spinner": false, "considered": false,
		"bypass_cache": false, "refreshed_at": false, "signal": false, "jwtish": false,
	} {
		if got := IsSecretName(name); got != want {
			t.Errorf("IsSecretName(%q) = %v, want %v", name, got, want)
		}
	}
}

// With MaskContextSecrets, secrets in the context are masked at any depth
// (by the key's name, and bearer tokens and JWTs by their shape) on top of
// the configured masks; the rest of the line and the caller's request are
// as they were.
func TestDecisionLogMasksContextSecrets(t *testing.T) {
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyX2EifQ.c2lnbmF0dXJl"
	ctx := map[string]any{
		"ip": "10.0.0.1", "count": json.Number("3"), "flag": true, "none": nil,
		"Authorization": "Bearer abc.def", "X-Api-Key": "k-123", "Password": map[string]any{"old": "a", "new": "b"},
		"headers": map[string]any{"cookie": "sid=1", "accept": "text/html", "forwarded": []any{"bearer xyz", "for=10.0.0.2"}},
		"list":    []any{map[string]any{"refresh_token": "r"}, jwt, "plain"},
		"secret":  nil,
	}
	var out syncBuffer
	l, err := NewDecisionLog(&out, DecisionLogOptions{Log: quietLog, Mask: DefaultDecisionLogMask, MaskContextSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	req := sampleRequest()
	req.Context = ctx
	l.Log(t.Context(), req, sampleDecision("d-s"), time.Now(), time.Millisecond)
	// A library caller's context of Go values is masked too.
	type creds struct {
		User  string `json:"user"`
		Token string `json:"token"`
	}
	req2 := sampleRequest()
	req2.Context = map[string]any{"creds": creds{User: "u", Token: "t"}}
	l.Log(t.Context(), req2, sampleDecision("d-t"), time.Now(), time.Millisecond)
	closeLog(t, l)

	lines := out.lines(t)
	in := lines[0]["input"].(map[string]any)
	got := in["context"].(map[string]any)
	want := map[string]any{
		"ip": "10.0.0.1", "count": 3.0, "flag": true, "none": nil,
		"Authorization": MaskedValue, "X-Api-Key": MaskedValue, "Password": MaskedValue,
		"headers": map[string]any{"cookie": MaskedValue, "accept": "text/html", "forwarded": []any{MaskedValue, "for=10.0.0.2"}},
		"list":    []any{map[string]any{"refresh_token": MaskedValue}, MaskedValue, "plain"},
		"secret":  nil,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("context =\n%v\nwant\n%v", got, want)
	}
	if in["key"] != MaskedValue || in["member"] != "user_a" {
		t.Errorf("input = %v", in)
	}
	if c := lines[1]["input"].(map[string]any)["context"].(map[string]any)["creds"].(map[string]any); c["token"] != MaskedValue || c["user"] != "u" {
		t.Errorf("struct context = %v", c)
	}
	if ctx["Authorization"] != "Bearer abc.def" || ctx["headers"].(map[string]any)["cookie"] != "sid=1" ||
		ctx["list"].([]any)[1] != jwt || req.Key != "4ea5db4c" {
		t.Errorf("masking changed the caller's request: %v", ctx)
	}

	// Without it, only the configured masks apply.
	out = syncBuffer{}
	l, err = NewDecisionLog(&out, DecisionLogOptions{Log: quietLog, Mask: []string{"/input/member"}})
	if err != nil {
		t.Fatal(err)
	}
	l.Log(t.Context(), req, sampleDecision("d-u"), time.Now(), time.Millisecond)
	closeLog(t, l)
	in = out.lines(t)[0]["input"].(map[string]any)
	if in["member"] != MaskedValue || in["key"] != "4ea5db4c" || in["context"].(map[string]any)["Authorization"] != "Bearer abc.def" {
		t.Errorf("input = %v", in)
	}
}

// With shared run-time state (--state-db), a line says the state revision
// the decision was made at, for audits of which consents it saw.
func TestDecisionLogLineHasTheStateRevision(t *testing.T) {
	var out syncBuffer
	l, err := NewDecisionLog(&out, DecisionLogOptions{Log: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	d := sampleDecision("d-2")
	d.StateRevision = 42
	l.Log(t.Context(), sampleRequest(), d, time.Now(), time.Millisecond)
	closeLog(t, l)
	lines := out.lines(t)
	if len(lines) != 1 || lines[0]["state_revision"] != 42.0 {
		t.Fatalf("lines = %v, want one with state_revision 42", lines)
	}
}
