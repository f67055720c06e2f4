package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/pflag"

	"github.com/verdict-authz/verdict/decision/telemetry"
	"github.com/verdict-authz/verdict/loader"
)

// telemetryOptions are `verdict run`'s decision-log flags. Tracing is
// configured by the standard OTEL_* environment variables.
type telemetryOptions struct {
	decisionLog       string
	decisionLogMask   []string
	decisionLogBuffer int
}

func addTelemetryFlags(f *pflag.FlagSet, o *telemetryOptions) {
	f.StringVar(&o.decisionLog, "decision-log", "",
		`write one JSON line per decision to this file ("-" for stdout); off when empty`)
	f.StringArrayVar(&o.decisionLogMask, "decision-log-mask", []string{"/input/key"},
		"JSON pointer into a decision log line whose value is replaced by \"***\", e.g. /input/context/token (repeatable; giving any replaces the default)")
	f.IntVar(&o.decisionLogBuffer, "decision-log-buffer", telemetry.DefaultDecisionLogBuffer,
		"decision log lines that may wait to be written; when full, lines are dropped and counted, decisions never wait")
}

// setupTelemetry builds tracing (from OTEL_* variables), metrics and the
// decision log. The returned function flushes and closes them.
func setupTelemetry(ctx context.Context, o telemetryOptions, log *slog.Logger) (*telemetry.Telemetry, func(), error) {
	var dest io.WriteCloser
	if o.decisionLog != "" {
		var err error
		if dest, err = telemetry.OpenDecisionLogDestination(o.decisionLog); err != nil {
			return nil, nil, fmt.Errorf("--decision-log: %w", err)
		}
	}
	opts := telemetry.Options{
		Log:               log,
		ServiceVersion:    version,
		DecisionLogBuffer: o.decisionLogBuffer,
		DecisionLogMask:   o.decisionLogMask,
	}
	if dest != nil {
		opts.DecisionLog = dest
	}
	tel, err := telemetry.New(ctx, opts)
	if err != nil {
		if dest != nil {
			dest.Close()
		}
		return nil, nil, err
	}
	telemetry.SetDefault(tel)
	logDest := o.decisionLog
	if logDest == "" {
		logDest = "off"
	}
	log.Info("telemetry", "tracing", tel.TracingConfig().String(), "decision_log", logDest, "metrics", "/metrics")
	closeFn := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(ctx); err != nil {
			log.Warn("telemetry shutdown", "error", err)
		}
		if dl := tel.DecisionLog(); dl != nil && dl.Dropped() > 0 {
			log.Warn("decision log lines were dropped", "dropped", dl.Dropped(), "written", dl.Written())
		}
		if dest != nil {
			dest.Close()
		}
	}
	return tel, closeFn, nil
}

// telemetryProcessor is the change pipeline's NOTIFY processor that turns
// every bundle change (load, reload, removal; committed or rejected) into
// a verdict.reload span and the reload metrics, and any other change (a
// run-time registration) into a verdict.register span.
type telemetryProcessor struct{ tel *telemetry.Telemetry }

func (telemetryProcessor) Name() string { return "telemetry" }
func (telemetryProcessor) Order() int   { return 300 } // after status and log
func (telemetryProcessor) Description() string {
	return "records each change as an OpenTelemetry span and in the reload metrics of GET /metrics"
}

func (p telemetryProcessor) Notify(ctx context.Context, ev *loader.Event) {
	if ev.Subject.Type != loader.SubjectBundle {
		p.tel.RegistrationObserved(ctx, ev.Subject.Type, ev.Subject.Name, ev.Started, ev.Duration, ev.Err)
		return
	}
	if ev.Bundle == nil {
		return
	}
	for _, src := range ev.Bundle.Sources {
		r := telemetry.Reload{
			Bundle:    src.Name,
			Source:    src.Location,
			Start:     ev.Started,
			Duration:  ev.Duration,
			Err:       ev.Err,
			Unchanged: ev.Err == nil && ev.ClosedBy != "",
			Removed:   ev.Change == loader.KindDelete,
		}
		if b := ev.Bundle.Next[src.Name]; b != nil && ev.Err == nil {
			r.Revision = b.Revision
		}
		p.tel.ReloadObserved(ctx, r)
	}
}
