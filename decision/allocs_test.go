package decision_test

import (
	"context"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/decision"
)

// TestDecisionAllocationBudget guards the cost of a decision against
// regressions: allocations are exact and repeatable where time is not (see
// BENCHMARKS.md). Each budget is the count measured when it was set plus
// about 15%; lower it when a change makes decisions cheaper. The "no
// candidate statement" case takes the engine's literal fast path
// (engine.rego, decision's iam.no_allow branch), the IAM allow its
// IAM-only branches, the package case its package-only allow.
func TestDecisionAllocationBudget(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation budgets are checked without -short and without -race")
	}
	plain := demoEngine(t)
	cached := demoEngine(t, decision.WithDecisionCache(decision.CacheOptions{Size: 100, TTL: time.Hour}))
	cases := []struct {
		name   string
		engine *decision.Engine
		req    decision.Request
		allow  bool
		budget float64
	}{
		{"iam allow (route, object in a resource group)", plain, decision.Request{Tenant: "bank", Member: "user_a",
			Request:  &decision.HTTPRequest{Method: "GET", Path: "/api/v1/portfolios/portfolio/7/"},
			Resource: &decision.Resource{FRN: "frn:finmars:portfolios:portfolio:bonds-portfolio"}}, true, 353},
		{"iam deny, no statement applies", plain, decision.Request{Tenant: "bank", Member: "user_a",
			Action: "finmars:Currency:destroy"}, false, 291},
		{"iam deny, no candidate statement (route)", plain, decision.Request{Tenant: "bank", Member: "olivia",
			Request: &decision.HTTPRequest{Method: "POST", Path: "/api/v1/instruments/instrument/"}}, false, 76},
		{"iam deny, no candidate statement, with a context", plain, decision.Request{Tenant: "bank", Member: "olivia",
			Request: &decision.HTTPRequest{Method: "POST", Path: "/api/v1/instruments/instrument/"},
			Context: map[string]any{"ip": "10.1.2.3", "channel": "web", "mfa": true}}, false, 93},
		{"package and iam layers (SOAJS key)", plain, decision.Request{Key: demoKeyTnt2, Member: "goldie",
			Request: &decision.HTTPRequest{Service: "example04", Method: "GET", Path: "/users/7"}}, true, 243},
		{"decision cache hit", cached, decision.Request{Tenant: "bank", Member: "user_a",
			Request:  &decision.HTTPRequest{Method: "GET", Path: "/api/v1/portfolios/portfolio/7/"},
			Resource: &decision.Resource{FRN: "frn:finmars:portfolios:portfolio:bonds-portfolio"}}, true, 6},
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := tc.engine.Decide(ctx, clone(&tc.req))
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != tc.allow {
				t.Fatalf("allow = %v, want %v: %+v", d.Allow, tc.allow, d.Reasons)
			}
			if !tc.allow && d.Reasons[len(d.Reasons)-1].Code != "iam.no_allow" {
				t.Fatalf("the deny case is decided by %+v, want iam.no_allow", d.Reasons)
			}
			allocs := testing.AllocsPerRun(200, func() {
				if _, err := tc.engine.Decide(ctx, clone(&tc.req)); err != nil {
					t.Fatal(err)
				}
			})
			t.Logf("%.0f allocations per decision (budget %.0f)", allocs, tc.budget)
			if allocs > tc.budget {
				t.Errorf("%.0f allocations per decision, over the budget of %.0f", allocs, tc.budget)
			}
		})
	}
}
