package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

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
