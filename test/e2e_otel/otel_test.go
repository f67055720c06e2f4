// Package e2eotel tests verdict's observability from the outside: it builds
// cmd/verdict, runs it with OTEL_EXPORTER_OTLP_ENDPOINT pointing at an OTLP
// receiver inside the test (OTLP/HTTP protobuf, and gRPC), sends decisions
// with a W3C traceparent and checks that the decision span arrives in the
// caller's trace with the decision's attributes; it also parses GET /metrics
// with the Prometheus text parser and reads the decision log file.
// Everything listens on 127.0.0.1.
package e2eotel

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/verdict-authz/verdict/test/e2eutil"
)

// binary is the verdict binary TestMain built.
var binary string

func TestMain(m *testing.M) { os.Exit(e2eutil.RunMain(m, &binary)) }

// --- the OTLP receivers

// spanStore collects the spans the receivers got, with their resources.
type spanStore struct {
	mu       sync.Mutex
	spans    []receivedSpan
	requests int
}

type receivedSpan struct {
	span     *tracepb.Span
	resource []*commonpb.KeyValue
}

func (s *spanStore) add(req *coltracepb.ExportTraceServiceRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				s.spans = append(s.spans, receivedSpan{span: sp, resource: rs.GetResource().GetAttributes()})
			}
		}
	}
}

// waitFor returns the first span for which match is true, waiting up to
// timeout for the exporter to send it.
func (s *spanStore) waitFor(t *testing.T, timeout time.Duration, match func(*tracepb.Span) bool) receivedSpan {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		for _, rs := range s.spans {
			if match(rs.span) {
				s.mu.Unlock()
				return rs
			}
		}
		n, reqs := len(s.spans), s.requests
		s.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no matching span within %v (%d spans in %d export requests)", timeout, n, reqs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newHTTPReceiver is an OTLP/HTTP (protobuf) trace receiver on 127.0.0.1.
func newHTTPReceiver(t *testing.T) (*httptest.Server, *spanStore) {
	t.Helper()
	store := &spanStore{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
			http.Error(w, "not an OTLP trace export", http.StatusNotFound)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
			http.Error(w, "content type "+ct, http.StatusUnsupportedMediaType)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			gz, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = gz
		}
		raw, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(raw, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		store.add(&req)
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return srv, store
}

// grpcReceiver is an OTLP/gRPC trace receiver.
type grpcReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	store *spanStore
}

func (g *grpcReceiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	g.store.add(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func newGRPCReceiver(t *testing.T) (string, *spanStore) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	store := &spanStore{}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, &grpcReceiver{store: store})
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String(), store
}

// --- running verdict

// server is a running `verdict run` (see e2eutil.Server).
type server struct{ *e2eutil.Server }

// start runs `verdict run` (the embedded demo bundle) on a free loopback
// port with env added to the environment, and waits until it is ready.
func start(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	s, err := e2eutil.Launch(binary, e2eutil.Options{Env: append(cleanEnv(), env...), WaitPath: "/health/ready", Timeout: 20 * time.Second}, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return &server{s}
}

// cleanEnv is the test's environment without OTEL_* variables, so that the
// developer's own configuration cannot change what the test sees.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTEL_") {
			out = append(out, kv)
		}
	}
	return out
}

var client = &http.Client{Timeout: 10 * time.Second}

type decisionAnswer struct {
	DecisionID string `json:"decision_id"`
	Allow      bool   `json:"allow"`
	Status     int    `json:"status"`
	Reasons    []struct {
		Layer string `json:"layer"`
		Code  string `json:"code"`
	} `json:"reasons"`
	Revision map[string]string `json:"revision"`
}

func (s *server) decide(t *testing.T, body, traceparent string) decisionAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/v1/decide", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
		req.Header.Set("tracestate", "vendor=opaque")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST /v1/decide: %v\n%s", err, s.Out.String())
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /v1/decide: %d %s", resp.StatusCode, b)
	}
	var d decisionAnswer
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

// --- helpers over OTLP spans

func attrs(kvs []*commonpb.KeyValue) map[string]*commonpb.AnyValue {
	m := make(map[string]*commonpb.AnyValue, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = kv.GetValue()
	}
	return m
}

func stringList(v *commonpb.AnyValue) []string {
	var out []string
	for _, e := range v.GetArrayValue().GetValues() {
		out = append(out, e.GetStringValue())
	}
	return out
}

// The caller's span, as its traceparent names it.
const (
	callerTraceID = "0af7651916cd43dd8448eb211c80319c"
	callerSpanID  = "b7ad6b7169203331"
	traceparent   = "00-" + callerTraceID + "-" + callerSpanID + "-01"
)

