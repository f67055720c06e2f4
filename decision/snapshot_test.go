package decision_test

import (
	"testing"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader/generation"
	"github.com/verdict-authz/verdict/loader/loadertest"
)

// TestSnapshotKeepsItsGeneration: every answer of a snapshot (a batch)
// comes from the generation installed when it was taken, even after
// another is installed.
func TestSnapshotKeepsItsGeneration(t *testing.T) {
	engine, _ := loadertest.Demo(t)
	snap, err := engine.Snapshot(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	old := engine.Current()
	next := &generation.Generation{Number: old.Number + 1, Facts: old.Facts, Policy: old.Policy, LoadedAt: old.LoadedAt,
		Revisions: map[string]string{"demo": "next"}}
	engine.Install(next)

	req := func() *decision.Request {
		return &decision.Request{Tenant: "bank", Member: "user_a", Action: "finmars:Portfolio:list"}
	}
	d, err := snap.Decide(t.Context(), req())
	if err != nil {
		t.Fatal(err)
	}
	if d.Revision["demo"] != old.Revisions["demo"] || !d.Allow {
		t.Errorf("snapshot decided on revision %v (allow %v), want %v", d.Revision, d.Allow, old.Revisions)
	}
	live, err := engine.Decide(t.Context(), req())
	if err != nil {
		t.Fatal(err)
	}
	if live.Revision["demo"] != "next" {
		t.Errorf("the engine decided on %v, want the installed generation", live.Revision)
	}
	if snap.Generation() != old || snap.ID() == "" || snap.ID() == d.DecisionID {
		t.Errorf("snapshot generation %p (want %p), id %q", snap.Generation(), old, snap.ID())
	}
	if _, err := decision.NewEngine(nil).Snapshot(t.Context(), nil); err != decision.ErrNotReady {
		t.Errorf("snapshot with no generation: %v, want ErrNotReady", err)
	}
}
