package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/verdict-authz/verdict/decision"
)

// Options configures New.
type Options struct {
	// Log is for telemetry's own problems (slog.Default when nil).
	Log *slog.Logger
	// ServiceVersion goes into the service.version resource attribute.
	ServiceVersion string
	// Getenv reads the variables that decide whether tracing is on and
	// over which protocol (os.Getenv when nil; see TracingConfigFromEnv).
	// The exporter, sampler and resource read the rest of OTEL_* from the
	// process environment themselves.
	Getenv func(string) string
	// TracerProvider, when set, is used instead of one built from the
	// environment, and tracing counts as on (tests and benchmarks). The
	// caller shuts it down.
	TracerProvider trace.TracerProvider

	// DecisionLog is where decision log lines go; nil turns them off.
	DecisionLog io.Writer
	// DecisionLogBuffer, DecisionLogMask and DecisionLogMaskContextSecrets:
	// see DecisionLogOptions (Buffer, Mask and MaskContextSecrets).
	DecisionLogBuffer             int
	DecisionLogMask               []string
	DecisionLogMaskContextSecrets bool
}

// Telemetry is verdict's tracing, metrics and decision logging. Its
// ObserveDecision makes it the engine's decision.Observer. A nil
// *Telemetry is valid and does nothing.
type Telemetry struct {
	log        *slog.Logger
	tracer     trace.Tracer
	tracing    bool
	config     TracingConfig
	propagator propagation.TextMapPropagator
	provider   trace.TracerProvider
	metrics    *Metrics
	// queue carries decisions to the goroutine that records their spans
	// and writes their log lines; nil when both are off.
	queue      *DecisionLog
	shutdownTP func(context.Context) error
	revisions  atomic.Pointer[revisionsCache]
}

// New sets up tracing from the environment (or opts.TracerProvider), the
// metrics registry and, when opts.DecisionLog is set, the decision log. It
// sets no OpenTelemetry globals: that is the program's choice (cmd/verdict
// installs TracerProvider and Propagator). Shutdown releases what New
// started.
func New(ctx context.Context, opts Options) (*Telemetry, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	t := &Telemetry{
		log:        opts.Log,
		metrics:    NewMetrics(),
		propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		shutdownTP: func(context.Context) error { return nil },
	}
	tp := opts.TracerProvider
	if tp != nil {
		t.tracing = true
		t.config = TracingConfig{Enabled: true, Protocol: "(provided)"}
	} else {
		if opts.Getenv == nil {
			opts.Getenv = os.Getenv
		}
		cfg, err := TracingConfigFromEnv(opts.Getenv)
		if err != nil {
			return nil, fmt.Errorf("tracing: %w", err)
		}
		var b *batcher
		if tp, b, t.shutdownTP, err = newTracerProvider(ctx, cfg, opts.Getenv, opts.ServiceVersion); err != nil {
			return nil, fmt.Errorf("tracing: %w", err)
		}
		if b != nil {
			b.onDrop = t.metrics.spansDropped.Inc
		}
		t.tracing, t.config = cfg.Enabled, cfg
	}
	t.provider = tp
	t.tracer = tp.Tracer(instrumentationScope, trace.WithInstrumentationVersion(opts.ServiceVersion),
		trace.WithSchemaURL(semconv.SchemaURL))
	if opts.DecisionLog != nil || t.tracing {
		var span func(*logEntry)
		if t.tracing {
			span = t.recordSpan
		}
		q, err := newDecisionLog(opts.DecisionLog, DecisionLogOptions{
			Buffer: opts.DecisionLogBuffer, Mask: opts.DecisionLogMask, MaskContextSecrets: opts.DecisionLogMaskContextSecrets,
			Metrics: t.metrics, Log: opts.Log,
		}, span)
		if err != nil {
			_ = t.shutdownTP(ctx)
			return nil, err
		}
		t.queue = q
	}
	return t, nil
}

// Flush waits until every decision observed so far has its span recorded
// (handed to the exporter's batch) and its log line written.
func (t *Telemetry) Flush(ctx context.Context) error {
	if t == nil || t.queue == nil {
		return nil
	}
	return t.queue.Flush(ctx)
}

// Shutdown writes the queued decision log lines and exports the pending
// spans, within ctx's deadline.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	var errs []error
	if t.queue != nil {
		// First: the queue's last spans go to the exporter below.
		errs = append(errs, t.queue.Close(ctx))
	}
	if err := t.shutdownTP(ctx); err != nil {
		errs = append(errs, fmt.Errorf("tracing: shutdown: %w", err))
	}
	return errors.Join(errs...)
}

// TracingEnabled reports whether spans are recorded and exported.
func (t *Telemetry) TracingEnabled() bool { return t != nil && t.tracing }