const deniedRequest = `{"tenant":"bank","member":"user_a","action":"finmars:Portfolio:destroy",
  "resource":{"frn":"frn:finmars:portfolios:portfolio:bonds-portfolio"},"context":{"ip":"10.0.0.1","token":"s3cret"}}`

// checkDecisionSpan finds the decision span of d and checks that it is the
// child of the caller's span, with the decision's attributes and one event
// per reason.
func checkDecisionSpan(t *testing.T, store *spanStore, d decisionAnswer) {
	t.Helper()
	got := store.waitFor(t, 15*time.Second, func(sp *tracepb.Span) bool {
		return attrs(sp.GetAttributes())["verdict.decision_id"].GetStringValue() == d.DecisionID
	})
	sp := got.span
	if sp.GetName() != "verdict.decide" {
		t.Errorf("span name %q", sp.GetName())
	}
	if tid := hex.EncodeToString(sp.GetTraceId()); tid != callerTraceID {
		t.Errorf("trace id %s, want the caller's %s", tid, callerTraceID)
	}
	if pid := hex.EncodeToString(sp.GetParentSpanId()); pid != callerSpanID {
		t.Errorf("parent span id %s, want the caller's %s", pid, callerSpanID)
	}
	if sp.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("span kind %v", sp.GetKind())
	}
	if sp.GetTraceState() != "vendor=opaque" {
		t.Errorf("tracestate %q, want the caller's", sp.GetTraceState())
	}
	if sp.GetEndTimeUnixNano() <= sp.GetStartTimeUnixNano() {
		t.Errorf("span lasts %d ns", sp.GetEndTimeUnixNano()-sp.GetStartTimeUnixNano())
	}
	a := attrs(sp.GetAttributes())
	wantCodes := make([]string, len(d.Reasons))
	for i, r := range d.Reasons {
		wantCodes[i] = r.Code
	}
	checks := map[string]bool{
		"verdict.tenant":           a["verdict.tenant"].GetStringValue() == "bank",
		"enduser.id":               a["enduser.id"].GetStringValue() == "user_a",
		"verdict.action":           a["verdict.action"].GetStringValue() == "finmars:Portfolio:destroy",
		"verdict.allow":            a["verdict.allow"] != nil && a["verdict.allow"].GetBoolValue() == d.Allow,
		"verdict.status":           a["verdict.status"].GetIntValue() == int64(d.Status),
		"verdict.reason.codes":     strings.Join(stringList(a["verdict.reason.codes"]), ",") == strings.Join(wantCodes, ","),
		"verdict.bundle.revisions": strings.Join(stringList(a["verdict.bundle.revisions"]), ",") == "demo="+d.Revision["demo"],
		"verdict.resource.frn":     a["verdict.resource.frn"].GetStringValue() == "frn:finmars:portfolios:portfolio:bonds-portfolio",
	}
	for k, ok := range checks {
		if !ok {
			t.Errorf("attribute %s = %v", k, a[k])
		}
	}
	if len(sp.GetEvents()) != len(d.Reasons) {
		t.Fatalf("%d events for %d reasons", len(sp.GetEvents()), len(d.Reasons))
	}
	for i, ev := range sp.GetEvents() {
		if ev.GetName() != "verdict.layer."+d.Reasons[i].Layer ||
			attrs(ev.GetAttributes())["verdict.reason.code"].GetStringValue() != d.Reasons[i].Code {
			t.Errorf("event %d: %s %v", i, ev.GetName(), ev.GetAttributes())
		}
	}
	res := attrs(got.resource)
	if res["service.name"].GetStringValue() != "verdict-e2e" || res["deployment.environment.name"].GetStringValue() != "test" {
		t.Errorf("resource %v (OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES not honoured)", got.resource)
	}
}

func otelEnv(endpoint, protocol string) []string {
	return []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + endpoint,
		"OTEL_EXPORTER_OTLP_PROTOCOL=" + protocol,
		"OTEL_SERVICE_NAME=verdict-e2e",
		"OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=test",
		"OTEL_BSP_SCHEDULE_DELAY=100", // ms: export soon rather than every 5 s
	}
}

