package decision_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/loader/loadertest"
)

// Fault injection on the request path (issue 8, "fail closed"): a Rego rule
// that errors while deciding and a panic inside a decision each become a
// deny with error.internal - never an allow - and the engine goes on
// answering. Store reads that fail are injected in loader/store's tests
// (failclosed_test.go there), where the seam is.

// faultyBundle has a condition and an extension rule that fail at
// evaluation time on request: flagged produces conflicting values when the
// caller's context.a and context.b disagree, and the extension rule calls a
// function with two outputs when context.boom is true. Bob may list
// portfolios unless flagged holds (a Deny with that condition); root is an
// admin.
func faultyBundle() fstest.MapFS {
	return fstest.MapFS{
		"verdict/catalog/data.json": {Data: []byte(`{"services": {"portfolios": {"routes": [
			{"path": "/api/v1/portfolios/portfolio/", "viewset": "Portfolio"}]}}}`)},
		"verdict/tenants/acme/data.json": {Data: []byte(`{
			"members": {"bob": {"policies": ["read-all", "deny-flagged"]}, "root": {"is_admin": true}},
			"access_policies": {
				"read-all": {"Statement": [{"Effect": "Allow", "Action": "finmars:Portfolio:*", "Resource": "*"}]},
				"deny-flagged": {"Statement": [{"Effect": "Deny", "Action": "finmars:Portfolio:*", "Resource": "*", "Condition": "flagged"}]}
			}}`)},
		"verdict/conditions/flagged.rego": {Data: []byte(`package verdict.conditions

flagged := input.context.a

flagged := input.context.b
`)},
		"verdict/ext/boom.rego": {Data: []byte(`package verdict.ext

twice(_) := true

twice(_) := false

deny contains "boom" if {
	input.context.boom
	twice(1)
}
`)},
	}
}

func faultyEngine(t *testing.T) *decision.Engine {
	t.Helper()
	engine, _ := loadertest.Load(t, []loader.Source{{Name: "faulty", FS: faultyBundle()}})
	return engine
}

// isInternalDeny reports whether the decision is the fail-closed deny.
func isInternalDeny(d *decision.Decision) bool {
	return !d.Allow && d.Status == 403 && d.Visibility == "none" && len(d.Reasons) == 1 && d.Reasons[0].Code == "error.internal"
}

func faultyAsk(member string, ctx map[string]any) *decision.Request {
	return &decision.Request{Tenant: "acme", Member: member,
		Request: &decision.HTTPRequest{Method: "GET", Path: "/api/v1/portfolios/portfolio/"}, Context: ctx}
}