// TracingConfig is the tracing configuration in force.
func (t *Telemetry) TracingConfig() TracingConfig {
	if t == nil {
		return TracingConfig{}
	}
	return t.config
}

// Tracer is verdict's tracer (a no-op one when tracing is off).
func (t *Telemetry) Tracer() trace.Tracer {
	if t == nil {
		return noop.NewTracerProvider().Tracer("")
	}
	return t.tracer
}

// Propagator extracts and injects W3C traceparent, tracestate and baggage.
func (t *Telemetry) Propagator() propagation.TextMapPropagator { return t.propagator }

// TracerProvider is the provider the decision spans come from (a no-op
// one when tracing is off).
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.provider }

// Metrics is the metrics registry.
func (t *Telemetry) Metrics() *Metrics { return t.metrics }

// MetricsHandler serves GET /metrics.
func (t *Telemetry) MetricsHandler() http.Handler { return t.metrics.Handler() }

// DecisionLog is the decision log, nil when off.
func (t *Telemetry) DecisionLog() *DecisionLog {
	if t == nil || t.queue == nil || t.queue.w == nil {
		return nil
	}
	return t.queue
}

// TrackEngine makes the revision and generation gauges follow e.
func (t *Telemetry) TrackEngine(e *decision.Engine) {
	if t != nil {
		t.metrics.TrackEngine(e)
	}
}

// SpanNameDecision is the name of the span of one decision.
const SpanNameDecision = "verdict.decide"

// Attribute keys of decision spans. The member is the semantic
// conventions' enduser.id; the rest have no convention and live under
// verdict.*.
const (
	AttrDecisionID      = attribute.Key("verdict.decision_id")
	AttrTenant          = attribute.Key("verdict.tenant")
	AttrApplication     = attribute.Key("verdict.application")
	AttrAction          = attribute.Key("verdict.action")
	AttrAllow           = attribute.Key("verdict.allow")
	AttrStatus          = attribute.Key("verdict.status")
	AttrVisibility      = attribute.Key("verdict.visibility")
	AttrReasonCodes     = attribute.Key("verdict.reason.codes")
	AttrBundleRevisions = attribute.Key("verdict.bundle.revisions")
	AttrRequestService  = attribute.Key("verdict.request.service")
	AttrRequestMethod   = attribute.Key("verdict.request.method")
	AttrRequestPath     = attribute.Key("verdict.request.path")
	AttrResourceFRN     = attribute.Key("verdict.resource.frn")
	AttrExplained       = attribute.Key("verdict.explained")
	// Attributes of the per-layer events.
	AttrLayer             = attribute.Key("verdict.layer")
	AttrReasonCode        = attribute.Key("verdict.reason.code")
	AttrReasonEffect      = attribute.Key("verdict.reason.effect")
	AttrReasonMessage     = attribute.Key("verdict.reason.message")
	AttrReasonPolicy      = attribute.Key("verdict.reason.policy")
	AttrReasonStatement   = attribute.Key("verdict.reason.statement")
	AttrReasonGroup       = attribute.Key("verdict.reason.resource_group")
	AttrReasonSoajsCode   = attribute.Key("verdict.reason.soajs_code")
	AttrBundleName        = attribute.Key("verdict.bundle.name")
	AttrBundleSource      = attribute.Key("verdict.bundle.source")
	AttrBundleRevision    = attribute.Key("verdict.bundle.revision")
	AttrRegistrationKind  = attribute.Key("verdict.registration.kind")
	AttrRegistrationName  = attribute.Key("verdict.registration.name")
	AttrOperationOutcome  = attribute.Key("verdict.outcome")
	attrErrorTypeInternal = "internal"
)

// EventNameLayer prefixes the name of the event that carries one reason
// of a layer: "verdict.layer.iam", "verdict.layer.tenant", ...
const EventNameLayer = "verdict.layer."

var layerEventNames = map[string]string{}

func init() {
	for _, l := range []string{"engine", "tenant", "key", "route", "package", "iam", "resource", "delegation", "ext"} {
		layerEventNames[l] = EventNameLayer + l
	}
}

func layerEventName(layer string) string {
	if n, ok := layerEventNames[layer]; ok {
		return n
	}
	return EventNameLayer + layer
}

// ObserveDecision records one decision: metrics at once; the span (when
// tracing is on) and the log line (when logging is on) from the decision
// log's goroutine, so that the decision pays for one channel send. It
// implements decision.Observer.
func (t *Telemetry) ObserveDecision(ctx context.Context, req *decision.Request, d *decision.Decision, info decision.DecisionInfo) {
	if t == nil {
		return
	}
	t.metrics.observeDecision(d, &info)
	if t.queue == nil {
		return
	}
	parent := trace.SpanContextFromContext(ctx)
	t.queue.enqueue(logEntry{
		req: *req, d: d, at: info.Start, dur: info.Duration, err: info.Err, explained: info.Explained,
		// Without tracing, the line still carries the caller's trace id.
		parent: parent, traceID: parent.TraceID(),
	})
}

