package decision_test

import (
	"reflect"
	"testing"

	"github.com/verdict-authz/verdict/decision"
)

// TestExplicitActionIsJudgedByEveryLayer: "Explicit action and request
// together: the route must still exist, and the explicit action is the one
// judged" (README, Choices). The IAM layer judged the explicit action, but
// the package (SOAJS) layer judged the request's route: silvia, whose
// package gives GET /users/{id} to gold members only, was allowed a GET of
// a user record by a request POST /users that named the action
// example04:users:get, and denied the reverse (issue 14, item 6). Now both
// layers judge the action: a request with an explicit action whose route
// exists is decided as the action alone, on package tenants (tnt1, tnt2,
// tnt3) and IAM tenants (bank) alike.
func TestExplicitActionIsJudgedByEveryLayer(t *testing.T) {
	engine := demoEngine(t)
	ctx := t.Context()
	const (
		keyTnt1App1 = "4ea5db4c70b6168aeede6a8a56cb4624efdb6cb2cf3c7b88cbc1f5d97080a44f18083fa195e20dcc0b42496ae268ea91c657dd9b252b72de14c862e64f8522a9dbdaa1ce0f48ba2d5ed5eff49b47d0f728bddb2080c8cbc7bde3771116192b51"
		keyTnt1User = "4232477ed993d167ec13ccf8836c29c400fef7eb3d175b1f2192b82ebef6fb2d129cdd25fe23c04f856157184e11f7f57b65759191908cb5c664df136c7ad16a56a5917fdeabfc97c92a1f199e457e31f2450a810769ff1b29269bcb3f01e3d2"
		keyTnt3     = "7bc1e66d003a3b2acfce1557cbda7320ec45057be0505fd7e9dec19e9fe74c194b109a48568f53449c1cc607a3cb23d70de86831a2ac4b87f1c0c5d57d19702a74ac22a64531185af11f75967f9ba54cb930149ed8a1384f924be9baa4ed5b0b"
	)
	callers := []decision.Request{
		{Key: demoKeyTnt2, Member: "silvia"},
		{Key: demoKeyTnt2, Member: "goldie"},
		{Key: demoKeyTnt2, Member: "newbie"},
		{Key: demoKeyTnt2},
		{Key: keyTnt1App1, Member: "user1"},
		{Key: keyTnt1App1, Member: "user2"},
		{Key: keyTnt1User, Member: "user3"},
		{Key: keyTnt3},
		{Key: keyTnt3, Member: "goldie"},
		{Tenant: "bank", Member: "user_a"},
		{Tenant: "bank", Member: "intern"},
		{Tenant: "bank", Member: "admin"},
	}
	requests := []*decision.HTTPRequest{
		{Method: "GET", Path: "/users/7"},
		{Method: "POST", Path: "/users"},
		{Method: "GET", Path: "/buildName"},
		{Method: "GET", Path: "/testGet"},
		{Method: "GET", Path: "/api/v1/portfolios/portfolio/7/"},
		{Method: "DELETE", Path: "/api/v1/portfolios/portfolio/7/"},
	}
	actions := []string{
		"example04:users:get", "example04:users:post", "example03:buildName:get", "example03:testGet:get",
		"finmars:Portfolio:retrieve", "finmars:Portfolio:destroy", "finmars:Portfolio:list", "example04:users:delete",
	}
	outcome := func(d *decision.Decision) []any {
		codes := make([]string, len(d.Reasons))
		for i, r := range d.Reasons {
			codes[i] = r.Code
		}
		return []any{d.Allow, d.Status, codes}
	}
	differs := 0
	for _, caller := range callers {
		for _, action := range actions {
			alone := caller
			alone.Action = action
			want, err := engine.Decide(ctx, &alone)
			if err != nil {
				t.Fatal(err)
			}
			for _, hr := range requests {
				both := caller
				both.Action = action
				both.Request = &decision.HTTPRequest{Method: hr.Method, Path: hr.Path}
				got, err := engine.Decide(ctx, &both)
				if err != nil {
					t.Fatal(err)
				}
				withoutAction := caller
				withoutAction.Request = &decision.HTTPRequest{Method: hr.Method, Path: hr.Path}
				byRoute, err := engine.Decide(ctx, &withoutAction)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(outcome(got), outcome(want)) {
					t.Errorf("%s %s with action %s for %.12s/%s: %v, the action alone %v",
						hr.Method, hr.Path, action, caller.Key+caller.Tenant, caller.Member, outcome(got), outcome(want))
				}
				if got.Allow != byRoute.Allow {
					differs++
				}
			}
		}
	}
	// The table must hold requests whose own route is judged otherwise
	// than the explicit action, or it proves nothing.
	if differs == 0 {
		t.Error("no request is decided otherwise with its explicit action than by its route alone")
	}

	// The route of the request must still exist.
	d, err := engine.Decide(ctx, &decision.Request{Key: demoKeyTnt2, Member: "goldie", Action: "example04:users:get",
		Request: &decision.HTTPRequest{Method: "GET", Path: "/nowhere"}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Allow || d.Reasons[0].Code != "route.unknown" {
		t.Errorf("an unknown route with an explicit action: %+v", d.Reasons)
	}
}
