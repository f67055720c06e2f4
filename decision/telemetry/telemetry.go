package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"

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
