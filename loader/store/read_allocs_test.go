//go:build !race

package store_test

import (
	"testing"

	"github.com/verdict-authz/verdict/loader/store"
)

// A decision opens a reader and looks up its tenant, member, object groups
// and route table: on a snapshot, none of that allocates (memdb's First
// allocates four times a lookup).
func TestSnapshotLookupsAllocateNothing(t *testing.T) {
	st := newStore(t)
	snap := mustUpdate(t, st, func(w *store.WriteTxn) error {
		if err := w.PutService("catalog", portfolios); err != nil {
			return err
		}
		return w.PutTenant("tenants", acme(t))
	})
	var failed error
	allocs := testing.AllocsPerRun(100, func() {
		r := snap.Read()
		if _, err := r.Tenant("acme"); err != nil {
			failed = err
		}
		if _, err := r.Member("acme", "bob"); err != nil {
			failed = err
		}
		if _, err := r.ObjectGroups("acme", "frn:finmars:portfolios:portfolio:bonds"); err != nil {
			failed = err
		}
		if _, err := r.RouteTable(store.AllServices); err != nil {
			failed = err
		}
	})
	if failed != nil {
		t.Fatal(failed)
	}
	if allocs != 0 {
		t.Errorf("a reader and four lookups allocate %.0f times, want 0", allocs)
	}
}
