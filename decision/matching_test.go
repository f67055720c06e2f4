package decision_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/loader/loadertest"
	"github.com/verdict-authz/verdict/test/worldgen"
)

// TestGoMatchingAgreesWithRego holds the statements Go hands the rules
// (store.MemberRecord.MatchingStatements: principal and action matched in
// Go) equal to what the Rego rule "matching", the definition, keeps of
// every candidate the action index gives: the same statements, in the same
// order. The generated worlds give every statement the principal "*" and
// index keys that name the action, so there Go keeps every candidate; a
// variant of the small world gives its statements members, groups and
// lists of them as principals and wider wildcards as actions, and the
// demo's policies name members and groups: there every member is asked
// every action a route gives.
func TestGoMatchingAgreesWithRego(t *testing.T) {
	for _, tc := range []struct {
		name string
		load func(t *testing.T) (*decision.Engine, []decision.Request)
	}{
		{"small", func(t *testing.T) (*decision.Engine, []decision.Request) {
			engine, w := loadWorld(t, worldgen.Small)
			return engine, worldQuestions(w, 1500, 0).decide
		}},
		{"mid", func(t *testing.T) (*decision.Engine, []decision.Request) {
			engine, w := loadWorld(t, goldenMid)
			return engine, worldQuestions(w, 3000, 0).decide
		}},
		{"principals and wildcards", principalsAndWildcards},
		{"demo", func(t *testing.T) (*decision.Engine, []decision.Request) {
			engine := demoEngine(t)
			return engine, everyDemoMemberAndAction(t, engine)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			engine, questions := tc.load(t)
			gen := engine.Current()
			ctx := context.Background()
			query, err := rego.New(
				rego.Query(`[s | some s in input.facts.statements; data.verdict.engine.matching(s)]`),
				rego.Compiler(gen.Policy.Compiler()),
				rego.Store(gen.Policy.Store()),
			).PrepareForEval(ctx)
			if err != nil {
				t.Fatal(err)
			}
			reader := gen.Facts.Read()
			var compared, narrowed, kept int
			defer func() {
				t.Logf("%d questions compared: Go dropped candidates in %d, kept some in %d", compared, narrowed, kept)
			}()
			for i := range questions {
				req := questions[i]
				if req.Validate() != nil || req.Member == "" {
					continue
				}
				input, err := decision.GatherForTest(gen, &req)
				if err != nil {
					t.Fatal(err)
				}
				facts := input.(ast.Object).Get(ast.StringTerm("facts")).Value.(ast.Object)
				goMatched := facts.Get(ast.StringTerm("statements"))
				if goMatched == nil {
					continue // no member or no action: nothing to match
				}
				if facts.Get(ast.StringTerm("statements_matched")).Value.Compare(ast.Boolean(true)) != 0 {
					t.Fatalf("%+v: statements without statements_matched", req)
				}
				tenant := string(input.(ast.Object).Get(ast.StringTerm("tenant")).Value.(ast.String))
				action := string(input.(ast.Object).Get(ast.StringTerm("action")).Value.(ast.String))
				member, err := reader.Member(tenant, req.Member)
				if err != nil || member == nil {
					t.Fatalf("%+v: member: %v", req, err)
				}
				candidates := member.StatementsFor(strings.ToLower(action), nil)
				unmatched := input.(ast.Object).Copy()
				unmatchedFacts := facts.Copy()
				unmatchedFacts.Insert(ast.StringTerm("statements"), candidates.Array)
				unmatched.Insert(ast.StringTerm("facts"), ast.NewTerm(unmatchedFacts))
				rs, err := query.Eval(ctx, rego.EvalParsedInput(unmatched))
				if err != nil || len(rs) != 1 {
					t.Fatalf("%+v: evaluate matching: %v %v", req, rs, err)
				}
				regoMatched, err := ast.InterfaceToValue(rs[0].Expressions[0].Value)
				if err != nil {
					t.Fatal(err)
				}
				if regoMatched.Compare(goMatched.Value) != 0 {
					t.Fatalf("%+v:\nGo matched   %v\nRego matched %v\nof           %v", req, goMatched, regoMatched, candidates.Array)
				}
				compared++
				n := goMatched.Value.(*ast.Array).Len()
				if n < len(candidates.Facts) {
					narrowed++
				}
				if n > 0 {
					kept++
				}
			}
			if kept == 0 || tc.name != "small" && tc.name != "mid" && narrowed == 0 {
				t.Fatalf("the questions do not exercise the match (dropped in %d, kept in %d of %d)", narrowed, kept, compared)
			}
		})
	}
}

// everyDemoMemberAndAction asks, for every tenant of the demo, every member
// every action its services' routes give.
func everyDemoMemberAndAction(t *testing.T, engine *decision.Engine) []decision.Request {
	t.Helper()
	r, tenants, services := demoCatalog(t, engine)
	var actions []string
	for _, s := range services {
		for _, rt := range s.Service.Routes {
			actions = append(actions, rt.Actions()...)
		}
	}
	var out []decision.Request
	for _, tn := range tenants {
		members, err := r.MemberNames(tn.Code)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range members {
			for _, a := range actions {
				out = append(out, decision.Request{Tenant: tn.Code, Member: m, Action: a})
			}
		}
	}
	return out
}

// principalsAndWildcards loads worldgen.Small with principals on most
// statements (a member, a group, a list of both, "*") and a third of the
// actions widened (finmars:*:<name>, finmars:viewset00*:*, finmars:**),
// and asks every member every action of the world and some others.
func principalsAndWildcards(t *testing.T) (*decision.Engine, []decision.Request) {
	spec := worldgen.Small
	w := worldgen.Generate(spec)
	rng := rand.New(rand.NewPCG(3, 2026))
	member := func() string { return "member:" + worldgen.MemberName(rng.IntN(spec.Members)) }
	group := func() string { return fmt.Sprintf("group:g%03d", rng.IntN(50)) }
	wide := []string{"finmars:*:list", "finmars:*:retrieve", "finmars:viewset00*:*", "finmars:**", "finmars:*:*"}
	for _, tenant := range w.Tenants {
		for _, policy := range tenant["access_policies"].(map[string]any) {
			for _, sv := range policy.(map[string]any)["Statement"].([]any) {
				st := sv.(map[string]any)
				switch rng.IntN(5) {
				case 0:
					st["Principal"] = member()
				case 1:
					st["Principal"] = group()
				case 2:
					st["Principal"] = []any{member(), group(), group()}
				case 3:
					st["Principal"] = "*"
				}
				if st["Effect"] == "Allow" && rng.IntN(3) == 0 {
					st["Action"] = wide[rng.IntN(len(wide))]
				}
			}
		}
	}
	dir := filepath.Join(t.TempDir(), "world")
	if err := w.WriteBundle(dir, "principals"); err != nil {
		t.Fatal(err)
	}
	engine, _ := loadertest.Load(t, []loader.Source{{Name: "world", Location: dir}})
	actions := []string{"finmars:Nothing:list", "other:thing:do"}
	for v := 0; v < spec.ViewSets; v++ {
		for _, a := range []string{"list", "retrieve", "create", "update", "partial_update", "destroy"} {
			actions = append(actions, "finmars:"+worldgen.ViewSet(v)+":"+a)
		}
	}
	var out []decision.Request
	for tn := 0; tn < spec.Tenants; tn++ {
		for m := 0; m < spec.Members; m++ {
			for _, a := range actions {
				out = append(out, decision.Request{Tenant: worldgen.TenantCode(tn), Member: worldgen.MemberName(m), Action: a})
			}
		}
	}
	return engine, out
}
