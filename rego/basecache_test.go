package rego

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/util"
)

func TestBaseCache(t *testing.T) {
	ab := ast.MustParseTerm(`{"c": 1, "d": [1, 2]}`).Value
	tests := []struct {
		name string
		puts []string // "ref=value"
		get  string
		want string // "" for nil
	}{
		{name: "empty", get: "data.a", want: ""},
		{name: "exact", puts: []string{`data.a.b={"c": 1, "d": [1, 2]}`}, get: "data.a.b", want: ab.String()},
		{name: "under a cached document", puts: []string{`data.a.b={"c": 1, "d": [1, 2]}`}, get: "data.a.b.d[1]", want: "2"},
		{name: "missing under a cached document", puts: []string{`data.a.b={"c": 1, "d": [1, 2]}`}, get: "data.a.b.x", want: ""},
		{name: "above a cached document", puts: []string{`data.a.b={"c": 1, "d": [1, 2]}`}, get: "data.a", want: ""},
		{name: "a sibling", puts: []string{`data.a.b={"c": 1, "d": [1, 2]}`}, get: "data.a.e", want: ""},
		{name: "the shortest cached prefix answers", puts: []string{`data.a.b.c=7`, `data.a={"b": {"c": 1}}`}, get: "data.a.b.c", want: "1"},
		{name: "the shortest even when put first", puts: []string{`data.a={"b": {"c": 1}}`, `data.a.b.c=7`}, get: "data.a.b.c", want: "1"},
		{name: "put again replaces", puts: []string{`data.a.b=1`, `data.a.b=2`}, get: "data.a.b", want: "2"},
		{name: "put above drops what was under", puts: []string{`data.a.b.c=7`, `data.a.b={"d": 1}`}, get: "data.a.b.c", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c baseCache
			for _, p := range tt.puts {
				ref, value, _ := strings.Cut(p, "=")
				c.Put(ast.MustParseRef(ref), ast.MustParseTerm(value).Value)
			}
			got := c.Get(ast.MustParseRef(tt.get))
			switch {
			case tt.want == "" && got != nil:
				t.Fatalf("Get(%s) = %v, want nil", tt.get, got)
			case tt.want != "" && (got == nil || got.Compare(ast.MustParseTerm(tt.want).Value) != 0):
				t.Fatalf("Get(%s) = %v, want %s", tt.get, got, tt.want)
			}
		})
	}
}

// TestBaseCacheEvaluatesAsTopdowns evaluates random queries that read base
// documents at and under each other, in random orders, with baseCache and
// with topdown's own cache, and holds the answers equal.
func TestBaseCacheEvaluatesAsTopdowns(t *testing.T) {
	ctx := context.Background()
	var data map[string]any
	if err := util.UnmarshalJSON([]byte(`{"a": {"b": {"c": 1, "d": [1, 2, {"e": "x"}]}, "f": "y", "g": {"h": true}}}`), &data); err != nil {
		t.Fatal(err)
	}
	store := inmem.NewFromObject(data)
	refs := []string{"data.a", "data.a.b", "data.a.b.c", "data.a.b.d", "data.a.b.d[2].e", "data.a.f", "data.a.g.h", "data.a.x", "data.a.b.d[7]", "data.z"}
	compiler := ast.NewCompiler()
	for seed := uint64(0); seed < 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 3))
		var body []string
		for i := range 1 + rng.IntN(6) {
			ref := refs[rng.IntN(len(refs))]
			// A missing document makes the comprehension empty rather
			// than the query undefined.
			body = append(body, fmt.Sprintf("x%d := [v | v := %s]", i, ref))
		}
		query, err := compiler.QueryCompiler().Compile(ast.MustParseBody(strings.Join(body, "; ")))
		if err != nil {
			t.Fatal(err)
		}
		eval := func(bc topdown.BaseCache) string {
			txn, err := store.NewTransaction(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Abort(ctx, txn)
			q := topdown.NewQuery(query).WithCompiler(compiler).WithStore(store).WithTransaction(txn)
			if bc != nil {
				q = q.WithBaseCache(bc)
			}
			rs, err := q.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprint(rs)
		}
		cache := newRuleCache()
		got, want := eval(&cache.base), eval(nil)
		cache.release()
		if got != want {
			t.Fatalf("seed %d, %s: got %s, want %s", seed, query, got, want)
		}
	}
}

// TestBaseCacheIsBounded: reads of many distinct documents leave at most
// maxBaseEntries cached, the first ones still answering.
func TestBaseCacheIsBounded(t *testing.T) {
	var c baseCache
	for i := range 10 * maxBaseEntries {
		c.Put(ast.MustParseRef(fmt.Sprintf("data.users.u%d", i)), ast.IntNumberTerm(i).Value)
	}
	if len(c.entries) != maxBaseEntries {
		t.Fatalf("%d documents cached, want %d", len(c.entries), maxBaseEntries)
	}
	if got := c.Get(ast.MustParseRef("data.users.u0")); got == nil || got.Compare(ast.IntNumberTerm(0).Value) != 0 {
		t.Fatalf("Get(data.users.u0) = %v, want 0", got)
	}
	if got := c.Get(ast.MustParseRef(fmt.Sprintf("data.users.u%d", 10*maxBaseEntries-1))); got != nil {
		t.Fatalf("a document past the bound is cached: %v", got)
	}
}
