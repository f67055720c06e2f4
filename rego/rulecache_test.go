package rego

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// TestRuleCacheAnswersAsTopdowns applies random sequences of Put, Get,
// Push and Pop to ruleCache and to topdown's own virtual cache and holds
// every answer equal: a value, undefined, or not cached. Refs share
// prefixes and are put again with other values; the slice handed to Put is
// overwritten afterwards, as topdown may do with its own; most sequences
// put enough refs for the cache to index them by hash.
func TestRuleCacheAnswersAsTopdowns(t *testing.T) {
	names := []*ast.Term{ast.StringTerm("data"), ast.StringTerm("verdict"), ast.StringTerm("engine"), ast.StringTerm("iam"), ast.StringTerm("pkg"), ast.IntNumberTerm(1), ast.ObjectTerm(ast.Item(ast.StringTerm("kind"), ast.StringTerm("any")))}
	randomRef := func(rng *rand.Rand) ast.Ref {
		ref := ast.Ref{names[0]}
		for n := rng.IntN(4); n > 0; n-- {
			ref = append(ref, names[1+rng.IntN(len(names)-1)])
		}
		return ref
	}
	indexed := 0
	for seed := uint64(0); seed < 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 17))
		want := topdown.NewVirtualCache()
		got := newRuleCache()
		depth := 0
		for step := 0; step < 400; step++ {
			switch op := rng.IntN(10); {
			case op < 4:
				ref := randomRef(rng)
				var value *ast.Term
				if rng.IntN(4) > 0 {
					value = ast.IntNumberTerm(step)
				}
				scratch := slices.Clone(ref)
				want.Put(ref, value)
				got.Put(scratch, value)
				for i := range scratch {
					scratch[i] = ast.StringTerm("overwritten")
				}
			case op < 8:
				ref := randomRef(rng)
				wv, wu := want.Get(ref)
				gv, gu := got.Get(ref)
				if wu != gu || !wv.Equal(gv) {
					t.Fatalf("seed %d step %d: Get(%v) = %v, %v; topdown's cache answers %v, %v", seed, step, ref, gv, gu, wv, wu)
				}
			case op == 8:
				want.Push()
				got.Push()
				depth++
			case depth > 0:
				want.Pop()
				got.Pop()
				depth--
			}
		}
		if w, g := len(want.Keys()), len(got.Keys()); w != g {
			t.Fatalf("seed %d: %d keys, topdown's cache has %d", seed, g, w)
		}
		if got.byHash != nil {
			indexed++
		}
		got.release()
	}
	if indexed < 50 {
		t.Fatalf("only %d of 200 sequences reached the hash index", indexed)
	}
}

// A released cache comes back empty.
func TestRuleCacheReleasedEmpty(t *testing.T) {
	c := newRuleCache()
	ref := ast.MustParseRef("data.verdict.engine.decision")
	c.Put(ref, ast.BooleanTerm(true))
	c.Push()
	c.release()
	c = newRuleCache()
	if v, undefined := c.Get(ref); v != nil || undefined || len(c.Keys()) != 0 {
		t.Fatalf("a reused cache answers %v, %v with %d keys", v, undefined, len(c.Keys()))
	}
}
