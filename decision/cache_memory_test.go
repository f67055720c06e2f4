package decision_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/decision"
)

// The decision cache's memory stays within --decision-cache-max-bytes as
// the heap measures it, whatever its entry bound, and a body over
// MaxCachedRequestBytes is never cached. Regression: unique ~1 MB bodies
// took the heap to 2.7 GB with 1,000 entries.
func TestDecisionCacheHeapStaysWithinMaxBytes(t *testing.T) {
	const maxBytes = 4 << 20
	obs := &lastCacheResult{}
	engine := demoEngine(t, decision.WithObserver(obs),
		decision.WithDecisionCache(decision.CacheOptions{Size: 1 << 20, MaxBytes: maxBytes, TTL: time.Hour}))
	ctx := context.Background()
	decide := func(body string) decision.CacheResult {
		t.Helper()
		d, err := engine.DecideJSON(ctx, []byte(body), parseBody)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allow {
			t.Fatalf("not allowed: %+v", d.Reasons)
		}
		return obs.last
	}
	ask := func(i int, pad string) string {
		return fmt.Sprintf(`{"tenant":"bank","member":"user_a","action":"finmars:Portfolio:list","context":{"i":%d,"pad":%q}}`, i, pad)
	}

	huge := ask(0, strings.Repeat("h", 1<<20))
	for i, want := range []decision.CacheResult{decision.CacheMiss, decision.CacheMiss} {
		if got := decide(huge); got != want {
			t.Fatalf("a 1 MB body, time %d: %q, want %q (never cached)", i+1, got, want)
		}
	}
	small := ask(0, "")
	decide(small)
	if got := decide(small); got != decision.CacheHit {
		t.Fatalf("a small body again: %q, want a hit", got)
	}

	pad := strings.Repeat("p", 10<<10)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 1500 {
		decide(ask(i+1, pad))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(engine)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	entries, charged := decision.CacheUsage(engine.Current())
	t.Logf("1,500 unique 10 KB bodies: %d entries charged %.1f MiB, the heap grew by %.1f MiB (bound %d MiB)",
		entries, float64(charged)/(1<<20), float64(grown)/(1<<20), maxBytes>>20)
	if charged > maxBytes {
		t.Errorf("the entries are charged %d bytes, over the bound of %d", charged, maxBytes)
	}
	if grown > 2*maxBytes {
		t.Errorf("the heap grew by %d bytes with the cache bounded to %d", grown, maxBytes)
	}
}

// lastCacheResult remembers what the decision cache did for the last
// decision, and nothing else (it must not hold on to requests).
type lastCacheResult struct{ last decision.CacheResult }

func (o *lastCacheResult) ObserveDecision(_ context.Context, _ *decision.Request, _ *decision.Decision, info decision.DecisionInfo) {
	o.last = info.Cache
}
