package store_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/loader/store"
)

const cnTenantJSON = `{
  "name": "Fineract CN",
  "members": {"imhotep": {}, "antony": {"is_admin": true}, "bob": {}},
  "delegations": {
    "rhythm": {
      "identity__v1__app_self": {"operations": ["CHANGE"], "enabled_by": ["imhotep", "bob"]},
      "portfolio__v1__khepri": {"operations": ["READ"]}
    }
  }
}`

func cn(t *testing.T) *acl.Tenant {
	t.Helper()
	return parseTenants(t, map[string]string{"cn": cnTenantJSON})["cn"]
}

var now = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func delegation(t *testing.T, snap *store.Snapshot, app, group string) *store.DelegationRecord {
	t.Helper()
	d, err := snap.Read().Delegation("cn", app, group)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestRegistrationOverridesTheBundleService(t *testing.T) {
	st := newStore(t)
	mustUpdate(t, st, func(w *store.WriteTxn) error { return w.PutService("catalog", portfolios) })
	// The registered portfolios service has another collection.
	registered := &acl.Service{Name: "portfolios", Routes: []acl.Route{
		{Kind: acl.RouteCollection, Path: "/api/v2/portfolios/", ViewSet: "PortfolioV2"},
	}}
	snap := mustUpdate(t, st, func(w *store.WriteTxn) error {
		return w.PutRegistration(&store.RegistrationRecord{Name: "portfolios", Service: registered, Document: []byte(`{}`), RegisteredAt: now})
	})
	check := func(snap *store.Snapshot, path string, found bool) {
		t.Helper()
		for _, scope := range []string{"portfolios", store.AllServices} {
			table, err := snap.Read().RouteTable(scope)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := table.Match("GET", path); ok != found {
				t.Errorf("%s: GET %s matched = %v, want %v", scope, path, ok, found)
			}
		}
	}
	check(snap, "/api/v2/portfolios/", true)
	check(snap, "/api/v1/portfolios/portfolio/", false)

	// A bundle reload puts its service again: the registration still wins.
	snap = mustUpdate(t, st, func(w *store.WriteTxn) error {
		if err := w.DeleteBundle("catalog"); err != nil {
			return err
		}
		return w.PutService("catalog", portfolios)
	})
	check(snap, "/api/v2/portfolios/", true)
	check(snap, "/api/v1/portfolios/portfolio/", false)

	r := snap.Read()
	if svc, _ := r.Service("portfolios"); svc != registered {
		t.Errorf("Service(portfolios) = %v, want the registration", svc)
	}
	if rec, _ := r.BundleService("portfolios"); rec == nil || rec.Bundle != "catalog" {
		t.Errorf("BundleService(portfolios) = %v", rec)
	}
	if regs, reqs, consents, err := r.RuntimeCounts(); err != nil || regs != 1 || reqs != 0 || consents != 0 {
		t.Errorf("RuntimeCounts = %d %d %d %v", regs, reqs, consents, err)
	}
}

func TestPermittableGroupsOfRegistrationsAndBundles(t *testing.T) {
	st := newStore(t)
	withGroup := func(name, group string) *acl.Service {
		return &acl.Service{Name: name, PermittableGroups: map[string][]acl.Endpoint{group: {{Method: "GET", Path: "/x"}}}}
	}
	snap := mustUpdate(t, st, func(w *store.WriteTxn) error {
		if err := w.PutService("catalog", withGroup("a", "a__v1__bundle")); err != nil {
			return err
		}
		if err := w.PutService("catalog", withGroup("b", "b__v1__bundle")); err != nil {
			return err
		}
		// The registration of b replaces b's groups.
		return w.PutRegistration(&store.RegistrationRecord{Name: "b", Service: withGroup("b", "b__v1__registered"), Document: []byte(`{}`)})
	})
	r := snap.Read()
	for group, want := range map[string]bool{"a__v1__bundle": true, "b__v1__registered": true, "b__v1__bundle": false, "nope": false} {
		if got, err := r.HasPermittableGroup(group); err != nil || got != want {
			t.Errorf("HasPermittableGroup(%s) = %v, %v; want %v", group, got, err, want)
		}
	}
}

func TestEffectiveDelegations(t *testing.T) {
	st := newStore(t)
	snap := mustUpdate(t, st, func(w *store.WriteTxn) error { return w.PutTenant("tenants", cn(t)) })

	self := delegation(t, snap, "rhythm", "identity__v1__app_self")
	if self == nil || !self.InBundle || self.RequestedAt != nil ||
		!reflect.DeepEqual(self.Operations, []string{"CHANGE"}) || !reflect.DeepEqual(self.EnabledBy, []string{"bob", "imhotep"}) {
		t.Fatalf("bundle entry = %+v", self)
	}
	wantFacts := ast.MustParseTerm(`{"operations": {"CHANGE"}, "enabled_by": {"imhotep", "bob"}}`)
	if self.Facts.Value.Compare(wantFacts.Value) != 0 {
		t.Errorf("facts = %v, want %v", self.Facts, wantFacts)
	}

	// Run time: rhythm asks CHANGE on khepri (the bundle says READ), imhotep
	// consents to khepri, bob withdraws from app_self, and a consent to an
	// entry nobody asked for is kept but has no effect.
	snap = mustUpdate(t, st, func(w *store.WriteTxn) error {
		for _, err := range []error{
			w.PutDelegationRequest(&store.DelegationRequestRecord{Tenant: "cn", Application: "rhythm", Group: "portfolio__v1__khepri", Operations: []string{"CHANGE"}, At: now}),
			w.PutConsent(&store.ConsentRecord{Tenant: "cn", Application: "rhythm", Group: "portfolio__v1__khepri", Member: "imhotep", Enabled: true, At: now}),
			w.PutConsent(&store.ConsentRecord{Tenant: "cn", Application: "rhythm", Group: "identity__v1__app_self", Member: "bob", Enabled: false, At: now}),
			w.PutConsent(&store.ConsentRecord{Tenant: "cn", Application: "ghost", Group: "g", Member: "bob", Enabled: true, At: now}),
			w.PutDelegationRequest(&store.DelegationRequestRecord{Tenant: "cn", Application: "rhy", Group: "g", Operations: []string{"READ"}, At: now}),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	khepri := delegation(t, snap, "rhythm", "portfolio__v1__khepri")
	if !khepri.InBundle || khepri.RequestedAt == nil || !khepri.RequestedAt.Equal(now) ||
		!reflect.DeepEqual(khepri.Operations, []string{"CHANGE", "READ"}) || !reflect.DeepEqual(khepri.EnabledBy, []string{"imhotep"}) {
		t.Errorf("khepri = %+v", khepri)
	}
	if self := delegation(t, snap, "rhythm", "identity__v1__app_self"); !reflect.DeepEqual(self.EnabledBy, []string{"imhotep"}) {
		t.Errorf("bob's withdrawal is ignored: %+v", self)
	}
	if ghost := delegation(t, snap, "ghost", "g"); ghost != nil {
		t.Errorf("a consent alone made an entry: %+v", ghost)
	}
	// Listing by application does not mix "rhy" with "rhythm".
	list, err := snap.Read().Delegations("cn", "rhythm")
	if err != nil || len(list) != 2 {
		t.Fatalf("Delegations(rhythm) = %d entries, %v", len(list), err)
	}
	if list, _ := snap.Read().Delegations("cn", "rhy"); len(list) != 1 || list[0].Group != "g" {
		t.Errorf("Delegations(rhy) = %+v", list)
	}
	if cs, _ := snap.Read().Consents("cn", "rhythm", "identity__v1__app_self"); len(cs) != 1 || cs[0].Member != "bob" {
		t.Errorf("Consents = %+v", cs)
	}

	// A bundle reload rebuilds the tenant: run-time entries stay.
	snap = mustUpdate(t, st, func(w *store.WriteTxn) error {
		if err := w.DeleteBundle("tenants"); err != nil {
			return err
		}
		return w.PutTenant("tenants", cn(t))
	})
	if k := delegation(t, snap, "rhythm", "portfolio__v1__khepri"); k == nil || !reflect.DeepEqual(k.EnabledBy, []string{"imhotep"}) {
		t.Errorf("after a reload khepri = %+v", k)
	}

	// The tenant goes away: nothing is effective, the run-time rows wait.
	snap = mustUpdate(t, st, func(w *store.WriteTxn) error { return w.DeleteBundle("tenants") })
	if k := delegation(t, snap, "rhythm", "portfolio__v1__khepri"); k != nil {
		t.Errorf("entry of a removed tenant: %+v", k)
	}
	if _, reqs, consents, _ := snap.Read().RuntimeCounts(); reqs != 2 || consents != 3 {
		t.Errorf("run-time rows after the tenant left: %d requests, %d consents", reqs, consents)
	}
	snap = mustUpdate(t, st, func(w *store.WriteTxn) error { return w.PutTenant("tenants", cn(t)) })
	if k := delegation(t, snap, "rhythm", "portfolio__v1__khepri"); k == nil || !reflect.DeepEqual(k.EnabledBy, []string{"imhotep"}) {
		t.Errorf("after the tenant came back khepri = %+v", k)
	}
}

func TestFailedUpdateKeepsDelegations(t *testing.T) {
	st := newStore(t)
	mustUpdate(t, st, func(w *store.WriteTxn) error { return w.PutTenant("tenants", cn(t)) })
	_, err := st.Update(func(w *store.WriteTxn) error {
		if err := w.PutDelegationRequest(&store.DelegationRequestRecord{Tenant: "cn", Application: "x", Group: "g", Operations: []string{"READ"}}); err != nil {
			return err
		}
		return errFailed
	})
	if err == nil {
		t.Fatal("the update did not fail")
	}
	if d := delegation(t, st.Snapshot(), "x", "g"); d != nil {
		t.Errorf("a rolled back request is visible: %+v", d)
	}
}

var errFailed = &acl.ValidationError{Problems: []acl.Problem{{Message: "refused"}}}
