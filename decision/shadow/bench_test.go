package shadow_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/shadow"
	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/loader/loadertest"
	"github.com/verdict-authz/verdict/test/worldgen"
)

// benchWorld is test/bench's "small" scale: one tenant of 100 members with
// 1,000 policies and 1,000 resource groups.
var benchWorld = worldgen.Spec{Seed: 7, Tenants: 1, Members: 100, Policies: 1000, ResourceGroups: 1000, ObjectsPerRG: 10, ViewSets: 50}

// BenchmarkLiveDecide is a live Engine.Decide without a shadow and with one
// shadowing a share of the decisions against a copy of the same bundle
// (its worker runs beside the benchmark loop, as in verdict run).
func BenchmarkLiveDecide(b *testing.B) {
	w := worldgen.Generate(benchWorld)
	dir := filepath.Join(b.TempDir(), "world")
	if err := w.WriteBundle(dir, "bench"); err != nil {
		b.Fatal(err)
	}
	sources := []loader.Source{{Name: "world", Location: dir}}
	reqs := w.Requests(3, 4096)
	for _, sample := range []float64{-1, 0.1, 1} {
		name := "no-shadow"
		if sample >= 0 {
			name = fmt.Sprintf("shadow-sample-%g", sample)
		}
		b.Run(name, func(b *testing.B) {
			var opts []decision.EngineOption
			var sh *shadow.Shadow
			if sample >= 0 {
				candidate, _ := loadertest.Load(b, sources)
				sh = shadow.New(&pinner{e: candidate}, shadow.Options{Sample: sample})
				opts = append(opts, decision.WithObserver(sh))
				go sh.Run(context.Background())
			}
			live, _ := loadertest.Load(b, sources, opts...)
			ctx := context.Background()
			i := 0
			for b.Loop() {
				r := reqs[i%len(reqs)]
				i++
				req := &decision.Request{Tenant: r.Tenant, Member: r.Member, Action: r.Action}
				if r.FRN != "" {
					req.Resource = &decision.Resource{FRN: r.FRN}
				}
				if _, err := live.Decide(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if sh != nil {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				sh.Close(ctx)
				c := sh.Status().Counts
				b.ReportMetric(float64(c.Same+c.AllowToDeny+c.DenyToAllow+c.Changed)/float64(b.N), "shadowed/op")
				b.ReportMetric(float64(c.Dropped)/float64(b.N), "dropped/op")
			}
		})
	}
}

// BenchmarkObserveDecision is what a live decision pays the shadow itself:
// the sample draw and, for a sampled one, the non-blocking queue send (here
// to a queue no worker drains, so that it measures the send and the drop).
func BenchmarkObserveDecision(b *testing.B) {
	req := &decision.Request{Tenant: "t00", Member: "m00001", Action: "finmars:ViewSet001:list"}
	d := &decision.Decision{Allow: true, Status: 200}
	for _, sample := range []float64{0.1, 1} {
		b.Run(fmt.Sprintf("sample-%g", sample), func(b *testing.B) {
			sh := shadow.New(&pinner{off: true}, shadow.Options{Sample: sample})
			ctx := context.Background()
			for b.Loop() {
				sh.ObserveDecision(ctx, req, d, decision.DecisionInfo{})
			}
		})
	}
}
