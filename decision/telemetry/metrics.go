package telemetry

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/verdict-authz/verdict/decision"
)

// Outcomes of a decision, as the verdict_decisions_total outcome label.
const (
	OutcomeAllow = "allow"
	OutcomeDeny  = "deny"
	// OutcomeError is a deny because the decision could not be made
	// (error.internal).
	OutcomeError = "error"
)

// Outcomes of a reload or registration.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	// OutcomeUnchanged is a reload that found nothing new to install.
	OutcomeUnchanged = "unchanged"
	// OutcomeRemoved is a bundle taken out.
	OutcomeRemoved = "removed"
)

// decisionBuckets spans a decision's latency: tens of microseconds to a
// second, roughly ×2.5 apart.
var decisionBuckets = []float64{
	10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1,
}

// reloadBuckets spans a reload: a millisecond to a minute.
var reloadBuckets = []float64{1e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 5, 10, 30, 60}

// Metrics holds verdict's Prometheus collectors in a registry of its own
// (with the Go runtime and process collectors), served by Handler.
//
// It uses prometheus/client_golang directly rather than the OpenTelemetry
// metric SDK behind its Prometheus exporter: the only consumer is a
// Prometheus scrape of GET /metrics; client_golang is already in the
// module graph through OPA (the exporter is not); its counters and
// histograms are lock-free atomics with no attribute-set hashing per
// observation, which keeps the cost on the decision path at a few hundred
// nanoseconds and no allocation; and its Go runtime and process
// collectors give the standard go_* and process_* series dashboards
// already expect.
type Metrics struct {
	registry *prometheus.Registry

	decisions        *prometheus.CounterVec // outcome, code
	reasons          *prometheus.CounterVec // layer, code, effect
	decisionDuration prometheus.Histogram   // seconds
	cache            *prometheus.CounterVec // result
	cacheHits        prometheus.Counter
	cacheMisses      prometheus.Counter
	reloads          *prometheus.CounterVec   // bundle, outcome
	reloadDuration   *prometheus.HistogramVec // bundle
	lastReloadOK     *prometheus.GaugeVec     // bundle
	lastReloadTime   *prometheus.GaugeVec     // bundle
	registrations    *prometheus.CounterVec   // kind, outcome
	logWritten       prometheus.Counter
	logDropped       prometheus.Counter
	logErrors        prometheus.Counter
	spansDropped     prometheus.Counter

	engine atomic.Pointer[decision.Engine]
}

