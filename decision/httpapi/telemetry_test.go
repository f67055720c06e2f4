package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/verdict-authz/verdict/bundles"
	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/httpapi"
	"github.com/verdict-authz/verdict/decision/telemetry"
	"github.com/verdict-authz/verdict/loader"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const (
	callerTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpanID  = "00f067aa0ba902b7"
	traceparent   = "00-" + callerTraceID + "-" + callerSpanID + "-01"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fixture is the API over the demo bundle with tracing into a recorder
// and decision logs into a buffer.
type fixture struct {
	srv   *httptest.Server
	spans *tracetest.SpanRecorder
	tel   *telemetry.Telemetry
	log   *lockedBuffer
}

func newFixture(t *testing.T, tracing bool) *fixture {
	t.Helper()
	f := &fixture{spans: tracetest.NewSpanRecorder(), log: &lockedBuffer{}}
	opts := telemetry.Options{Log: quiet, DecisionLog: f.log, Getenv: func(string) string { return "" }}
	if tracing {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(f.spans))
		t.Cleanup(func() { tp.Shutdown(context.Background()) })
		opts.TracerProvider = tp
	}
	tel, err := telemetry.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	f.tel = tel
	engine := decision.NewEngine(quiet, decision.WithObserver(tel))
	tel.TrackEngine(engine)
	ld, err := loader.New(engine, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ld.LoadAll(context.Background(), []loader.Source{{Name: "demo", Location: "(embedded demo bundle)", FS: bundles.Demo()}}); err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(httpapi.New(engine, httpapi.Options{Log: quiet, Telemetry: tel}))
	t.Cleanup(f.srv.Close)
	return f
}

// flushLog closes the decision log and returns its lines.
func (f *fixture) flushLog(t *testing.T) []map[string]any {
	t.Helper()
	if err := f.tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(f.log.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func (f *fixture) do(t *testing.T, method, path, body string, header map[string]string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %v", method, path, err)
	}
	return resp.StatusCode, m
}

const denyRequest = `{"tenant":"bank","member":"user_a","action":"finmars:Portfolio:destroy","context":{"token":"t0ken"}}`

// flushSpans records the spans of the decisions made so far (they are
// recorded on the decision log's goroutine) and returns the ended spans.
func (f *fixture) flushSpans(t *testing.T) []sdktrace.ReadOnlySpan {
	t.Helper()
	if err := f.tel.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return f.spans.Ended()
}

// waitSpans waits until n spans have ended and returns them.
func (f *fixture) waitSpans(t *testing.T, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		spans := f.spans.Ended()
		if len(spans) >= n || time.Now().After(deadline) {
			return spans
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func spanNamed(spans []sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

func TestDecisionSpanIsInsideTheCallersTrace(t *testing.T) {
	f := newFixture(t, true)
	status, d := f.do(t, "POST", "/v1/decide", denyRequest, map[string]string{"traceparent": traceparent})
	if status != 200 || d["allow"] != false {
		t.Fatalf("%d %v", status, d)
	}
	spans := f.flushSpans(t)
	if len(spans) != 1 {
		t.Fatalf("%d spans (%v), want only the decision's", len(spans), spans)
	}
	s := spans[0]
	if s.Name() != telemetry.SpanNameDecision {
		t.Fatalf("span %q", s.Name())
	}
	if s.SpanContext().TraceID().String() != callerTraceID || s.Parent().SpanID().String() != callerSpanID {
		t.Errorf("trace %s parent %s, want %s / %s", s.SpanContext().TraceID(), s.Parent().SpanID(), callerTraceID, callerSpanID)
	}
	if attr(s, "verdict.decision_id") != d["decision_id"] || attr(s, "verdict.reason.codes") != `["iam.no_allow"]` ||
		attr(s, "verdict.allow") != "false" || attr(s, "verdict.status") != "403" {
		t.Errorf("attributes %v", s.Attributes())
	}

	lines := f.flushLog(t)
	if len(lines) != 1 {
		t.Fatalf("%d log lines", len(lines))
	}
	l := lines[0]
	if l["decision_id"] != d["decision_id"] || l["trace_id"] != callerTraceID || l["span_id"] != s.SpanContext().SpanID().String() {
		t.Errorf("log line ids %v / %v / %v; answer %v, span %s", l["decision_id"], l["trace_id"], l["span_id"], d["decision_id"], s.SpanContext().SpanID())
	}
	if ctx := l["input"].(map[string]any)["context"].(map[string]any); ctx["token"] != "t0ken" {
		// No mask was configured in this fixture: the value is logged.
		t.Errorf("context %v", ctx)
	}
}

func TestWithoutTracingTheLogStillCarriesTheCallersTraceID(t *testing.T) {
	f := newFixture(t, false)
	_, d := f.do(t, "POST", "/v1/decide", denyRequest, map[string]string{"traceparent": traceparent})
	lines := f.flushLog(t)
	if len(lines) != 1 || lines[0]["decision_id"] != d["decision_id"] || lines[0]["trace_id"] != callerTraceID {
		t.Fatalf("log %v", lines)
	}
	if _, ok := lines[0]["span_id"]; ok {
		t.Error("a span id is logged though no span was recorded")
	}
}

func TestBatchHasAnHTTPSpanWithOneChildPerDecision(t *testing.T) {
	f := newFixture(t, true)
	body := `{"tenant":"bank","member":"user_a","items":[{"action":"finmars:Portfolio:list"},{"action":"finmars:Portfolio:destroy"}]}`
	status, res := f.do(t, "POST", "/v1/decide/batch", body, map[string]string{"traceparent": traceparent})
	if status != 200 {
		t.Fatalf("%d %v", status, res)
	}
	// The HTTP span ends after the answer is written: wait for it.
	f.flushSpans(t)
	spans := f.waitSpans(t, 3)
	httpSpans := spanNamed(spans, "POST /v1/decide/batch")
	if len(httpSpans) != 1 {
		t.Fatalf("HTTP spans %v", spans)
	}
	hs := httpSpans[0]
	if hs.SpanKind() != trace.SpanKindServer || hs.Parent().SpanID().String() != callerSpanID ||
		attr(hs, "http.route") != "/v1/decide/batch" || attr(hs, "http.request.method") != "POST" ||
		attr(hs, "http.response.status_code") != "200" {
		t.Errorf("HTTP span kind %v parent %s attributes %v", hs.SpanKind(), hs.Parent().SpanID(), hs.Attributes())
	}
	decisions := spanNamed(spans, telemetry.SpanNameDecision)
	if len(decisions) != 2 {
		t.Fatalf("%d decision spans", len(decisions))
	}
	results := res["results"].([]any)
	for i, s := range decisions {
		if s.Parent().SpanID() != hs.SpanContext().SpanID() || s.SpanKind() != trace.SpanKindInternal {
			t.Errorf("decision span %d: parent %s kind %v", i, s.Parent().SpanID(), s.SpanKind())
		}
		if attr(s, "verdict.decision_id") != results[i].(map[string]any)["decision_id"] {
			t.Errorf("decision span %d has another decision_id", i)
		}
	}
}

func TestExplainFullReturnsTheEvaluationTrace(t *testing.T) {
	f := newFixture(t, true)
	status, d := f.do(t, "POST", "/v1/decide?explain=full", denyRequest, nil)
	if status != 200 || d["allow"] != false || d["decision_id"] == nil {
		t.Fatalf("%d %v", status, d)
	}
	ex, ok := d["explanation"].(map[string]any)
	if !ok {
		t.Fatalf("no explanation: %v", d)
	}
	if !strings.Contains(ex["summary"].(string), "iam.no_allow") {
		t.Errorf("summary %q", ex["summary"])
	}
	tr := ex["trace"].([]any)
	if len(tr) < 10 || !strings.Contains(tr[0].(string), "Enter data.verdict.engine.decision") {
		t.Errorf("trace starts %v (%d lines)", tr[:min(3, len(tr))], len(tr))
	}

	// The GET form takes the request in the input parameter.
	status, g := f.do(t, "GET", "/v1/decide?explain=full&input="+url.QueryEscape(denyRequest), "", nil)
	if status != 200 || g["explanation"] == nil || g["allow"] != false {
		t.Errorf("GET explain: %d %v", status, g)
	}
	status, g = f.do(t, "GET", "/v1/decide?input="+url.QueryEscape(denyRequest), "", nil)
	if status != 200 || g["explanation"] != nil || g["decision_id"] == nil {
		t.Errorf("GET without explain: %d %v", status, g)
	}
	status, g = f.do(t, "POST", "/v1/decide?explain=verbose", denyRequest, nil)
	if status != 400 || g["field"] != "explain" {
		t.Errorf("unknown explain mode: %d %v", status, g)
	}
	status, g = f.do(t, "GET", "/v1/decide", "", nil)
	if status != 405 || g["field"] != "input" {
		t.Errorf("GET without input: %d %v", status, g)
	}
	status, g = f.do(t, "GET", "/v1/decide?input="+url.QueryEscape(`{"tenant":"bank","acton":"x"}`), "", nil)
	if status != 400 || g["field"] != "acton" {
		t.Errorf("GET with a misspelt field: %d %v", status, g)
	}

	// The explained decision is logged like any other, without the trace.
	lines := f.flushLog(t)
	if len(lines) != 3 {
		t.Fatalf("%d log lines, want 3", len(lines))
	}
	if lines[0]["decision_id"] != d["decision_id"] {
		t.Errorf("logged %v, answered %v", lines[0]["decision_id"], d["decision_id"])
	}
	for _, l := range lines {
		if _, ok := l["explanation"]; ok {
			t.Error("an explanation was logged")
		}
	}
	if s := spanNamed(f.spans.Ended(), telemetry.SpanNameDecision); len(s) != 3 || attr(s[0], "verdict.explained") != "true" {
		t.Errorf("decision spans %v", s)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	f := newFixture(t, false)
	for i := 0; i < 3; i++ {
		f.do(t, "POST", "/v1/decide", denyRequest, nil)
	}
	f.do(t, "POST", "/v1/decide", `{"tenant":"bank","member":"user_a","action":"finmars:Portfolio:list"}`, nil)
	resp, err := f.srv.Client().Get(f.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, m := range fams["verdict_decisions_total"].GetMetric() {
		key := ""
		for _, l := range m.GetLabel() {
			key += l.GetName() + "=" + l.GetValue() + " "
		}
		counts[strings.TrimSpace(key)] = m.GetCounter().GetValue()
	}
	if counts["code=iam.no_allow outcome=deny"] != 3 || counts["code=iam.allow outcome=allow"] != 1 {
		t.Errorf("decisions %v", counts)
	}
	if h := fams["verdict_decision_duration_seconds"].GetMetric(); len(h) != 1 || h[0].GetHistogram().GetSampleCount() != 4 {
		t.Errorf("latency histogram %v", h)
	}
	rev := fams["verdict_bundle_revision_info"].GetMetric()
	if len(rev) != 1 || rev[0].GetGauge().GetValue() != 1 {
		t.Errorf("revision gauge %v", rev)
	}
	if fams["go_goroutines"] == nil {
		t.Error("no Go runtime metrics")
	}
}

func TestHealthAndMetricsAreNotTraced(t *testing.T) {
	f := newFixture(t, true)
	for _, p := range []string{"/health", "/health/ready", "/metrics"} {
		resp, err := f.srv.Client().Get(f.srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// A span would end right after its answer: give it time, then check.
	time.Sleep(50 * time.Millisecond)
	if n := len(f.spans.Ended()); n != 0 {
		t.Errorf("%d spans for health checks and scrapes", n)
	}
}
