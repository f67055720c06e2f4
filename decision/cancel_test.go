package decision_test

import (
	"context"
	"testing"
	"testing/fstest"
	"time"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/loader/loadertest"
)

// slowBundle lets bob do anything, and has an extension rule and a
// document that take far longer than any test may wait when the caller's
// context.slow is true (tens of millions of evaluation steps), and then do
// not deny: only a cancelled evaluation can deny those requests.
func slowBundle() fstest.MapFS {
	return fstest.MapFS{
		"verdict/catalog/data.json": {Data: []byte(`{"services": {"portfolios": {"routes": [
			{"path": "/api/v1/portfolios/portfolio/", "viewset": "Portfolio"}]}}}`)},
		"verdict/tenants/acme/data.json": {Data: []byte(`{
			"members": {"bob": {"policies": ["all"]}},
			"access_policies": {"all": {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}}}`)},
		"verdict/ext/slow.rego": {Data: []byte(`package verdict.ext

import data.slow.crawl

deny contains "never" if {
	input.context.slow
	crawl
	false
}
`)},
		"slow/crawl.rego": {Data: []byte(`package slow

crawl if {
	every i in numbers.range(1, 4000) {
		every j in numbers.range(1, 4000) {
			i + j > 0
		}
	}
}

result := "done" if crawl
`)},
	}
}

// TestCancelledEvaluationDenies: a client's deadline (or disconnect, the
// same context cancellation) stops a Rego evaluation that is under way, and
// the answer is a deny (or an error), never the allow the evaluation would
// have reached. The topdown cancel the engine passes was never fired, so a
// slow rule ran to its end whatever the caller's context said.
func TestCancelledEvaluationDenies(t *testing.T) {
	engine, _ := loadertest.Load(t, []loader.Source{{Name: "slow", FS: slowBundle()}})
	ask := func(slow bool) *decision.Request {
		return &decision.Request{Tenant: "acme", Member: "bob", Action: "finmars:Portfolio:list",
			Context: map[string]any{"slow": slow}}
	}
	fast, err := engine.Decide(t.Context(), ask(false))
	if err != nil || !fast.Allow {
		t.Fatalf("the fast request is not allowed: %+v, %v", fast, err)
	}

	const deadline = 50 * time.Millisecond
	// Every evaluation must end this soon after the deadline; uncancelled,
	// each takes far longer.
	const bound = 3 * time.Second
	for _, tc := range []struct {
		name string
		ask  func(ctx context.Context) (allowed bool, err error)
	}{
		{"decide", func(ctx context.Context) (bool, error) {
			d, err := engine.Decide(ctx, ask(true))
			if err != nil {
				return false, err
			}
			if d.Allow || d.Reasons[0].Code != "error.internal" {
				t.Errorf("reasons %+v, want one error.internal deny", d.Reasons)
			}
			return d.Allow, nil
		}},
		{"decide explained", func(ctx context.Context) (bool, error) {
			d, _, err := engine.DecideExplained(ctx, ask(true))
			if err != nil {
				return false, err
			}
			return d.Allow, nil
		}},
		{"batch", func(ctx context.Context) (bool, error) {
			b, err := engine.DecideBatch(ctx, &decision.BatchRequest{Tenant: "acme", Member: "bob",
				Items: []decision.BatchItem{{Action: "finmars:Portfolio:list", Context: map[string]any{"slow": true}}}})
			if err != nil {
				return false, err
			}
			return b.Results[0].Allow, nil
		}},
		{"data API document", func(ctx context.Context) (bool, error) {
			res, err := engine.Query(ctx, []string{"slow", "result"}, nil)
			if err == nil && res.Defined {
				t.Errorf("data.slow.result = %v, want an error", res.Result)
			}
			return false, err
		}},
		{"data API engine document", func(ctx context.Context) (bool, error) {
			res, err := engine.QueryEngine(ctx, []string{"verdict", "engine", "decision"},
				func() (*decision.Request, error) { return ask(true), nil })
			if err != nil {
				return false, err
			}
			d, _ := res.Result.(map[string]any)
			return d["allow"] == true, nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), deadline)
			defer cancel()
			start := time.Now()
			allowed, err := tc.ask(ctx)
			took := time.Since(start)
			if allowed {
				t.Errorf("allowed after the caller's deadline (err %v)", err)
			}
			if took > bound {
				t.Errorf("took %v after a %v deadline: the evaluation was not stopped", took, deadline)
			}
		})
	}
}
