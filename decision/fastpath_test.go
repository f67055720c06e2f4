package decision_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/verdict-authz/verdict/decision"
)

// TestFastBranchesAgreeWithTheChain holds, on the inputs verdict gathers,
// what engine.rego claims of decision's fast branches: each is a case of
// layered_decision, the layered chain that defines the decision. For the
// golden questions of a generated world (every outcome, objects, denied
// actions) and of the demo (SOAJS keys and packages, applications,
// delegations, extension rules), data.verdict.engine.decision and
// data.verdict.engine.layered_decision must give the same document.
// (test_fast_branches_agree_with_the_chain, a Rego test, does the same on
// inputs built by hand with each guard broken in turn.)
func TestFastBranchesAgreeWithTheChain(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a generated world and the demo")
	}
	for _, tc := range []struct {
		name     string
		scenario func(t *testing.T) (*decision.Engine, []decision.Request)
	}{
		{"mid", func(t *testing.T) (*decision.Engine, []decision.Request) {
			engine, w := loadWorld(t, goldenMid)
			qs := worldQuestions(w, 1500, 0)
			return engine, append(qs.decide, denyQuestions(w, 150)...)
		}},
		{"demo", func(t *testing.T) (*decision.Engine, []decision.Request) {
			engine := demoEngine(t)
			return engine, demoQuestions(t, engine, 2500, 0).decide
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			engine, questions := tc.scenario(t)
			ctx := context.Background()
			ask := func(r *decision.Request, rule string) *decision.QueryResult {
				t.Helper()
				res, err := engine.QueryEngine(ctx, []string{"verdict", "engine", rule}, func() (*decision.Request, error) { return cloneDeep(r), nil })
				if err != nil {
					t.Fatalf("%s for %+v: %v", rule, r, err)
				}
				return res
			}
			allowed := 0
			for i := range questions {
				r := &questions[i]
				fast, chain := ask(r, "decision"), ask(r, "layered_decision")
				if fast.Defined != chain.Defined || !reflect.DeepEqual(fast.Result, chain.Result) {
					t.Fatalf("for %+v\ndecision         %v\nlayered_decision %v", r, fast.Result, chain.Result)
				}
				if d, ok := fast.Result.(map[string]any); ok && d["allow"] == true {
					allowed++
				}
			}
			if allowed == 0 || allowed == len(questions) {
				t.Fatalf("%d of %d questions allowed: the questions do not exercise both answers", allowed, len(questions))
			}
		})
	}
}
