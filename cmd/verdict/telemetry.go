package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel"

	"github.com/verdict-authz/verdict/decision/telemetry"
	"github.com/verdict-authz/verdict/loader"
)

// telemetryOptions are `verdict run`'s decision-log flags. Tracing is
// configured by the standard OTEL_* environment variables.
type telemetryOptions struct {
	decisionLog             string
	decisionLogMask         []string
	decisionLogDefaultMasks bool
	decisionLogBuffer       int
}

func addTelemetryFlags(f *pflag.FlagSet, o *telemetryOptions) {
	f.StringVar(&o.decisionLog, "decision-log", "",
		`write one JSON line per decision to this file ("-" for stdout); off when empty`)
	f.StringArrayVar(&o.decisionLogMask, "decision-log-mask", nil,
		"JSON pointer into a decision log line whose value is replaced by \"***\", e.g. /input/context/card (repeatable; added to the default masks)")
	f.BoolVar(&o.decisionLogDefaultMasks, "decision-log-default-masks", true,
		"mask /input/key and, anywhere in /input/context, values under secret names (authorization, token, password, secret, api_key, cookie, credential, session, … in any case) and bearer tokens or JWTs; =false keeps only --decision-log-mask")
	f.IntVar(&o.decisionLogBuffer, "decision-log-buffer", telemetry.DefaultDecisionLogBuffer,
		"decision log lines that may wait to be written; when full, lines are dropped and counted, decisions never wait")
}

// setupTelemetry builds tracing (from OTEL_* variables), metrics and the
// decision log, and returns the decision log's destination (nil without
// --decision-log). The returned function flushes and closes them.
func setupTelemetry(ctx context.Context, o telemetryOptions, log *slog.Logger) (*telemetry.Telemetry, *telemetry.LogFile, func(), error) {
	var dest *telemetry.LogFile
	if o.decisionLog != "" {
		var err error
		if dest, err = telemetry.OpenDecisionLogDestination(o.decisionLog); err != nil {
			return nil, nil, nil, fmt.Errorf("--decision-log: %w", err)
		}
	}
	masks := o.effectiveMasks()
	opts := telemetry.Options{
		Log:                           log,
		ServiceVersion:                version,
		DecisionLogBuffer:             o.decisionLogBuffer,
		DecisionLogMask:               masks,
		DecisionLogMaskContextSecrets: o.decisionLogDefaultMasks,
	}
	if dest != nil {
		opts.DecisionLog = dest
	}
	tel, err := telemetry.New(ctx, opts)
	if err != nil {
		if dest != nil {
			dest.Close()
		}
		return nil, nil, nil, err
	}
	// The process-wide OpenTelemetry globals are the program's to set, for
	// any library that traces through them.
	if tel.TracingEnabled() {
		otel.SetTracerProvider(tel.TracerProvider())
	}
	otel.SetTextMapPropagator(tel.Propagator())
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("opentelemetry", "error", err)
	}))
	logDest := o.decisionLog
	if logDest == "" {
		logDest = "off"
	}
	log.Info("telemetry", "tracing", tel.TracingConfig().String(), "decision_log", logDest, "metrics", "/metrics")
	if o.decisionLog != "" {
		log.Info("decision log masks", "masks", o.describeMasks(masks))
	}
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
	return tel, dest, closeFn, nil
}

// effectiveMasks are the JSON pointer masks of the decision log: the
// defaults (unless --decision-log-default-masks=false) and
// --decision-log-mask's, each once.
func (o telemetryOptions) effectiveMasks() []string {
	var masks []string
	if o.decisionLogDefaultMasks {
		masks = append(masks, telemetry.DefaultDecisionLogMask...)
	}
	for _, m := range o.decisionLogMask {
		if !slices.Contains(masks, m) {
			masks = append(masks, m)
		}
	}
	return masks
}

// describeMasks says what the decision log masks, for the start-up log.
func (o telemetryOptions) describeMasks(masks []string) string {
	parts := slices.Clone(masks)
	if o.decisionLogDefaultMasks {
		parts = append(parts, "/input/context: values under secret names and bearer tokens")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// reopenOnHangup reopens the decision log file at every signal on hup
// (SIGHUP, logrotate's convention: it renames the file, then signals),
// until ctx ends. The lines queued before the signal are written to the
// old file first. Without a decision log file the signal is logged and
// ignored; verdict never stops on it.
func reopenOnHangup(ctx context.Context, hup <-chan os.Signal, tel *telemetry.Telemetry, dest *telemetry.LogFile, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		if dest == nil || dest.Path() == "" {
			log.Info("SIGHUP: no decision log file to reopen")
			continue
		}
		if dl := tel.DecisionLog(); dl != nil {
			flushCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := dl.Flush(flushCtx); err != nil {
				log.Warn("SIGHUP: the decision log was not flushed before reopening", "error", err)
			}
			cancel()
		}
		if err := dest.Reopen(); err != nil {
			log.Error("SIGHUP: the decision log could not be reopened; still writing to the old file", "path", dest.Path(), "error", err)
			continue
		}
		log.Info("SIGHUP: decision log reopened", "path", dest.Path())
	}
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