// NewMetrics registers verdict's metrics in a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{registry: prometheus.NewRegistry()}
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "verdict_decisions_total",
		Help: "Decisions made, by outcome (allow, deny, error) and the code of the reason that decided (the first deny, or the first ground of an allow).",
	}, []string{"outcome", "code"})
	m.reasons = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "verdict_decision_reasons_total",
		Help: "Reasons given in decisions, by layer, code and effect.",
	}, []string{"layer", "code", "effect"})
	m.decisionDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "verdict_decision_duration_seconds",
		Help:    "Time to make one decision in the engine (gathering facts and evaluating Rego), excluding HTTP and explain=full decisions.",
		Buckets: decisionBuckets,
	})
	cache := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "verdict_decision_cache_lookups_total",
		Help: "Decision cache lookups (--decision-cache-size), by result: hit (answered from the cache) or miss (evaluated, then remembered). Zero while the cache is off.",
	}, []string{"result"})
	m.cache = cache
	m.cacheHits = cache.WithLabelValues(string(decision.CacheHit))
	m.cacheMisses = cache.WithLabelValues(string(decision.CacheMiss))
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "verdict_bundle_reloads_total",
		Help: "Bundle loads, reloads and removals, by bundle and outcome (success, failure: the last good version keeps serving, unchanged: nothing new to install, removed).",
	}, []string{"bundle", "outcome"})
	m.reloadDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "verdict_bundle_reload_duration_seconds",
		Help:    "Time to read, validate, compile and install a bundle.",
		Buckets: reloadBuckets,
	}, []string{"bundle"})
	m.lastReloadOK = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "verdict_bundle_last_reload_success",
		Help: "1 when the bundle's last load succeeded, 0 when it failed and the last good version is still serving.",
	}, []string{"bundle"})
	m.lastReloadTime = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "verdict_bundle_last_reload_timestamp_seconds",
		Help: "Unix time of the bundle's last load attempt.",
	}, []string{"bundle"})
	m.registrations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "verdict_registrations_total",
		Help: "Run-time changes (service registrations, delegation requests and consents), by kind and outcome.",
	}, []string{"kind", "outcome"})
	m.logWritten = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "verdict_decision_log_lines_written_total",
		Help: "Decision log lines written.",
	})
	m.logDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "verdict_decision_log_lines_dropped_total",
		Help: "Decision log lines dropped because the buffer was full (or the log was closed).",
	})
	m.logErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "verdict_decision_log_write_errors_total",
		Help: "Decision log lines lost to a write or encoding error.",
	})
	m.spansDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "verdict_trace_spans_dropped_total",
		Help: "Decision spans dropped because the decision queue (--decision-log-buffer) or the export queue (OTEL_BSP_MAX_QUEUE_SIZE) was full.",
	})
	m.registry.MustRegister(
		m.decisions, m.reasons, m.decisionDuration, m.cache,
		m.reloads, m.reloadDuration, m.lastReloadOK, m.lastReloadTime,
		m.registrations,
		m.logWritten, m.logDropped, m.logErrors, m.spansDropped,
		generationCollector{m},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registry is the registry the metrics live in (to add collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Handler serves the metrics in the Prometheus text format (or OpenMetrics
// when the scraper asks for it).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
}

// TrackEngine makes the bundle revision and generation gauges follow the
// engine's installed generation; they are read at scrape time.
func (m *Metrics) TrackEngine(e *decision.Engine) { m.engine.Store(e) }

// observeDecision counts one decision and records its latency.
func (m *Metrics) observeDecision(d *decision.Decision, info *decision.DecisionInfo) {
	failed := info.Err != nil
	if !info.Explained { // a traced evaluation says nothing about serving latency
		m.decisionDuration.Observe(info.Duration.Seconds())
	}
	outcome := OutcomeDeny
	switch {
	case failed:
		outcome = OutcomeError
	case d.Allow:
		outcome = OutcomeAllow
	}
	switch info.Cache {
	case decision.CacheHit:
		m.cacheHits.Inc()
	case decision.CacheMiss:
		m.cacheMisses.Inc()
	}
	m.decisions.WithLabelValues(outcome, decidingCode(d)).Inc()
	for i := range d.Reasons {
		r := &d.Reasons[i]
		m.reasons.WithLabelValues(r.Layer, r.Code, r.Effect).Inc()
	}
}

// decidingCode is the code of the reason that decided: the first deny of a
// deny, the first allow of an allow ("" when there is none).
func decidingCode(d *decision.Decision) string {
	want := "deny"
	if d.Allow {
		want = "allow"
	}
	for i := range d.Reasons {
		if d.Reasons[i].Effect == want {
			return d.Reasons[i].Code
		}
	}
	if len(d.Reasons) > 0 {
		return d.Reasons[0].Code
	}
	return ""
}

func (m *Metrics) observeReload(bundle, outcome string, at time.Time, dur time.Duration) {
	ok := 1.0
	if outcome == OutcomeFailure {
		ok = 0
	}
	m.reloads.WithLabelValues(bundle, outcome).Inc()
	m.reloadDuration.WithLabelValues(bundle).Observe(dur.Seconds())
	m.lastReloadOK.WithLabelValues(bundle).Set(ok)
	m.lastReloadTime.WithLabelValues(bundle).Set(float64(at.UnixNano()) / 1e9)
}

// forgetBundle removes a removed bundle's per-bundle gauges.
func (m *Metrics) forgetBundle(bundle string) {
	m.lastReloadOK.DeleteLabelValues(bundle)
	m.lastReloadTime.DeleteLabelValues(bundle)
}

// generationCollector reports the engine's current generation at scrape
// time: verdict_bundle_revision_info{bundle,revision} 1 for every serving
// bundle, verdict_generation and verdict_generation_loaded_timestamp_seconds.
type generationCollector struct{ m *Metrics }

var (
	revisionDesc = prometheus.NewDesc("verdict_bundle_revision_info",
		"The revision of each bundle being served (always 1).", []string{"bundle", "revision"}, nil)
	generationDesc = prometheus.NewDesc("verdict_generation",
		"Number of the generation (store snapshot and compiled policy) being served; 0 before the first load.", nil, nil)
	generationTimeDesc = prometheus.NewDesc("verdict_generation_loaded_timestamp_seconds",
		"Unix time at which the serving generation was installed.", nil, nil)
)

func (c generationCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- revisionDesc
	ch <- generationDesc
	ch <- generationTimeDesc
}

func (c generationCollector) Collect(ch chan<- prometheus.Metric) {
	e := c.m.engine.Load()
	if e == nil {
		return
	}
	gen := e.Current()
	if gen == nil {
		ch <- prometheus.MustNewConstMetric(generationDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(generationDesc, prometheus.GaugeValue, float64(gen.Number))
	if !gen.LoadedAt.IsZero() {
		ch <- prometheus.MustNewConstMetric(generationTimeDesc, prometheus.GaugeValue, float64(gen.LoadedAt.UnixNano())/1e9)
	}
	for name, rev := range gen.Revisions {
		ch <- prometheus.MustNewConstMetric(revisionDesc, prometheus.GaugeValue, 1, name, rev)
	}
}
