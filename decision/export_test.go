package decision

import (
	"context"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	policy "github.com/verdict-authz/verdict/rego"
)

// GatherForTest exposes gather, so that benchmarks can time the Go side
// and the Rego evaluation of a decision apart.
func GatherForTest(g *Generation, req *Request) (ast.Value, error) {
	var f facts
	if err := f.gather(g.Facts.Read(), g.State, req); err != nil {
		return nil, err
	}
	return f.input, nil
}

// EvalForTest evaluates the decision query on a gathered input.
func EvalForTest(ctx context.Context, g *Generation, input ast.Value) (*ast.Term, error) {
	return g.Policy.Eval(ctx, input)
}

// CachedDataQueries reports how many prepared Data API queries g's policy
// holds.
func CachedDataQueries(g *Generation) int { return g.Policy.CachedQueries() }

// MaxCachedDataQueries is the bound on CachedDataQueries.
const MaxCachedDataQueries = policy.MaxCachedQueries

// SetCacheClock makes g's decision cache read the time from now, so that a
// test can move past a deadline without waiting for it.
func SetCacheClock(g *Generation, now func() time.Time) { g.cache.now = now }

// CacheUsage counts the entries of g's decision cache and what they are
// charged.
func CacheUsage(g *Generation) (entries int, bytes int64) {
	for i := range g.cache.shards {
		s := &g.cache.shards[i]
		s.mu.Lock()
		entries += len(s.entries)
		bytes += s.bytes
		s.mu.Unlock()
	}
	return entries, bytes
}
