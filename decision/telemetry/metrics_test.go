package telemetry

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader/generation"
)

// scrape fetches GET /metrics from m's handler in the Prometheus text
// format and parses it with the Prometheus text parser.
func scrape(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "text/plain")
	m.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct == "" || ct[:10] != "text/plain" {
		t.Fatalf("Content-Type %q", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// find returns the metric of the family with exactly the given labels.
func find(fams map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	fam := fams[name]
	if fam == nil {
		return nil
	}
	for _, m := range fam.Metric {
		if len(m.Label) != len(labels) {
			continue
		}
		ok := true
		for _, lp := range m.Label {
			if labels[lp.GetName()] != lp.GetValue() {
				ok = false
			}
		}
		if ok {
			return m
		}
	}
	return nil
}

// value is a counter's or gauge's value (failing the test when absent).
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	m := find(fams, name, labels)
	if m == nil {
		t.Fatalf("no %s%v in /metrics", name, labels)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	t.Fatalf("%s is neither a counter nor a gauge", name)
	return 0
}

func allowDecision() *decision.Decision {
	st := 1
	return &decision.Decision{
		DecisionID: "a-1", Allow: true, Status: 200, Tenant: "bank", Visibility: "full", Fields: []string{},
		Reasons: []decision.Reason{
			{Layer: "iam", Code: "iam.allow", Effect: "allow", Policy: "p", Statement: &st},
			{Layer: "iam", Code: "resource.group", Effect: "allow", ResourceGroup: "g"},
		},
		Revision: map[string]string{"demo": "r1"},
	}
}

func TestMetricsTextIsParsedByPrometheus(t *testing.T) {
	tel, err := New(t.Context(), Options{Log: quietLog, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(t.Context())
	engine := decision.NewEngine(quietLog)
	engine.Install(&generation.Generation{Number: 7, LoadedAt: time.Unix(1700000000, 0),
		Revisions: map[string]string{"demo": "2026-11-22.1", "acme": "v9"}})
	tel.TrackEngine(engine)

	ctx := t.Context()
	req := sampleRequest()
	tel.ObserveDecision(ctx, req, allowDecision(), decision.DecisionInfo{Start: time.Now(), Duration: 40 * time.Microsecond})
	tel.ObserveDecision(ctx, req, allowDecision(), decision.DecisionInfo{Start: time.Now(), Duration: 60 * time.Microsecond})
	tel.ObserveDecision(ctx, req, sampleDecision("d"), decision.DecisionInfo{Start: time.Now(), Duration: 2 * time.Millisecond})
	failed := sampleDecision("e")
	failed.Reasons = []decision.Reason{{Layer: "engine", Code: "error.internal", Effect: "deny"}}
	tel.ObserveDecision(ctx, req, failed, decision.DecisionInfo{Start: time.Now(), Duration: time.Millisecond, Err: errors.New("boom")})
	tel.ObserveDecision(ctx, req, allowDecision(), decision.DecisionInfo{Start: time.Now(), Duration: time.Microsecond, Cache: decision.CacheHit})
	tel.ObserveDecision(ctx, req, allowDecision(), decision.DecisionInfo{Start: time.Now(), Duration: time.Microsecond, Cache: decision.CacheHit})
	tel.ObserveDecision(ctx, req, allowDecision(), decision.DecisionInfo{Start: time.Now(), Duration: 50 * time.Microsecond, Cache: decision.CacheMiss})
	// An explained decision counts but stays out of the latency histogram.
	tel.ObserveDecision(ctx, req, allowDecision(), decision.DecisionInfo{Start: time.Now(), Duration: time.Second, Explained: true})

	tel.ReloadObserved(ctx, Reload{Bundle: "demo", Source: "/bundles/demo", Revision: "2026-11-22.1", Start: time.Now(), Duration: time.Millisecond})
	tel.ReloadObserved(ctx, Reload{Bundle: "acme", Source: "/bundles/acme", Start: time.Now().Add(-time.Second),
		Duration: 300 * time.Millisecond, Err: errors.New("data.yaml:3: bad")})
	tel.ReloadObserved(ctx, Reload{Bundle: "demo", Start: time.Now(), Duration: time.Millisecond, Unchanged: true})
	tel.ReloadObserved(ctx, Reload{Bundle: "old", Start: time.Now(), Duration: time.Millisecond})
	tel.ReloadObserved(ctx, Reload{Bundle: "old", Start: time.Now(), Duration: time.Millisecond, Removed: true})
	tel.RegistrationObserved(ctx, "service", "portfolios", time.Now(), time.Millisecond, nil)

	fams := scrape(t, tel.Metrics())
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"verdict_decisions_total", map[string]string{"outcome": "allow", "code": "iam.allow"}, 6},
		{"verdict_decision_cache_lookups_total", map[string]string{"result": "hit"}, 2},
		{"verdict_decision_cache_lookups_total", map[string]string{"result": "miss"}, 1},
		{"verdict_decisions_total", map[string]string{"outcome": "deny", "code": "iam.explicit_deny"}, 1},
		{"verdict_decisions_total", map[string]string{"outcome": "error", "code": "error.internal"}, 1},
		{"verdict_decision_reasons_total", map[string]string{"layer": "iam", "code": "resource.group", "effect": "allow"}, 6},
		{"verdict_bundle_reloads_total", map[string]string{"bundle": "demo", "outcome": "success"}, 1},
		{"verdict_bundle_reloads_total", map[string]string{"bundle": "acme", "outcome": "failure"}, 1},
		{"verdict_bundle_reloads_total", map[string]string{"bundle": "demo", "outcome": "unchanged"}, 1},
		{"verdict_bundle_reloads_total", map[string]string{"bundle": "old", "outcome": "success"}, 1},
		{"verdict_bundle_reloads_total", map[string]string{"bundle": "old", "outcome": "removed"}, 1},
		{"verdict_bundle_last_reload_success", map[string]string{"bundle": "demo"}, 1},
		{"verdict_bundle_last_reload_success", map[string]string{"bundle": "acme"}, 0},
		{"verdict_registrations_total", map[string]string{"kind": "service", "outcome": "success"}, 1},
		{"verdict_bundle_revision_info", map[string]string{"bundle": "demo", "revision": "2026-11-22.1"}, 1},
		{"verdict_bundle_revision_info", map[string]string{"bundle": "acme", "revision": "v9"}, 1},
		{"verdict_generation", nil, 7},
		{"verdict_generation_loaded_timestamp_seconds", nil, 1700000000},
		{"verdict_decision_log_lines_written_total", nil, 0},
		{"verdict_decision_log_lines_dropped_total", nil, 0},
	}
	for _, c := range checks {
		if got := value(t, fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	h := find(fams, "verdict_decision_duration_seconds", nil)
	if h == nil || h.Histogram == nil {
		t.Fatal("no decision latency histogram")
	}
	if h.Histogram.GetSampleCount() != 7 {
		t.Errorf("latency histogram counted %d decisions, want 7 (the explained one is left out)", h.Histogram.GetSampleCount())
	}
	if got := h.Histogram.GetSampleSum(); got < 0.003 || got > 0.0032 {
		t.Errorf("latency sum %v, want 0.003152", got)
	}
	if find(fams, "verdict_bundle_last_reload_success", map[string]string{"bundle": "old"}) != nil {
		t.Error("a removed bundle keeps its last-reload gauge")
	}
	rd := find(fams, "verdict_bundle_reload_duration_seconds", map[string]string{"bundle": "acme"})
	if rd == nil || rd.Histogram.GetSampleCount() != 1 || rd.Histogram.GetSampleSum() != 0.3 {
		t.Errorf("reload duration of acme: %v", rd)
	}
	for _, runtime := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes"} {
		if fams[runtime] == nil {
			t.Errorf("no Go runtime metric %s", runtime)
		}
	}

	// A removed bundle's gauges go away.
	tel.ReloadObserved(ctx, Reload{Bundle: "acme", Start: time.Now(), Duration: time.Millisecond, Removed: true})
	fams = scrape(t, tel.Metrics())
	if find(fams, "verdict_bundle_last_reload_success", map[string]string{"bundle": "acme"}) != nil {
		t.Error("the removed bundle still has a last-reload gauge")
	}
}