// TestDecisionSpanReachesAnOTLPHTTPReceiver is the acceptance
// test: verdict exports over OTLP/HTTP to a receiver in this test, and the
// decision span sits in the caller's trace with the right attributes; the
// decision log line carries the same decision_id and trace id; /metrics
// parses with the Prometheus text parser.
func TestDecisionSpanReachesAnOTLPHTTPReceiver(t *testing.T) {
	receiver, store := newHTTPReceiver(t)
	logPath := filepath.Join(t.TempDir(), "decisions.jsonl")
	s := start(t, otelEnv(receiver.URL, "http/protobuf"),
		"--decision-log", logPath, "--decision-log-mask", "/input/context/token")

	d := s.decide(t, deniedRequest, traceparent)
	if d.Allow || d.DecisionID == "" {
		t.Fatalf("decision %+v", d)
	}
	checkDecisionSpan(t, store, d)

	// A decision without traceparent starts a trace of its own.
	d2 := s.decide(t, `{"tenant":"bank","member":"user_a","action":"finmars:Portfolio:list"}`, "")
	root := store.waitFor(t, 15*time.Second, func(sp *tracepb.Span) bool {
		return attrs(sp.GetAttributes())["verdict.decision_id"].GetStringValue() == d2.DecisionID
	})
	if len(root.span.GetParentSpanId()) != 0 || hex.EncodeToString(root.span.GetTraceId()) == callerTraceID {
		t.Errorf("a decision without traceparent has parent %x in trace %x", root.span.GetParentSpanId(), root.span.GetTraceId())
	}

	checkMetrics(t, s)

	s.Stop() // flushes the decision log
	lines := readLog(t, logPath)
	if len(lines) != 2 {
		t.Fatalf("%d decision log lines, want 2", len(lines))
	}
	l := lines[0]
	if l["decision_id"] != d.DecisionID || l["trace_id"] != callerTraceID {
		t.Errorf("log line decision_id %v trace_id %v, want %s %s", l["decision_id"], l["trace_id"], d.DecisionID, callerTraceID)
	}
	in := l["input"].(map[string]any)
	if ctx := in["context"].(map[string]any); ctx["token"] != "***" || ctx["ip"] != "10.0.0.1" {
		t.Errorf("masking: context %v", ctx)
	}
	for _, k := range []string{"time", "result", "reasons", "revisions", "duration", "span_id"} {
		if _, ok := l[k]; !ok {
			t.Errorf("log line lacks %s", k)
		}
	}
}

// TestDecisionSpanReachesAnOTLPGRPCReceiver checks the other protocol.
func TestDecisionSpanReachesAnOTLPGRPCReceiver(t *testing.T) {
	addr, store := newGRPCReceiver(t)
	s := start(t, otelEnv("http://"+addr, "grpc"))
	d := s.decide(t, deniedRequest, traceparent)
	checkDecisionSpan(t, store, d)
}

// scrapeMetrics fetches /metrics and parses it with the Prometheus text
// parser.
func scrapeMetrics(t *testing.T, s *server) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := client.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// checkMetrics checks the decision metrics after the acceptance test's
// two decisions.
func checkMetrics(t *testing.T, s *server) {
	t.Helper()
	fams := scrapeMetrics(t, s)
	var deny float64
	for _, m := range fams["verdict_decisions_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["outcome"] == "deny" && labels["code"] == "iam.no_allow" {
			deny = m.GetCounter().GetValue()
		}
	}
	if deny != 1 {
		t.Errorf("verdict_decisions_total{outcome=deny,code=iam.no_allow} = %v, want 1", deny)
	}
	if h := fams["verdict_decision_duration_seconds"].GetMetric(); len(h) != 1 || h[0].GetHistogram().GetSampleCount() != 2 {
		t.Errorf("decision latency histogram: %v", h)
	}
	if r := fams["verdict_bundle_revision_info"].GetMetric(); len(r) != 1 {
		t.Errorf("bundle revisions: %v", r)
	}
	for _, name := range []string{"verdict_decision_log_lines_written_total", "verdict_decision_log_lines_dropped_total", "go_goroutines"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
}

