package decision_test

import (
	"context"
	"testing"

	"github.com/verdict-authz/verdict/decision"
)

// delegatedAsk is rhythm acting for imhotep on a route of a group imhotep
// enabled in the demo bundle.
func delegatedAsk() *decision.Request {
	return &decision.Request{Tenant: "fineract", Member: "imhotep", Application: "rhythm",
		Request: &decision.HTTPRequest{Service: "identity", Method: "POST", Path: "/identity/v1/applications/rhythm/permissions"}}
}

// withState installs a copy of the current generation at a state revision.
func withState(e *decision.Engine, st decision.StateInfo) {
	g := e.Current().Generation
	g.Number++
	g.State = st
	e.Install(&g)
}

func codes(d *decision.Decision) []string {
	var out []string
	for _, r := range d.Reasons {
		out = append(out, r.Code)
	}
	return out
}

func hasCode(d *decision.Decision, code string) bool {
	for _, r := range d.Reasons {
		if r.Code == code {
			return true
		}
	}
	return false
}

// Stale shared state denies an application acting for a member by consent
// (Rego decides, from input.facts.state); the decision says its revision.
func TestStaleStateDeniesConsentBasedAllow(t *testing.T) {
	for _, cached := range []bool{false, true} {
		opts := []decision.EngineOption{}
		if cached {
			opts = append(opts, decision.WithDecisionCache(decision.CacheOptions{Size: 100}))
		}
		e := demoEngine(t, opts...)
		ctx := t.Context()
		withState(e, decision.StateInfo{Shared: true, Revision: 4})
		d, err := e.Decide(ctx, delegatedAsk())
		if err != nil || !d.Allow || d.StateRevision != 4 {
			t.Fatalf("current state: %+v, %v; want an allow at state revision 4", d, err)
		}
		withState(e, decision.StateInfo{Shared: true, Revision: 4, Stale: true})
		d, _ = e.Decide(ctx, delegatedAsk())
		if d.Allow || !hasCode(d, "state.stale") {
			t.Errorf("stale state (cache %v): %v, allow %v; want a state.stale deny", cached, codes(d), d.Allow)
		}
		// Other decisions go on.
		d, _ = e.Decide(ctx, &decision.Request{Tenant: "fineract", Member: "imhotep", Action: "portfolio:cases:get"})
		if !d.Allow {
			t.Errorf("stale state denies a decision without delegation: %v", codes(d))
		}
	}
}

type waiter struct {
	e       *decision.Engine
	install uint64 // the revision WaitForState catches up to (0: none)
	asked   []uint64
}

func (w *waiter) WaitForState(_ context.Context, rev uint64) {
	w.asked = append(w.asked, rev)
	if w.install > 0 {
		withState(w.e, decision.StateInfo{Shared: true, Revision: w.install})
	}
}

// A request carrying consistency.at_least waits for the revision and is
// decided on it; a sidecar that cannot catch up denies with state.stale,
// also when the decision cache holds an allow for the same request.
func TestConsistencyAtLeast(t *testing.T) {
	ctx := t.Context()
	e := demoEngine(t, decision.WithDecisionCache(decision.CacheOptions{Size: 100}))
	w := &waiter{e: e}
	e.SetStateWaiter(w)
	withState(e, decision.StateInfo{Shared: true, Revision: 5})
	if d, _ := e.Decide(ctx, delegatedAsk()); !d.Allow { // cached now
		t.Fatalf("no consistency asked: %v", codes(d))
	}
	req := delegatedAsk()
	req.Consistency = &decision.Consistency{AtLeast: 5}
	if d, _ := e.Decide(ctx, req); !d.Allow || len(w.asked) != 0 {
		t.Fatalf("revision met: %v, waited for %v; want an allow without waiting", codes(d), w.asked)
	}
	req = delegatedAsk()
	req.Consistency = &decision.Consistency{AtLeast: 6}
	d, _ := e.Decide(ctx, req)
	if d.Allow || !hasCode(d, "state.stale") || len(w.asked) != 1 || w.asked[0] != 6 {
		t.Fatalf("revision not reached: %v allow %v, waited for %v; want a state.stale deny after waiting for 6", codes(d), d.Allow, w.asked)
	}
	w.install = 7
	req = delegatedAsk()
	req.Consistency = &decision.Consistency{AtLeast: 6}
	d, _ = e.Decide(ctx, req)
	if !d.Allow || d.StateRevision != 7 {
		t.Fatalf("caught up: %v at %d; want an allow at revision 7", codes(d), d.StateRevision)
	}
	// The batch asks once for all its items.
	w.install = 0
	b := &decision.BatchRequest{Tenant: "fineract", Member: "imhotep", Application: "rhythm", Consistency: &decision.Consistency{AtLeast: 9},
		Items: []decision.BatchItem{{Request: delegatedAsk().Request}, {Request: delegatedAsk().Request}}}
	resp, err := e.DecideBatch(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range resp.Results {
		if d.Allow || !hasCode(d, "state.stale") {
			t.Errorf("batch item %d: %v; want state.stale", i, codes(d))
		}
	}
}
