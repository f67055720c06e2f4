// Package generation holds the immutable unit the loader builds and an
// engine serves: a store snapshot and the Rego compiled from the same
// bundles, numbered, with where its facts stand in the fleet's shared
// run-time state. The loader builds generations and hands them to whatever
// installs them; it never needs the engine's own types.
package generation

import (
	"context"
	"time"

	"github.com/verdict-authz/verdict/loader/store"
	policy "github.com/verdict-authz/verdict/rego"
)

// Generation is everything one decision reads: a store snapshot and the
// Rego compiled from the same bundles. A reload builds a new generation and
// swaps it in; a decision holds on to the one it started with. It is not
// changed once built.
type Generation struct {
	// Number counts generations from 1.
	Number   uint64
	Facts    *store.Snapshot
	Policy   *policy.Policy
	LoadedAt time.Time
	// Revisions maps each loaded bundle's name to its manifest revision.
	Revisions map[string]string
	// State is where the facts stand in the fleet's shared run-time state.
	State StateInfo
}

// StateInfo says where a generation's run-time facts stand in the state
// shared by a fleet (--state-db). Go gathers it (input.facts.state); Rego
// decides what it means for a decision.
type StateInfo struct {
	// Shared: run-time state comes from the fleet's database.
	Shared bool
	// Revision is the last change of the shared state the facts include.
	Revision uint64
	// Stale: the sidecar could not confirm its state is current for longer
	// than the allowed staleness.
	Stale bool
}

// StateWaiter catches up with the shared run-time state until it has
// applied a revision, waiting a bounded time (the loader in fleet mode).
type StateWaiter interface {
	WaitForState(ctx context.Context, revision uint64)
}