func readLog(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("decision log line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// copyDir copies the directory tree src to dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReloadsAreTracedAndCounted watches a bundle directory and checks
// that the first load, a reload with a new revision and a rejected reload
// each arrive as a verdict.reload span and in the reload metrics.
func TestReloadsAreTracedAndCounted(t *testing.T) {
	receiver, store := newHTTPReceiver(t)
	dir := filepath.Join(t.TempDir(), "demo")
	copyDir(t, filepath.Join("..", "..", "bundles", "demo"), dir)
	s := start(t, otelEnv(receiver.URL, "http/protobuf"), "--bundle", "demo="+dir, "--watch", "--debounce", "50ms")

	reloadSpan := func(revision, outcome string) receivedSpan {
		t.Helper()
		return store.waitFor(t, 15*time.Second, func(sp *tracepb.Span) bool {
			a := attrs(sp.GetAttributes())
			return sp.GetName() == "verdict.reload" && a["verdict.bundle.name"].GetStringValue() == "demo" &&
				a["verdict.bundle.revision"].GetStringValue() == revision && a["verdict.outcome"].GetStringValue() == outcome
		})
	}
	first := reloadSpan("2026-11-22.1", "success")
	if src := attrs(first.span.GetAttributes())["verdict.bundle.source"].GetStringValue(); src != dir {
		t.Errorf("source %q, want %q", src, dir)
	}

	manifest := filepath.Join(dir, ".manifest")
	if err := os.WriteFile(manifest, []byte(`{"revision": "e2e-2", "roots": ["verdict"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	reloadSpan("e2e-2", "success")

	if err := os.WriteFile(manifest, []byte(`{"revision": `), 0o644); err != nil {
		t.Fatal(err)
	}
	failed := reloadSpan("", "failure")
	if failed.span.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("a rejected reload's span has status %v", failed.span.GetStatus())
	}

	fams := scrapeMetrics(t, s)
	get := func(name string, labels map[string]string) float64 {
		for _, m := range fams[name].GetMetric() {
			ok := len(m.GetLabel()) == len(labels)
			for _, l := range m.GetLabel() {
				ok = ok && labels[l.GetName()] == l.GetValue()
			}
			if ok {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
		t.Errorf("no %s%v", name, labels)
		return -1
	}
	if v := get("verdict_bundle_reloads_total", map[string]string{"bundle": "demo", "outcome": "success"}); v != 2 {
		t.Errorf("successful reloads %v, want 2", v)
	}
	if v := get("verdict_bundle_reloads_total", map[string]string{"bundle": "demo", "outcome": "failure"}); v != 1 {
		t.Errorf("failed reloads %v, want 1", v)
	}
	if v := get("verdict_bundle_last_reload_success", map[string]string{"bundle": "demo"}); v != 0 {
		t.Errorf("last reload success %v, want 0", v)
	}
	// The last good revision keeps serving.
	if v := get("verdict_bundle_revision_info", map[string]string{"bundle": "demo", "revision": "e2e-2"}); v != 1 {
		t.Errorf("revision gauge %v", v)
	}
}

// TestRegistrationIsTraced registers a service at run time with a
// traceparent: the HTTP server span of PUT /v1/services/{name} sits in the
// caller's trace, and the change pipeline records a verdict.register span
// as its child and counts the registration.
func TestRegistrationIsTraced(t *testing.T) {
	receiver, store := newHTTPReceiver(t)
	s := start(t, otelEnv(receiver.URL, "http/protobuf"), "--state-dir", t.TempDir())
	req, err := http.NewRequest(http.MethodPut, s.URL+"/v1/services/requisition",
		strings.NewReader(`{"routes": [{"path": "/api/requisitionTemplates/", "viewset": "RequisitionTemplate"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", traceparent)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /v1/services/requisition: %d", resp.StatusCode)
	}
	httpSpan := store.waitFor(t, 15*time.Second, func(sp *tracepb.Span) bool {
		return sp.GetName() == "PUT /v1/services/{name}"
	}).span
	a := attrs(httpSpan.GetAttributes())
	if hex.EncodeToString(httpSpan.GetTraceId()) != callerTraceID || hex.EncodeToString(httpSpan.GetParentSpanId()) != callerSpanID ||
		httpSpan.GetKind() != tracepb.Span_SPAN_KIND_SERVER || a["http.route"].GetStringValue() != "/v1/services/{name}" ||
		a["http.response.status_code"].GetIntValue() != 200 || a["http.request.method"].GetStringValue() != "PUT" {
		t.Errorf("HTTP span: trace %x parent %x kind %v attributes %v", httpSpan.GetTraceId(), httpSpan.GetParentSpanId(), httpSpan.GetKind(), a)
	}
	reg := store.waitFor(t, 15*time.Second, func(sp *tracepb.Span) bool {
		a := attrs(sp.GetAttributes())
		return sp.GetName() == "verdict.register" && a["verdict.registration.kind"].GetStringValue() == "service" &&
			a["verdict.registration.name"].GetStringValue() == "requisition"
	}).span
	if attrs(reg.GetAttributes())["verdict.outcome"].GetStringValue() != "success" {
		t.Errorf("registration span %v", reg.GetAttributes())
	}
	// The change is recorded inside the request that asked for it.
	if hex.EncodeToString(reg.GetTraceId()) != callerTraceID || !bytes.Equal(reg.GetParentSpanId(), httpSpan.GetSpanId()) {
		t.Errorf("registration span: trace %x parent %x, want trace %s parent %x (the HTTP span)",
			reg.GetTraceId(), reg.GetParentSpanId(), callerTraceID, httpSpan.GetSpanId())
	}
	fams := scrapeMetrics(t, s)
	var n float64
	for _, m := range fams["verdict_registrations_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["kind"] == "service" && labels["outcome"] == "success" {
			n = m.GetCounter().GetValue()
		}
	}
	if n != 1 {
		t.Errorf("verdict_registrations_total{kind=service,outcome=success} = %v, want 1", n)
	}
}
