package rego

import (
	"container/list"
	"context"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// PreparedQuery returns the prepared query of ref, from the cache of the
// policy's Data API queries or prepared now. An error is OPA's, as
// PrepareForEval returns it.
func (p *Policy) PreparedQuery(ctx context.Context, ref ast.Ref) (*rego.PreparedEvalQuery, error) {
	key := ref.String()
	if pq := p.dataQueries.get(key); pq != nil {
		return pq, nil
	}
	prepared, err := rego.New(
		rego.ParsedQuery(ast.NewBody(ast.NewExpr(ast.NewTerm(ref)))),
		rego.Compiler(p.compiler),
		rego.Store(p.store),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, err
	}
	p.dataQueries.put(key, &prepared)
	return &prepared, nil
}

// CachedQueries reports how many prepared Data API queries the policy
// holds (at most MaxCachedQueries).
func (p *Policy) CachedQueries() int { return p.dataQueries.len() }

// queryCache holds the prepared Data API queries of one policy, by path:
// the MaxCachedQueries most recently used. A prepared query of a path at
// the Data API's bounds (decision.MaxDataPathBytes) takes about 8 KiB of
// heap (measured over the demo bundle), so the cache holds about 1 MiB at
// most, whatever the paths asked.
type queryCache struct {
	mu      sync.Mutex
	byKey   map[string]*list.Element
	recency list.List // of *cachedQuery, most recently used first
}

type cachedQuery struct {
	key   string
	query *rego.PreparedEvalQuery
}

// MaxCachedQueries bounds the prepared Data API queries kept per policy
// (a policy is shared by the generations a run-time change installs).
const MaxCachedQueries = 128

func (c *queryCache) get(key string) *rego.PreparedEvalQuery {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[key]
	if !ok {
		return nil
	}
	c.recency.MoveToFront(el)
	return el.Value.(*cachedQuery).query
}

func (c *queryCache) put(key string, pq *rego.PreparedEvalQuery) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byKey == nil {
		c.byKey = map[string]*list.Element{}
	}
	if el, ok := c.byKey[key]; ok {
		c.recency.MoveToFront(el)
		return
	}
	c.byKey[key] = c.recency.PushFront(&cachedQuery{key: key, query: pq})
	for c.recency.Len() > MaxCachedQueries {
		oldest := c.recency.Back()
		c.recency.Remove(oldest)
		delete(c.byKey, oldest.Value.(*cachedQuery).key)
	}
}

// len reports the number of cached queries.
func (c *queryCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.recency.Len()
}
