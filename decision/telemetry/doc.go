// Package telemetry makes verdict's decisions observable: OpenTelemetry
// spans inside the caller's trace, Prometheus metrics and asynchronous JSON
// decision logs.
//
// A Telemetry is built once by `verdict run` (New) and handed to the
// decision engine as its Observer (decision.WithObserver) and to the HTTP API
// (httpapi.Options.Telemetry). Tracing is configured from the standard
// OTEL_* environment variables and is a no-op when none is set; metrics are
// always collected and served at GET /metrics; decision logs are written
// only when a destination is configured, through a bounded buffer that drops
// (and counts) lines rather than ever making a decision wait.
//
// The bundle loader reports reloads and registrations through StartReload,
// ReloadObserved and StartRegistration (package functions that use the
// instance installed with SetDefault, and are no-ops before).
package telemetry
