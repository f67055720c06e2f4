package decision

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	policy "github.com/verdict-authz/verdict/rego"
)

// TestNarrowedACLAgreesWithRego holds the package layer's facts Go
// narrows (aclCandidates.narrow, input.facts.package_acl) equal to what the
// engine's rules make of the candidate ACLs when they are handed all of
// them (governing_acl's definition: service_acl, acl_source,
// method_section, acl_apis, acl_restricted, api), on generated candidates:
// any of the four present, absent or false; access, restrictions, APIs and
// method sections present, absent, of the expected type or of another;
// routes whose method or API is missing, of another case or of another
// type.
func TestNarrowedACLAgreesWithRego(t *testing.T) {
	ctx := context.Background()
	p, err := policy.CompilePolicy(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	query, err := rego.New(
		rego.Query(`data.verdict.engine.governing_acl`),
		rego.Compiler(p.Compiler()),
		rego.Store(p.Store()),
	).PrepareForEval(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(17, 2026))
	pick := func(options ...*ast.Term) *ast.Term { return options[rng.IntN(len(options))] }
	str, boolean := ast.StringTerm, ast.BooleanTerm
	groups := func(gs ...string) *ast.Term {
		terms := make([]*ast.Term, len(gs))
		for i, g := range gs {
			terms[i] = str(g)
		}
		return ast.ArrayTerm(terms...)
	}
	access := func() *ast.Term {
		return pick(nil, boolean(true), boolean(false), groups("gold"), groups("gold", "silver"), groups(), str("yes"))
	}
	// object builds an object from key/value pairs, leaving out nil values.
	object := func(kv ...*ast.Term) *ast.Term {
		var items [][2]*ast.Term
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] != nil {
				items = append(items, [2]*ast.Term{kv[i], kv[i+1]})
			}
		}
		return ast.ObjectTerm(items...)
	}
	apiEntry := func() *ast.Term {
		return pick(object(str("access"), access(), str("template"), str("/users/{id}")), object(), boolean(false))
	}
	apis := func() *ast.Term {
		return pick(nil, object(), boolean(false),
			object(str("/users/{}"), apiEntry()),
			object(str("/users/{}"), apiEntry(), str("/users"), apiEntry()),
			object(str("/other"), apiEntry()))
	}
	restricted := func() *ast.Term { return pick(nil, boolean(true), boolean(false), str("yes")) }
	section := func() *ast.Term { return object(str("apis"), apis(), str("restricted"), restricted()) }
	methods := func() *ast.Term {
		return pick(nil, object(), object(str("get"), section()), object(str("post"), section()),
			object(str("get"), section(), str("delete"), section()), ast.SetTerm(str("get")))
	}
	acl := func() *ast.Term {
		if rng.IntN(8) == 0 {
			return pick(nil, boolean(false))
		}
		return object(str("access"), access(), str("restricted"), restricted(), str("apis"), apis(), str("methods"), methods())
	}
	route := func() *ast.Term {
		return object(
			str("method"), pick(str("GET"), str("get"), str("POST"), str("DELETE"), nil, ast.IntNumberTerm(1)),
			str("api"), pick(str("/users/{}"), str("/users"), str("/nowhere"), nil))
	}
	var compared, governed, withAPI int
	for i := 0; i < 4000; i++ {
		var c aclCandidates
		for j := range c {
			if rng.IntN(3) > 0 {
				c[j] = acl()
			}
		}
		routeFacts := route()
		input := object(str("facts"), object(str("acl"), c.term(), str("package_route"), routeFacts))
		rs, err := query.Eval(ctx, rego.EvalParsedInput(input.Value))
		if err != nil {
			t.Fatal(err)
		}
		got := c.narrow(routeFacts)
		switch {
		case len(rs) == 0 && got == nil:
		case len(rs) == 1 && got != nil:
			want, err := ast.InterfaceToValue(rs[0].Expressions[0].Value)
			if err != nil {
				t.Fatal(err)
			}
			if want.Compare(got.Value) != 0 {
				t.Fatalf("candidates %v, route %v:\nGo narrowed %v\nRego        %v", c.term(), routeFacts, got, want)
			}
			governed++
			if got.Get(keyAPI) != nil {
				withAPI++
			}
		default:
			t.Fatalf("candidates %v, route %v:\nGo narrowed %v\nRego        %v", c.term(), routeFacts, got, rs)
		}
		compared++
	}
	t.Logf("%d candidate sets compared, %d with a governing ACL, %d of them with the route's API", compared, governed, withAPI)
	if governed < compared/2 || withAPI < governed/10 {
		t.Fatalf("the generated ACLs do not exercise the narrowing (%d governed, %d with an API, of %d)", governed, withAPI, compared)
	}
}
