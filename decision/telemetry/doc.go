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
// Reloads and run-time changes are reported after the fact, from the
// loader's events, through ReloadObserved and RegistrationObserved. The
// package sets no OpenTelemetry globals; the program does (cmd/verdict).
package telemetry