// recordSpan records e's decision span and sets the ids its log line
// carries. It runs on the decision log's goroutine.
func (t *Telemetry) recordSpan(e *logEntry) {
	sc := t.decisionSpan(e)
	e.traceID, e.spanID = sc.TraceID(), sc.SpanID()
}

// decisionSpan records the span of a decision after the fact, with the
// decision's start and end times, as a child of the span the decision was
// made in (the caller's, from traceparent, or the HTTP batch span). It
// returns the new span's context.
func (t *Telemetry) decisionSpan(e *logEntry) trace.SpanContext {
	ctx := context.Background()
	kind := trace.SpanKindServer // the decision is where this process enters the trace
	if e.parent.IsValid() {
		ctx = trace.ContextWithSpanContext(ctx, e.parent)
		if !e.parent.IsRemote() {
			kind = trace.SpanKindInternal
		}
	}
	_, span := t.tracer.Start(ctx, SpanNameDecision, trace.WithTimestamp(e.at), trace.WithSpanKind(kind))
	end := e.at.Add(e.dur)
	if span.IsRecording() {
		// The SDK copies attributes, so one pooled buffer serves them all.
		buf := attrPool.Get().(*[]attribute.KeyValue)
		attrs := decisionAttributes((*buf)[:0], &e.req, e.d, t.revisionsAttr(e.d.Revision))
		if e.explained {
			attrs = append(attrs, AttrExplained.Bool(true))
		}
		if e.err != nil {
			attrs = append(attrs, semconv.ErrorTypeKey.String(attrErrorTypeInternal))
			span.SetStatus(codes.Error, e.err.Error())
		}
		span.SetAttributes(attrs...)
		for i := range e.d.Reasons {
			r := &e.d.Reasons[i]
			attrs = reasonAttributes(attrs[:0], r)
			span.AddEvent(layerEventName(r.Layer), trace.WithTimestamp(end), trace.WithAttributes(attrs...))
		}
		clear(attrs[:cap(attrs)])
		*buf = attrs[:0]
		attrPool.Put(buf)
	}
	span.End(trace.WithTimestamp(end))
	return span.SpanContext()
}

// attrPool holds attribute buffers for decision spans.
var attrPool = sync.Pool{New: func() any {
	b := make([]attribute.KeyValue, 0, 24)
	return &b
}}

// decisionAttributes appends the decision span's attributes to attrs.
func decisionAttributes(attrs []attribute.KeyValue, req *decision.Request, d *decision.Decision, revisions attribute.KeyValue) []attribute.KeyValue {
	codes := make([]string, len(d.Reasons))
	for i := range d.Reasons {
		codes[i] = d.Reasons[i].Code
	}
	attrs = append(attrs,
		AttrDecisionID.String(d.DecisionID),
		AttrTenant.String(d.Tenant),
		AttrAllow.Bool(d.Allow),
		AttrStatus.Int(d.Status),
		AttrVisibility.String(d.Visibility),
		AttrReasonCodes.StringSlice(codes),
		revisions,
	)
	if d.Action != "" {
		attrs = append(attrs, AttrAction.String(d.Action))
	}
	if req.Member != "" {
		attrs = append(attrs, semconv.EnduserID(req.Member))
	}
	if req.Application != "" {
		attrs = append(attrs, AttrApplication.String(req.Application))
	}
	if hr := req.Request; hr != nil {
		attrs = append(attrs, AttrRequestMethod.String(hr.Method), AttrRequestPath.String(hr.Path))
		if hr.Service != "" {
			attrs = append(attrs, AttrRequestService.String(hr.Service))
		}
	}
	if res := req.Resource; res != nil && res.FRN != "" {
		attrs = append(attrs, AttrResourceFRN.String(res.FRN))
	}
	return attrs
}

// reasonAttributes appends the attributes of a reason's event to attrs.
func reasonAttributes(attrs []attribute.KeyValue, r *decision.Reason) []attribute.KeyValue {
	attrs = append(attrs,
		AttrLayer.String(r.Layer),
		AttrReasonCode.String(r.Code),
		AttrReasonEffect.String(r.Effect),
		AttrReasonMessage.String(r.Message),
	)
	if r.Policy != "" {
		attrs = append(attrs, AttrReasonPolicy.String(r.Policy))
	}
	if r.Statement != nil {
		attrs = append(attrs, AttrReasonStatement.Int(*r.Statement))
	}
	if r.ResourceGroup != "" {
		attrs = append(attrs, AttrReasonGroup.String(r.ResourceGroup))
	}
	if r.SoajsCode != 0 {
		attrs = append(attrs, AttrReasonSoajsCode.Int(r.SoajsCode))
	}
	return attrs
}

