package e2ereload

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/test/worldgen"
)

// benchWorld writes the reference tenant (10,000 members, 1,000 policies,
// 1,000 resource groups) as a bundle and loads it in process.
func benchWorld(tb testing.TB) (*loader.Loader, *decision.Engine, loader.Source, *worldgen.World) {
	tb.Helper()
	w := worldgen.Generate(worldgen.Bench)
	dir := filepath.Join(tb.TempDir(), "world")
	if err := w.WriteBundle(dir, "rev0"); err != nil {
		tb.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	engine := decision.NewEngine(quiet)
	l, err := loader.New(engine, quiet)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(l.Close)
	src := loader.Source{Name: "world", Location: dir}
	if _, err := l.LoadAll(context.Background(), []loader.Source{src}); err != nil {
		tb.Fatal(err)
	}
	return l, engine, src, w
}

// bumpRevision rewrites the bundle's manifest so the next reload is a real
// change (the bundle-unchanged processor would close an identical one).
func bumpRevision(tb testing.TB, src loader.Source, i int) {
	tb.Helper()
	manifest := fmt.Sprintf(`{"revision": "rev%d", "roots": ["verdict"]}`, i)
	if err := os.WriteFile(filepath.Join(src.Location, ".manifest"), []byte(manifest), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkReloadTenant10k measures one reload of a bundle holding a tenant
// of 10,000 members: read and validate the files, assemble and compile the
// Rego, replace the bundle's rows in the store, install the generation.
func BenchmarkReloadTenant10k(b *testing.B) {
	l, engine, src, _ := benchWorld(b)
	ctx := b.Context()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bumpRevision(b, src, i+1)
		if err := l.Reload(ctx, src); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if got := engine.Current().Revisions["world"]; got != fmt.Sprintf("rev%d", b.N) {
		b.Fatalf("revision %s", got)
	}
}

// TestDecisionLatencyWhileReloading measures in-process decision latency on
// the 10,000-member tenant, first idle, then while the bundle is reloaded
// back to back. It only reports (timing is never asserted); set
// VERDICT_RELOAD_BENCH=1 to run it.
func TestDecisionLatencyWhileReloading(t *testing.T) {
	if os.Getenv("VERDICT_RELOAD_BENCH") == "" {
		t.Skip("set VERDICT_RELOAD_BENCH=1 to measure decision latency while reloading")
	}
	l, engine, src, w := benchWorld(t)
	reqs := w.Requests(1, 4096)
	ctx := t.Context()
	measure := func(d time.Duration) []time.Duration {
		var lat []time.Duration
		end := time.Now().Add(d)
		for i := 0; time.Now().Before(end); i++ {
			r := reqs[i%len(reqs)]
			req := &decision.Request{Tenant: r.Tenant, Member: r.Member, Action: r.Action}
			if r.FRN != "" {
				req.Resource = &decision.Resource{FRN: r.FRN}
			}
			start := time.Now()
			if _, err := engine.Decide(ctx, req); err != nil {
				t.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		return lat
	}
	idle := measure(5 * time.Second)

	var stop atomic.Bool
	var reloads atomic.Int64
	var reloadTime atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; !stop.Load(); i++ {
			bumpRevision(t, src, i)
			start := time.Now()
			if err := l.Reload(ctx, src); err != nil {
				t.Error(err)
				return
			}
			reloadTime.Add(int64(time.Since(start)))
			reloads.Add(1)
		}
	}()
	busy := measure(15 * time.Second)
	stop.Store(true)
	<-done
	n := reloads.Load()
	t.Logf("idle:      %s", summary(idle))
	t.Logf("reloading: %s", summary(busy))
	if n > 0 {
		t.Logf("%d reloads during the run, mean %v each", n, time.Duration(reloadTime.Load()/n).Round(time.Millisecond))
	}
}

func summary(lat []time.Duration) string {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) time.Duration { return lat[int(float64(len(lat)-1)*p)] }
	return fmt.Sprintf("%d decisions, p50 %v, p99 %v, p99.9 %v, max %v", len(lat), q(0.50), q(0.99), q(0.999), lat[len(lat)-1])
}
