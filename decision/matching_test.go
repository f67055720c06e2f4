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
// Go, and for a request with an object the resources that cover it) equal
// to what the Rego rules "matching" and "covers", the definitions, keep of
// every candidate the action index gives: the same statements, in the same
// order, with the same resources. The generated worlds give every
// statement the principal "*" and index keys that name the action, so
// there Go keeps every candidate; a variant of the small world gives its
// statements members, groups and lists of them as principals, wider
// wildcards as actions and patterns as resources, and asks about objects
// by FRN, by FRN and named groups, and by groups alone; the demo's
// policies name members and groups: there every member is asked every
// action a route gives.
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
			// What the rules read of a matched statement (see
			// store's matchedStatementTerm): without an object, all
			// its resources; with one, those that cover it.
			prepare := func(resources string) rego.PreparedEvalQuery {
				query, err := rego.New(
					rego.Query(`[{"policy": s.policy, "statement": s.statement, "effect": s.effect, "conditions": s.conditions, "resources": `+resources+`} |
						some s in input.facts.statements
						data.verdict.engine.matching(s)]`),
					rego.Compiler(gen.Policy.Compiler()),
					rego.Store(gen.Policy.Store()),
				).PrepareForEval(ctx)
				if err != nil {
					t.Fatal(err)
				}
				return query
			}
			withoutObject := prepare(`s.resources`)
			withObject := prepare(`[r | some r in s.resources; data.verdict.engine.covers(r)]`)
			reader := gen.Facts.Read()
			var compared, narrowed, kept, objects, covered, uncovered int
			defer func() {
				t.Logf("%d questions compared: Go dropped candidates in %d, kept some in %d; %d named an object, of whose statements' resources %d covered it and %d did not",
					compared, narrowed, kept, objects, covered, uncovered)
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
				// The input as a caller would build it by hand: every
				// candidate, with its principals and actions, and the
				// member's principals.
				unmatched := input.(ast.Object).Copy()
				unmatchedFacts := facts.Copy()
				unmatchedFacts.Insert(ast.StringTerm("statements"), candidates.Array)
				unmatchedFacts.Insert(ast.StringTerm("member"), withPrincipals(facts.Get(ast.StringTerm("member"))))
				unmatched.Insert(ast.StringTerm("facts"), ast.NewTerm(unmatchedFacts))
				query := withoutObject
				if req.Resource != nil {
					query = withObject
					objects++
					if facts.Get(ast.StringTerm("resources_matched")) == nil && goMatched.Value.(*ast.Array).Len() > 0 {
						t.Fatalf("%+v: statements for an object without resources_matched", req)
					}
					for _, c := range candidates.Facts {
						for range c.Statement.Resources {
							uncovered++
						}
					}
					goMatched.Value.(*ast.Array).Foreach(func(s *ast.Term) {
						n := s.Get(ast.StringTerm("resources")).Value.(*ast.Array).Len()
						covered += n
						uncovered -= n
					})
				}
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
			if tc.name != "demo" && (covered == 0 || uncovered == 0) {
				t.Fatalf("the questions do not exercise the cover (%d resources covered the object, %d did not)", covered, uncovered)
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
// statements (a member, a group, a list of both, "*"), a third of the
// actions widened (finmars:*:<name>, finmars:viewset00*:*, finmars:**) and
// a third of the resources patterns or lists (objects and groups with
// "*"), and asks every member every action of the world and some others:
// without an object, about an object, about an object in groups the
// request names, and about groups alone.
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
				if rng.IntN(3) == 0 {
					st["Resource"] = widerResources[rng.IntN(len(widerResources))]
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
			for i, a := range actions {
				req := decision.Request{Tenant: worldgen.TenantCode(tn), Member: worldgen.MemberName(m), Action: a}
				object := worldgen.ObjectFRN(i%spec.ViewSets, rng.IntN(spec.ResourceGroups*spec.ObjectsPerRG))
				groups := []string{fmt.Sprintf("rg%04d", rng.IntN(spec.ResourceGroups)), fmt.Sprintf("RG%04d", rng.IntN(spec.ResourceGroups))}
				switch rng.IntN(4) {
				case 1:
					req.Resource = &decision.Resource{FRN: object}
				case 2:
					req.Resource = &decision.Resource{FRN: strings.ToUpper(object[:12]) + object[12:], ResourceGroups: groups}
				case 3:
					req.Resource = &decision.Resource{ResourceGroups: groups}
				}
				out = append(out, req)
			}
		}
	}
	return engine, out
}

// widerResources are statement resources with patterns: objects and
// resource groups whose code holds a "*", and lists of both.
var widerResources = []any{
	"frn:finmars:vs001:item:o0000*",
	"frn:finmars:vs004:item:*",
	"frn:finmars:iam:resourcegroup:rg000*",
	"frn:finmars:iam:resourcegroup:*1*",
	[]any{"frn:finmars:vs002:item:o0001*", "frn:finmars:iam:resourcegroup:rg0001"},
	[]any{"frn:finmars:iam:resourcegroup:rg001*", "frn:finmars:vs003:item:o00031"},
}

// withPrincipals is the member's facts with the principals the Rego rule
// "matching" reads: "*", "member:<name>" and "group:<code>" for each of
// its groups.
func withPrincipals(member *ast.Term) *ast.Term {
	facts := member.Value.(ast.Object).Copy()
	principals := ast.NewSet(ast.StringTerm("*"), ast.StringTerm("member:"+string(facts.Get(ast.StringTerm("name")).Value.(ast.String))))
	facts.Get(ast.StringTerm("groups")).Value.(ast.Set).Foreach(func(g *ast.Term) {
		principals.Add(ast.StringTerm("group:" + string(g.Value.(ast.String))))
	})
	facts.Insert(ast.StringTerm("principals"), ast.NewTerm(principals))
	return ast.NewTerm(facts)
}
