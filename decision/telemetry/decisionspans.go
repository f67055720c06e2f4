package telemetry

import (
	"context"
	"reflect"
	"sort"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/verdict-authz/verdict/decision"
)

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