// revisionsCache is the verdict.bundle.revisions attribute of one
// generation's revisions map.
type revisionsCache struct {
	m  map[string]string
	kv attribute.KeyValue
}

// revisionsAttr returns the verdict.bundle.revisions attribute for revs,
// built once per generation: every decision of a generation carries the
// same map.
func (t *Telemetry) revisionsAttr(revs map[string]string) attribute.KeyValue {
	if c := t.revisions.Load(); c != nil && reflect.ValueOf(c.m).UnsafePointer() == reflect.ValueOf(revs).UnsafePointer() {
		return c.kv
	}
	c := &revisionsCache{m: revs, kv: AttrBundleRevisions.StringSlice(revisionList(revs))}
	t.revisions.Store(c)
	return c.kv
}

// revisionList renders bundle revisions as sorted "name=revision" strings.
func revisionList(revs map[string]string) []string {
	out := make([]string, 0, len(revs))
	for name, rev := range revs {
		out = append(out, name+"="+rev)
	}
	sort.Strings(out)
	return out
}

// --- reloads and registrations

// Span names of reloads and registrations.
const (
	SpanNameReload   = "verdict.reload"
	SpanNameRegister = "verdict.register"
)

// finish ends a registration's span and counts it in
// verdict_registrations_total: success when err is nil, else failure with
// err on the span.
func (t *Telemetry) finish(span trace.Span, kind string, start time.Time, dur time.Duration, err error) {
	outcome := OutcomeSuccess
	if err != nil {
		outcome = OutcomeFailure
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.SetAttributes(AttrOperationOutcome.String(outcome))
	span.End(trace.WithTimestamp(start.Add(dur)))
	t.metrics.registrations.WithLabelValues(kind, outcome).Inc()
}

// Reload is a finished load, reload or removal of one bundle, as a loader
// reports it after the fact (from an asynchronous NOTIFY processor).
type Reload struct {
	Bundle string
	// Source is where the bundle comes from (a path or URL).
	Source string
	// Revision is the installed revision ("" when none was installed).
	Revision string
	Start    time.Time
	Duration time.Duration
	// Err is why the change was rejected (the last good version serves).
	Err error
	// Unchanged is set when the change installed nothing new (the same
	// content was read again).
	Unchanged bool
	// Removed is set when the bundle was taken out.
	Removed bool
}

// Outcome is the reload's verdict_bundle_reloads_total outcome label:
// failure, unchanged, removed or success.
func (r Reload) Outcome() string {
	switch {
	case r.Err != nil:
		return OutcomeFailure
	case r.Unchanged:
		return OutcomeUnchanged
	case r.Removed:
		return OutcomeRemoved
	}
	return OutcomeSuccess
}

// ReloadObserved records a finished reload: a verdict.reload span from
// r.Start to r.Start+r.Duration (a child of ctx's span, if any), the
// reload counter, duration histogram and last-reload gauges; a removed
// bundle's gauges are dropped.
func (t *Telemetry) ReloadObserved(ctx context.Context, r Reload) {
	if t == nil {
		return
	}
	attrs := []attribute.KeyValue{AttrBundleName.String(r.Bundle)}
	if r.Source != "" {
		attrs = append(attrs, AttrBundleSource.String(r.Source))
	}
	if r.Revision != "" {
		attrs = append(attrs, AttrBundleRevision.String(r.Revision))
	}
	_, span := t.tracer.Start(ctx, SpanNameReload, trace.WithTimestamp(r.Start), trace.WithAttributes(attrs...))
	outcome := r.Outcome()
	if r.Err != nil {
		span.RecordError(r.Err)
		span.SetStatus(codes.Error, r.Err.Error())
	}
	span.SetAttributes(AttrOperationOutcome.String(outcome))
	span.End(trace.WithTimestamp(r.Start.Add(r.Duration)))
	if r.Removed && r.Err == nil {
		t.metrics.reloads.WithLabelValues(r.Bundle, outcome).Inc()
		t.metrics.forgetBundle(r.Bundle)
		return
	}
	t.metrics.observeReload(r.Bundle, outcome, r.Start.Add(r.Duration), r.Duration)
}

// RegistrationObserved records a finished run-time change after the fact:
// kind is what changed ("service", "delegation_request",
// "delegation_consent"), name identifies it (the service's name,
// "tenant/application/group", ...).
func (t *Telemetry) RegistrationObserved(ctx context.Context, kind, name string, start time.Time, dur time.Duration, err error) {
	if t == nil {
		return
	}
	_, span := t.tracer.Start(ctx, SpanNameRegister, trace.WithTimestamp(start),
		trace.WithAttributes(AttrRegistrationKind.String(kind), AttrRegistrationName.String(name)))
	t.finish(span, kind, start, dur, err)
}
