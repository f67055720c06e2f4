package store_test

import (
	"reflect"
	"testing"

	"github.com/verdict-authz/verdict/loader/store"
)

// The lookups a decision makes on a snapshot (tenant, member, object
// groups, route table) answer from maps read once out of the snapshot; the
// same lookups inside a write transaction read memdb. Both must give the
// same answers, and a snapshot must keep its own answers after later
// writes.
func TestSnapshotLookupsAgreeWithTransaction(t *testing.T) {
	st := newStore(t)
	snap := mustUpdate(t, st, func(w *store.WriteTxn) error {
		if err := w.PutService("catalog", portfolios); err != nil {
			return err
		}
		return w.PutTenant("tenants", acme(t))
	})
	tenants := []string{"acme", "ACME", "other", ""}
	members := []string{"bob", "Bob", "root", "eve", ""}
	frns := []string{"frn:finmars:portfolios:portfolio:bonds", "frn:finmars:portfolios:portfolio:fx", "frn:finmars:portfolios:portfolio:none", ""}
	scopes := []string{store.AllServices, "portfolios", "Portfolios", "instruments", ""}
	type answers struct {
		Tenants []*store.TenantRecord
		Members []*store.MemberRecord
		Groups  [][]string
		Routes  []any
	}
	read := func(r *store.Reader) answers {
		var a answers
		for _, code := range tenants {
			rec, err := r.Tenant(code)
			if err != nil {
				t.Fatal(err)
			}
			a.Tenants = append(a.Tenants, rec)
			for _, name := range members {
				m, err := r.Member(code, name)
				if err != nil {
					t.Fatal(err)
				}
				a.Members = append(a.Members, m)
			}
			for _, frn := range frns {
				g, err := r.ObjectGroups(code, frn)
				if err != nil {
					t.Fatal(err)
				}
				a.Groups = append(a.Groups, g)
			}
		}
		for _, scope := range scopes {
			table, err := r.RouteTable(scope)
			if err != nil {
				t.Fatal(err)
			}
			a.Routes = append(a.Routes, table)
		}
		return a
	}
	fromSnapshot := read(snap.Read())
	var fromTxn answers
	mustUpdate(t, st, func(w *store.WriteTxn) error {
		fromTxn = read(w.Reader())
		return nil
	})
	if !reflect.DeepEqual(fromSnapshot, fromTxn) {
		t.Fatalf("a snapshot answers\n%+v\nwhere its transaction answers\n%+v", fromSnapshot, fromTxn)
	}
	if fromSnapshot.Tenants[0] == nil || fromSnapshot.Members[0] == nil || fromSnapshot.Groups[0] == nil || fromSnapshot.Routes[0] == nil {
		t.Fatalf("the fixture's own records are missing: %+v", fromSnapshot)
	}

	// A later write changes the new snapshot, not the one already read.
	later := mustUpdate(t, st, func(w *store.WriteTxn) error { return w.DeleteTenant("acme") })
	if rec, _ := snap.Read().Tenant("acme"); rec == nil {
		t.Error("the first snapshot lost tenant acme to a later write")
	}
	if rec, _ := later.Read().Tenant("acme"); rec != nil {
		t.Error("the snapshot after the delete still has tenant acme")
	}
}
