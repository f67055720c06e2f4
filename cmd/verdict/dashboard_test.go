package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/telemetry"
	"github.com/verdict-authz/verdict/loader"
)

// dashboardFile is the Grafana dashboard shipped in the repository.
const dashboardFile = "../../dashboards/verdict.json"

// TestDashboardQueriesExportedMetrics: every metric the shipped Grafana
// dashboard queries (panels, template variables, annotations) is one that
// verdict run exports, so a renamed metric cannot leave a panel silently
// empty.
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash grafanaDashboard
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	exprs := dash.queries()
	if len(exprs) < 10 {
		t.Fatalf("found %d queries in %s; the dashboard or its parsing is broken", len(exprs), dashboardFile)
	}
	exported, types := exportedMetrics(t)
	queried := map[string]bool{}
	for _, q := range exprs {
		names := metricNames(q.expr)
		if len(names) == 0 {
			t.Errorf("%s: query %q names no metric", q.where, q.expr)
		}
		for _, name := range names {
			queried[name] = true
			if !isExported(name, exported, types) {
				t.Errorf("%s: query %q reads %s, which verdict does not export", q.where, q.expr, name)
			}
		}
	}
	// The dashboard covers what the README promises it shows.
	for _, want := range []string{
		"verdict_decisions_total", "verdict_decision_reasons_total",
		"verdict_decision_duration_seconds_bucket", "verdict_decision_cache_lookups_total",
		"verdict_bundle_reloads_total", "verdict_bundle_last_reload_success",
		"verdict_state_lag_changes", "verdict_state_staleness_seconds",
	} {
		if !queried[want] {
			t.Errorf("the dashboard does not query %s", want)
		}
	}
}

func TestMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`sum by (outcome) (rate(verdict_decisions_total{instance=~"$instance"}[$__rate_interval]))`, []string{"verdict_decisions_total"}},
		{`histogram_quantile(0.99, sum by (le, bundle) (rate(a_bucket{x="rate(b)"}[5m])))`, []string{"a_bucket"}},
		{`sum(rate(a{r="hit"}[1m])) / sum(rate(a[1m]))`, []string{"a"}},
		{`time() - max(b)`, []string{"b"}},
		{`sum(1 - c{i=~"$instance"}) > bool 0 and on (instance) d`, []string{"c", "d"}},
		{`label_values(verdict_generation, instance)`, []string{"verdict_generation"}},
		{`topk(10, sum without (code) (e offset 5m)) * 1e-3`, []string{"e"}},
	}
	for _, tt := range tests {
		if got := metricNames(tt.expr); !slices.Equal(got, tt.want) {
			t.Errorf("metricNames(%q) = %v, want %v", tt.expr, got, tt.want)
		}
	}
}

// grafanaDashboard holds the parts of a Grafana dashboard that query.
type grafanaDashboard struct {
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name string `json:"name"`
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
}

type grafanaPanel struct {
	Title   string         `json:"title"`
	Panels  []grafanaPanel `json:"panels"` // a collapsed row's panels
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

type dashboardQuery struct{ where, expr string }

func (d *grafanaDashboard) queries() []dashboardQuery {
	var out []dashboardQuery
	var walk func([]grafanaPanel)
	walk = func(panels []grafanaPanel) {
		for _, p := range panels {
			for _, target := range p.Targets {
				out = append(out, dashboardQuery{"panel " + p.Title, target.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		var s string
		if json.Unmarshal(v.Query, &s) != nil {
			json.Unmarshal(v.Query, &q)
			s = q.Query
		}
		out = append(out, dashboardQuery{"variable " + v.Name, s})
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			out = append(out, dashboardQuery{"annotation " + a.Name, a.Expr})
		}
	}
	return out
}

var (
	promString    = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promMatchers  = regexp.MustCompile(`\{[^}]*\}`)
	promRange     = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promOffset    = regexp.MustCompile(`\boffset\s+\S+`)
	promIdent     = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promLabelArgs = regexp.MustCompile(`^label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)`)
	promKeywords  = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "by": true, "without": true, "on": true, "ignoring": true, "offset": true, "inf": true, "nan": true}
)

// metricNames returns the metric names a PromQL expression (or a Grafana
// label_values(...) variable query) reads, sorted and without repeats:
// identifiers that are not functions, keywords, labels or numbers.
func metricNames(expr string) []string {
	if m := promLabelArgs.FindStringSubmatch(strings.TrimSpace(expr)); m != nil {
		return []string{m[1]}
	}
	s := promString.ReplaceAllString(expr, `""`)
	s = promMatchers.ReplaceAllString(s, " ")
	s = promRange.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	s = promOffset.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range promIdent.FindAllStringIndex(s, -1) {
		ident := s[loc[0]:loc[1]]
		if loc[0] > 0 {
			if prev := s[loc[0]-1]; prev == '.' || prev == '$' || (prev >= '0' && prev <= '9') {
				continue // part of a number (1e-3) or a Grafana variable
			}
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function
		}
		if promKeywords[strings.ToLower(ident)] {
			continue
		}
		names = append(names, ident)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// exportedMetrics lists the names verdict run's registry describes (the
// telemetry metrics and, as with --state-db, the fleet state's), and the
// types of those it gathers once a decision and a reload have been
// observed.
func exportedMetrics(t *testing.T) (map[string]bool, map[string]dto.MetricType) {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tel, err := telemetry.New(ctx, telemetry.Options{Log: log, TracerProvider: noop.NewTracerProvider()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tel.Shutdown(ctx) })
	engine := decision.NewEngine(log, decision.WithObserver(tel))
	ld, err := loader.New(engine, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ld.Close() })
	reg := tel.Metrics().Registry()
	registerFleetMetrics(reg, ld)
	tel.ObserveDecision(ctx, &decision.Request{Tenant: "bank"},
		&decision.Decision{Allow: true, Status: 200, Reasons: []decision.Reason{{Layer: "iam", Code: "iam.allow", Effect: "allow"}}},
		decision.DecisionInfo{Start: time.Now(), Duration: time.Millisecond, Cache: decision.CacheMiss})
	tel.ReloadObserved(ctx, telemetry.Reload{Bundle: "demo", Source: "bundles/demo", Revision: "1", Start: time.Now(), Duration: time.Millisecond})

	descs := make(chan *prometheus.Desc)
	go func() { reg.Describe(descs); close(descs) }()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	exported := map[string]bool{}
	for d := range descs {
		if match := fqName.FindStringSubmatch(d.String()); match != nil {
			exported[match[1]] = true
		}
	}
	for _, want := range []string{"verdict_decisions_total", "verdict_state_lag_changes"} {
		if !exported[want] {
			t.Fatalf("the registry's descriptions were not read (no %s): %v", want, exported)
		}
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]dto.MetricType{}
	for _, f := range fams {
		types[f.GetName()] = f.GetType()
	}
	return exported, types
}

// isExported says whether a queried series is exported: a metric's own
// name, or a histogram's _bucket, _sum or _count series (a summary's _sum
// or _count).
func isExported(name string, exported map[string]bool, types map[string]dto.MetricType) bool {
	if exported[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok || !exported[base] {
			continue
		}
		switch types[base] {
		case dto.MetricType_HISTOGRAM:
			return true
		case dto.MetricType_SUMMARY:
			return suffix != "_bucket"
		}
	}
	return false
}