func TestRegoEvaluationErrorsDeny(t *testing.T) {
	engine := faultyEngine(t)
	ctx := t.Context()
	steps := []struct {
		name   string
		req    *decision.Request
		allow  bool
		code   string // the deciding reason; error.internal for a fault
		reason string // a fragment of the error.internal message
	}{
		{"no flag: the Allow applies", faultyAsk("bob", nil), true, "iam.allow", ""},
		{"flag false", faultyAsk("bob", map[string]any{"a": false}), true, "iam.allow", ""},
		{"flag true: the Deny applies", faultyAsk("bob", map[string]any{"a": true}), false, "iam.explicit_deny", ""},
		// The Deny's condition cannot be evaluated. Reading the error as
		// "condition false" would allow; it must deny.
		{"conflicting flags", faultyAsk("bob", map[string]any{"a": true, "b": false}), false, "error.internal", "eval_conflict_error"},
		{"answers again after the fault", faultyAsk("bob", map[string]any{"a": false, "b": false}), true, "iam.allow", ""},
		// An extension rule that fails denies even an admin.
		{"extension rule fails", faultyAsk("root", map[string]any{"boom": true}), false, "error.internal", "twice"},
		{"admin after the fault", faultyAsk("root", map[string]any{"boom": false}), true, "iam.admin", ""},
	}
	for _, s := range steps {
		d, err := engine.Decide(ctx, s.req)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if d.Allow != s.allow {
			t.Fatalf("%s: allow = %v, want %v (%+v)", s.name, d.Allow, s.allow, d.Reasons)
		}
		if s.code == "error.internal" {
			if !isInternalDeny(d) || !strings.Contains(d.Reasons[0].Message, s.reason) {
				t.Fatalf("%s: want only error.internal mentioning %q, got %+v", s.name, s.reason, d.Reasons)
			}
			continue
		}
		if got := d.Reasons[0].Code; got != s.code {
			t.Fatalf("%s: reason %s, want %s (%+v)", s.name, got, s.code, d.Reasons)
		}
	}

	// In a batch, the failing item is denied and the others are answered.
	res, err := engine.DecideBatch(ctx, &decision.BatchRequest{Tenant: "acme", Member: "bob", Items: []decision.BatchItem{
		{Action: "finmars:Portfolio:list"},
		{Action: "finmars:Portfolio:list", Context: map[string]any{"a": true, "b": false}},
		{Action: "finmars:Portfolio:retrieve", Context: map[string]any{"a": true}},
		{Action: "finmars:Portfolio:retrieve"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false, false, true}; len(res.Results) != len(want) {
		t.Fatalf("%d results", len(res.Results))
	} else {
		for i, d := range res.Results {
			if d.Allow != want[i] {
				t.Errorf("batch item %d: allow = %v, want %v (%+v)", i, d.Allow, want[i], d.Reasons)
			}
		}
	}
	if !isInternalDeny(res.Results[1]) {
		t.Errorf("batch item 1: want error.internal, got %+v", res.Results[1].Reasons)
	}

	// A list plan over the failing condition lets nothing through.
	p, err := engine.Plan(ctx, &decision.PlanRequest{Tenant: "acme", Member: "bob", Action: "finmars:Portfolio:list",
		Context: map[string]any{"a": true, "b": false}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != "none" || len(p.Reasons) != 1 || p.Reasons[0].Code != "error.internal" {
		t.Fatalf("plan over a failing condition: kind %s, reasons %+v", p.Kind, p.Reasons)
	}
}

// TestPanicDuringDecisionDenies installs a generation whose compiled policy
// is missing, so that every decision panics inside the engine: each must be
// the error.internal deny, and the engine answers normally once a good
// generation is back.
func TestPanicDuringDecisionDenies(t *testing.T) {
	engine := faultyEngine(t)
	ctx := t.Context()
	good := engine.Current().Generation
	broken := good
	broken.Policy = nil
	engine.Install(&broken)

	for _, member := range []string{"root", "bob", "nobody", ""} {
		d, err := engine.Decide(ctx, faultyAsk(member, nil))
		if err != nil {
			t.Fatal(err)
		}
		if !isInternalDeny(d) || !strings.Contains(d.Reasons[0].Message, "panic") {
			t.Fatalf("member %q on a broken generation: %+v", member, d)
		}
	}
	res, err := engine.DecideBatch(ctx, &decision.BatchRequest{Tenant: "acme", Member: "root",
		Items: []decision.BatchItem{{Action: "finmars:Portfolio:list"}, {Action: "finmars:Portfolio:destroy"}}})
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range res.Results {
		if !isInternalDeny(d) {
			t.Fatalf("batch item %d on a broken generation: %+v", i, d)
		}
	}
	p, err := engine.Plan(ctx, &decision.PlanRequest{Tenant: "acme", Member: "root", Action: "finmars:Portfolio:list"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != "none" {
		t.Fatalf("plan on a broken generation: %+v", p)
	}

	engine.Install(&good)
	d, err := engine.Decide(ctx, faultyAsk("root", nil))
	if err != nil {
		t.Fatal(err)
	}
	if !d.Allow {
		t.Fatalf("after the good generation is back: %+v", d)
	}
}
