package telemetry

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/verdict-authz/verdict/decision"
)

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestTracingConfigFromEnv(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		want    TracingConfig
		wantErr bool
	}{
		{"nothing configured is a no-op", nil, TracingConfig{}, false},
		{"an endpoint turns OTLP over http/protobuf on",
			map[string]string{envEndpoint: "http://127.0.0.1:4318"},
			TracingConfig{Enabled: true, Protocol: "http/protobuf", Endpoint: "http://127.0.0.1:4318"}, false},
		{"grpc by protocol",
			map[string]string{envEndpoint: "http://127.0.0.1:4317", envProtocol: "grpc"},
			TracingConfig{Enabled: true, Protocol: "grpc", Endpoint: "http://127.0.0.1:4317"}, false},
		{"the traces-specific variables win",
			map[string]string{envEndpoint: "http://a:4318", envTracesEndpoint: "http://b:4317", envProtocol: "http/protobuf", envTracesProtocol: "grpc"},
			TracingConfig{Enabled: true, Protocol: "grpc", Endpoint: "http://b:4317"}, false},
		{"OTEL_TRACES_EXPORTER=otlp without an endpoint uses the default",
			map[string]string{envTracesExporter: "otlp"},
			TracingConfig{Enabled: true, Protocol: "http/protobuf"}, false},
		{"OTEL_TRACES_EXPORTER=none wins over an endpoint",
			map[string]string{envTracesExporter: "none", envEndpoint: "http://127.0.0.1:4318"}, TracingConfig{}, false},
		{"OTEL_SDK_DISABLED wins over everything",
			map[string]string{envSDKDisabled: "true", envTracesExporter: "otlp", envEndpoint: "http://x"}, TracingConfig{}, false},
		{"http/json is not supported",
			map[string]string{envEndpoint: "http://x", envProtocol: "http/json"}, TracingConfig{}, true},
		{"an unknown exporter is an error",
			map[string]string{envTracesExporter: "zipkin"}, TracingConfig{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := TracingConfigFromEnv(envOf(c.env))
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error: %v", err, c.wantErr)
			}
			if got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestNoTracingWhenNothingIsConfigured(t *testing.T) {
	tel, err := New(t.Context(), Options{Log: quietLog, Getenv: envOf(nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(t.Context())
	if tel.TracingEnabled() {
		t.Fatal("tracing is on with no OTEL_* variable set")
	}
	_, span := tel.Tracer().Start(t.Context(), "x")
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Error("the tracer records spans")
	}
}

// recordingTelemetry is a Telemetry whose spans go to a recorder.
func recordingTelemetry(t *testing.T) (*Telemetry, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	tel, err := New(context.Background(), Options{Log: quietLog, TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tel.Shutdown(context.Background()) })
	return tel, rec
}

func attrMap(kvs []attribute.KeyValue) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

func remoteParent(t *testing.T) (context.Context, trace.SpanContext) {
	t.Helper()
	return remoteParentB()
}

func remoteParentB() (context.Context, trace.SpanContext) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
	return trace.ContextWithRemoteSpanContext(context.Background(), sc), sc
}

func TestDecisionSpanIsAChildOfTheCallersSpan(t *testing.T) {
	tel, rec := recordingTelemetry(t)
	ctx, parent := remoteParent(t)
	start := time.Now().Add(-time.Millisecond)
	d := sampleDecision("dec-42")
	tel.ObserveDecision(ctx, sampleRequest(), d, decision.DecisionInfo{Start: start, Duration: 250 * time.Microsecond})
	// The span is recorded on the decision log's goroutine.
	if err := tel.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}

	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.Name() != SpanNameDecision || s.SpanKind() != trace.SpanKindServer {
		t.Errorf("span %q kind %v", s.Name(), s.SpanKind())
	}
	if s.SpanContext().TraceID() != parent.TraceID() || s.Parent().SpanID() != parent.SpanID() || !s.Parent().IsRemote() {
		t.Errorf("trace %s parent %s, want %s / %s", s.SpanContext().TraceID(), s.Parent().SpanID(), parent.TraceID(), parent.SpanID())
	}
	if !s.StartTime().Equal(start) || s.EndTime().Sub(s.StartTime()) != 250*time.Microsecond {
		t.Errorf("span times %v..%v, want the decision's", s.StartTime(), s.EndTime())
	}
	a := attrMap(s.Attributes())
	if a[AttrDecisionID].AsString() != "dec-42" || a[AttrTenant].AsString() != "bank" ||
		a["enduser.id"].AsString() != "user_a" || a[AttrAction].AsString() != "finmars:Portfolio:retrieve" ||
		a[AttrAllow].AsBool() || a[AttrStatus].AsInt64() != 403 ||
		a[AttrResourceFRN].AsString() != "frn:finmars:portfolios:portfolio:bonds" {
		t.Errorf("attributes: %v", a)
	}
	if codes := a[AttrReasonCodes].AsStringSlice(); len(codes) != 1 || codes[0] != "iam.explicit_deny" {
		t.Errorf("reason codes %v", codes)
	}
	if revs := a[AttrBundleRevisions].AsStringSlice(); len(revs) != 1 || revs[0] != "demo=r1" {
		t.Errorf("revisions %v", revs)
	}
	if _, ok := a["verdict.key"]; ok {
		t.Error("the API key is on the span")
	}
	ev := s.Events()
	if len(ev) != 1 || ev[0].Name != "verdict.layer.iam" {
		t.Fatalf("events %v", ev)
	}
	ea := attrMap(ev[0].Attributes)
	if ea[AttrReasonCode].AsString() != "iam.explicit_deny" || ea[AttrReasonPolicy].AsString() != "p1" ||
		ea[AttrReasonStatement].AsInt64() != 0 || ea[AttrReasonEffect].AsString() != "deny" {
		t.Errorf("event attributes %v", ea)
	}
	if s.Status().Code == codes.Error {
		t.Error("a deny is marked as an error")
	}
}

func TestFailedDecisionSpanIsAnError(t *testing.T) {
	tel, rec := recordingTelemetry(t)
	// The engine with no bundle fails closed: the observer sees the error.
	engine := decision.NewEngine(quietLog, decision.WithObserver(tel))
	ctx, _ := remoteParent(t)
	d, err := engine.Decide(ctx, &decision.Request{Tenant: "bank", Action: "finmars:Portfolio:list"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Allow || d.Reasons[0].Code != "error.internal" {
		t.Fatalf("decision %+v", d)
	}
	if err := tel.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	s := spans[0]
	if s.Status().Code != codes.Error || attrMap(s.Attributes())["error.type"].AsString() != "internal" {
		t.Errorf("status %v attributes %v", s.Status(), s.Attributes())
	}
	if attrMap(s.Attributes())[AttrDecisionID].AsString() != d.DecisionID {
		t.Error("the span's decision_id is not the answer's")
	}
}

func TestLocalParentMakesAnInternalSpan(t *testing.T) {
	tel, rec := recordingTelemetry(t)
	ctx, batch := tel.Tracer().Start(t.Context(), "POST /v1/decide/batch")
	tel.ObserveDecision(ctx, sampleRequest(), sampleDecision("b1"), decision.DecisionInfo{Start: time.Now(), Duration: time.Microsecond})
	batch.End()
	if err := tel.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, s := range rec.Ended() {
		if s.Name() == SpanNameDecision {
			if s.SpanKind() != trace.SpanKindInternal || s.Parent().SpanID() != batch.SpanContext().SpanID() {
				t.Errorf("decision span kind %v parent %v", s.SpanKind(), s.Parent().SpanID())
			}
			return
		}
	}
	t.Fatal("no decision span")
}

func TestReloadAndRegistrationSpans(t *testing.T) {
	tel, rec := recordingTelemetry(t)
	ctx := t.Context()
	tel.ReloadObserved(ctx, Reload{Bundle: "demo", Source: "/b/demo", Revision: "r2", Start: time.Now(), Duration: time.Millisecond})
	tel.ReloadObserved(ctx, Reload{Bundle: "bad", Source: "/b/bad", Start: time.Now(), Duration: time.Millisecond, Err: errors.New("data.yaml:3: dangling role")})
	tel.ReloadObserved(ctx, Reload{Bundle: "late", Source: "/b/late", Revision: "r9", Start: time.Now().Add(-time.Second), Duration: time.Second})
	tel.RegistrationObserved(ctx, "service", "portfolios", time.Now(), time.Millisecond, nil)

	spans := rec.Ended()
	if len(spans) != 4 {
		t.Fatalf("%d spans, want 4", len(spans))
	}
	byBundle := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		a := attrMap(s.Attributes())
		switch s.Name() {
		case SpanNameReload:
			byBundle[a[AttrBundleName].AsString()] = s
		case SpanNameRegister:
			if a[AttrRegistrationKind].AsString() != "service" || a[AttrRegistrationName].AsString() != "portfolios" {
				t.Errorf("registration attributes %v", a)
			}
		default:
			t.Errorf("unexpected span %q", s.Name())
		}
	}
	if a := attrMap(byBundle["demo"].Attributes()); a[AttrBundleRevision].AsString() != "r2" || a[AttrOperationOutcome].AsString() != "success" {
		t.Errorf("demo reload attributes %v", a)
	}
	if s := byBundle["bad"]; s.Status().Code != codes.Error || attrMap(s.Attributes())[AttrOperationOutcome].AsString() != "failure" {
		t.Errorf("failed reload status %v", s.Status())
	}
	if s := byBundle["late"]; s.EndTime().Sub(s.StartTime()) != time.Second {
		t.Errorf("an observed reload lasts %v, want 1s", s.EndTime().Sub(s.StartTime()))
	}
}
