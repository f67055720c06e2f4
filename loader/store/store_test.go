package store_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/loader/store"
)

// acmeJSON is a tenant whose member bob reaches the policy read-portfolios
// three times (directly, through his role and through his group's role).
// Policies are named so that their code order is the order they are listed
// here.
const acmeJSON = `{
  "name": "Acme",
  "members": {
    "bob":   {"roles": ["viewer"], "groups": ["staff", "traders"], "policies": ["read-portfolios"]},
    "carol": {"groups": ["staff"]},
    "dave":  {},
    "erin":  {"policies": ["trade", "read-portfolios", "deny-secret", "read-instruments"]},
    "root":  {"is_admin": true}
  },
  "roles":  {"viewer": {"policies": ["read-portfolios", "read-instruments"]}},
  "groups": {
    "staff":   {"roles": ["viewer"], "policies": ["deny-secret"]},
    "traders": {"policies": ["trade"]}
  },
  "access_policies": {
    "deny-secret": {"Statement": [
      {"Effect": "Deny", "Action": "finmars:Portfolio:*", "Resource": "frn:finmars:portfolios:portfolio:secret"}
    ]},
    "read-instruments": {"Statement": [
      {"Effect": "Allow", "Action": ["finmars:Instrument:list", "finmars:Instrument:retrieve"], "Resource": "*"}
    ]},
    "read-portfolios": {"Statement": [
      {"Effect": "Allow", "Action": ["finmars:Portfolio:list", "finmars:Portfolio:retrieve"], "Resource": "frn:finmars:iam:resourcegroup:Group_A"},
      {"Effect": "Allow", "Action": "finmars:Portfolio:list_*", "Resource": "*"},
      {"Effect": "Allow", "Action": ["finmars:*:list", "finmars:Portfolio:*", "FINMARS:portfolio:LIST"], "Resource": "*"}
    ]},
    "trade": {"Statement": [
      {"Effect": "Allow", "Action": "finmars:Transaction:create", "Resource": "*"},
      {"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": "member:bob"}
    ]},
    "unused": {"Statement": [
      {"Effect": "Allow", "Action": "*", "Resource": "*"}
    ]}
  },
  "resource_groups": {
    "Group_A": {"assignments": ["FRN:FINMARS:PORTFOLIOS:PORTFOLIO:Bonds", "frn:finmars:portfolios:portfolio:equity"]},
    "group_b": {"assignments": ["frn:finmars:portfolios:portfolio:bonds", "frn:finmars:portfolios:portfolio:fx"]}
  }
}`

// parseTenants parses tenants (code → JSON document) with the acl package.
func parseTenants(t *testing.T, docs map[string]string) map[string]*acl.Tenant {
	t.Helper()
	tenants := map[string]any{}
	for code, src := range docs {
		dec := json.NewDecoder(bytes.NewReader([]byte(src)))
		dec.UseNumber()
		var v map[string]any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("bad test JSON for %s: %v", code, err)
		}
		tenants[code] = v
	}
	var ps acl.Problems
	doc := acl.Parse(map[string]any{"tenants": tenants}, nil, &ps)
	if err := ps.Err(); err != nil {
		t.Fatalf("test tenants do not parse: %v", err)
	}
	return doc.Tenants
}

func acme(t *testing.T) *acl.Tenant {
	t.Helper()
	return parseTenants(t, map[string]string{"acme": acmeJSON})["acme"]
}

func newStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.New()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func mustUpdate(t *testing.T, st *store.Store, fn func(*store.WriteTxn) error) *store.Snapshot {
	t.Helper()
	snap, err := st.Update(fn)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if snap == nil {
		t.Fatal("Update returned no snapshot")
	}
	return snap
}

var portfolios = &acl.Service{Name: "portfolios", Routes: []acl.Route{
	{Kind: acl.RouteCollection, Path: "/api/v1/portfolios/portfolio/", ViewSet: "Portfolio"},
}}

var instruments = &acl.Service{Name: "instruments", Routes: []acl.Route{
	{Kind: acl.RouteCollection, Path: "/api/v1/instruments/instrument/", ViewSet: "Instrument"},
}}

func TestReaderLookups(t *testing.T) {
	st := newStore(t)
	tenant := acme(t)
	snap := mustUpdate(t, st, func(w *store.WriteTxn) error { return w.PutTenant("tenants", tenant) })
	r := snap.Read()

	rec, err := r.Tenant("acme")
	if err != nil || rec == nil {
		t.Fatalf("Tenant(acme) = %v, %v", rec, err)
	}
	if rec.Code != "acme" || rec.Bundle != "tenants" || rec.Tenant.Code != "acme" || rec.Facts == nil {
		t.Errorf("tenant record = {Code:%q Bundle:%q Tenant:%p Facts:%v}", rec.Code, rec.Bundle, rec.Tenant, rec.Facts)
	}
	// The record keeps the tenant without its members (the members table
	// has them) and leaves the parsed tenant as it was.
	if rec.Tenant.Members != nil || len(tenant.Members) != 5 || !reflect.DeepEqual(rec.Tenant.Policies, tenant.Policies) {
		t.Errorf("tenant record's tenant: %d members, %d policies; the parsed tenant: %d members", len(rec.Tenant.Members), len(rec.Tenant.Policies), len(tenant.Members))
	}
	// Its resource groups and policies are copies (the groups' FRNs the
	// object table's, the policies' statements in a few slices).
	if !reflect.DeepEqual(rec.Tenant.ResourceGroups, tenant.ResourceGroups) || len(tenant.ResourceGroups) < 2 {
		t.Errorf("tenant record's resource groups %v, parsed %v", rec.Tenant.ResourceGroups, tenant.ResourceGroups)
	}
	for _, code := range []string{"nope", "ACME", ""} {
		if rec, err := r.Tenant(code); err != nil || rec != nil {
			t.Errorf("Tenant(%q) = %v, %v; want nil, nil", code, rec, err)
		}
	}

	m, err := r.Member("acme", "bob")
	if err != nil || m == nil {
		t.Fatalf("Member(acme, bob) = %v, %v", m, err)
	}
	if m.Name != "bob" || m.Facts() == nil {
		t.Errorf("member record = %+v", m)
	}
	if names, err := r.MemberNames("acme"); err != nil || !slices.Equal(names, slices.Sorted(maps.Keys(tenant.Members))) {
		t.Errorf("MemberNames(acme) = %v, %v", names, err)
	}
	if names, err := r.MemberNames("other"); err != nil || names != nil {
		t.Errorf("MemberNames(other) = %v, %v; want none", names, err)
	}
	for _, tc := range [][2]string{{"acme", "Bob"}, {"acme", "eve"}, {"other", "bob"}, {"", "bob"}} {
		if m, err := r.Member(tc[0], tc[1]); err != nil || m != nil {
			t.Errorf("Member(%q, %q) = %v, %v; want nil, nil (names compare exactly)", tc[0], tc[1], m, err)
		}
	}
	if n, err := r.Members("acme"); err != nil || n != 5 {
		t.Errorf("Members(acme) = %d, %v; want 5", n, err)
	}

	groups := []struct {
		frn  string
		want []string
	}{
		{"frn:finmars:portfolios:portfolio:bonds", []string{"group_a", "group_b"}},
		{"frn:finmars:portfolios:portfolio:equity", []string{"group_a"}},
		{"frn:finmars:portfolios:portfolio:fx", []string{"group_b"}},
		{"frn:finmars:portfolios:portfolio:other", nil},
	}
	for _, g := range groups {
		got, err := r.ObjectGroups("acme", g.frn)
		if err != nil || !reflect.DeepEqual(got, g.want) {
			t.Errorf("ObjectGroups(acme, %q) = %q, %v; want %q", g.frn, got, err, g.want)
		}
	}
	if got, _ := r.ObjectGroups("other", "frn:finmars:portfolios:portfolio:bonds"); got != nil {
		t.Errorf("ObjectGroups of another tenant = %q", got)
	}

	all, err := r.Tenants()
	if err != nil || len(all) != 1 || all[0].Code != "acme" {
		t.Errorf("Tenants() = %v, %v", all, err)
	}
	if table, err := r.RouteTable(store.AllServices); err != nil || table != nil {
		t.Errorf("RouteTable(*) before any service = %v, %v; want nil", table, err)
	}
}

type stmtRef struct {
	policy string
	index  int
}

func refs(l *store.StatementList) []stmtRef {
	var out []stmtRef
	for _, f := range l.Facts {
		out = append(out, stmtRef{f.Statement.Policy, f.Statement.Index})
	}
	return out
}

func TestStatementsFor(t *testing.T) {
	tenant := acme(t)
	st := newStore(t)
	r := mustUpdate(t, st, func(w *store.WriteTxn) error { return w.PutTenant("tenants", tenant) }).Read()
	tests := []struct {
		member, action string
		want           []stmtRef
	}{
		// read-portfolios is reached three times and counted once; its
		// statement 2 matches under three index keys and is listed once;
		// read-portfolios[1] (list_*) is indexed under finmars:portfolio and
		// may be handed over: Rego decides. unused is not bob's.
		{"bob", "finmars:portfolio:list", []stmtRef{
			{"deny-secret", 0}, {"read-portfolios", 0}, {"read-portfolios", 1}, {"read-portfolios", 2}, {"trade", 1},
		}},
		{"bob", "finmars:portfolio:retrieve", []stmtRef{
			{"deny-secret", 0}, {"read-portfolios", 0}, {"read-portfolios", 1}, {"read-portfolios", 2}, {"trade", 1},
		}},
		{"bob", "finmars:instrument:retrieve", []stmtRef{{"read-instruments", 0}, {"read-portfolios", 2}, {"trade", 1}}},
		{"bob", "finmars:transaction:create", []stmtRef{{"read-portfolios", 2}, {"trade", 0}, {"trade", 1}}},
		{"bob", "other:thing:do", []stmtRef{{"trade", 1}}},
		{"bob", "finmars", []stmtRef{{"read-portfolios", 2}, {"trade", 1}}},
		// erin reaches bob's policies another way: the same statements.
		{"erin", "finmars:portfolio:list", []stmtRef{
			{"deny-secret", 0}, {"read-portfolios", 0}, {"read-portfolios", 1}, {"read-portfolios", 2}, {"trade", 1},
		}},
		{"erin", "finmars:transaction:create", []stmtRef{{"read-portfolios", 2}, {"trade", 0}, {"trade", 1}}},
		{"carol", "finmars:portfolio:list", []stmtRef{
			{"deny-secret", 0}, {"read-portfolios", 0}, {"read-portfolios", 1}, {"read-portfolios", 2},
		}},
		{"carol", "finmars:transaction:create", []stmtRef{{"read-portfolios", 2}}},
		{"carol", "other:thing:do", nil},
		{"dave", "finmars:portfolio:list", nil},
		{"root", "finmars:portfolio:list", nil},
	}
	for _, tt := range tests {
		t.Run(tt.member+" "+tt.action, func(t *testing.T) {
			m, err := r.Member("acme", tt.member)
			if err != nil || m == nil {
				t.Fatalf("Member(%s) = %v, %v", tt.member, m, err)
			}
			l := m.StatementsFor(tt.action, nil)
			if got := refs(l); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("StatementsFor(%q) = %v\nwant %v", tt.action, got, tt.want)
			}
			if l.Array == nil {
				t.Fatal("StatementList.Array is nil")
			}
			if got := len(strings.Split(strings.Trim(l.Array.String(), "[]"), `"policy"`)) - 1; got != len(tt.want) {
				t.Errorf("the Rego array holds %d statement(s), want %d: %v", got, len(tt.want), l.Array)
			}
			// With a reused scratch buffer the answer is the same.
			buf := make([]string, 0, 8)
			buf = append(buf, "stale", "keys")
			if got := refs(m.StatementsFor(tt.action, buf)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("StatementsFor(%q, buf) = %v, want %v", tt.action, got, tt.want)
			}
		})
	}
}

// TestStatementsForNeverMissesAMatch checks, for every statement of the
// member's policies, that a statement whose action pattern matches the
// action is always among the statements handed to Rego.
func TestStatementsForNeverMissesAMatch(t *testing.T) {
	tenant := acme(t)
	st := newStore(t)
	r := mustUpdate(t, st, func(w *store.WriteTxn) error { return w.PutTenant("tenants", tenant) }).Read()
	actions := []string{
		"finmars:portfolio:list", "finmars:portfolio:list_light", "finmars:portfolio:destroy",
		"finmars:instrument:list", "finmars:transaction:create", "finmars:portfoliotype:list",
	}
	for _, name := range []string{"bob", "carol", "erin"} {
		m, _ := r.Member("acme", name)
		for _, action := range actions {
			got := refs(m.StatementsFor(action, nil))
			for _, code := range tenant.MemberPolicies(tenant.Members[name]) {
				for _, s := range tenant.Policies[code].Statements {
					for _, a := range s.Actions {
						if !couldMatch(a, action) {
							continue
						}
						if !slices.Contains(got, stmtRef{s.Policy, s.Index}) {
							t.Errorf("%s, %s: statement %s[%d] (action %q) matches but is not handed over: %v", name, action, s.Policy, s.Index, a.Raw, got)
						}
					}
				}
			}
		}
	}
}

// couldMatch is a plain reading of the action matching of README "How a decision is made", for the
// patterns of acmeJSON (a "*" part matches one part; a last part of "*"
// matches the rest; "list_*" is a prefix).
func couldMatch(p acl.ActionPattern, action string) bool {
	pp := strings.Split(strings.ToLower(p.Raw), ":")
	ap := strings.Split(action, ":")
	for i, part := range pp {
		if i == len(pp)-1 && part == "*" {
			return len(ap) >= len(pp)
		}
		if i >= len(ap) {
			return false
		}
		switch {
		case part == "*":
		case strings.HasSuffix(part, "*"):
			if !strings.HasPrefix(ap[i], strings.TrimSuffix(part, "*")) {
				return false
			}
		case part != ap[i]:
			return false
		}
	}
	return len(ap) == len(pp)
}

func TestPutTenantReplacesEverything(t *testing.T) {
	st := newStore(t)
	mustUpdate(t, st, func(w *store.WriteTxn) error { return w.PutTenant("tenants", acme(t)) })
	smaller := parseTenants(t, map[string]string{"acme": `{
		"members": {"erin": {}},
		"resource_groups": {"g": {"assignments": ["frn:finmars:portfolios:portfolio:fx"]}}
	}`})["acme"]
	r := mustUpdate(t, st, func(w *store.WriteTxn) error { return w.PutTenant("tenants-v2", smaller) }).Read()
	if rec, _ := r.Tenant("acme"); rec == nil || rec.Bundle != "tenants-v2" || !reflect.DeepEqual(rec.Tenant.ResourceGroups, smaller.ResourceGroups) {
		t.Errorf("Tenant(acme) after the second PutTenant = %+v", rec)
	}
	if m, _ := r.Member("acme", "bob"); m != nil {
		t.Error("member bob survives a PutTenant that no longer has him")
	}
	if m, _ := r.Member("acme", "erin"); m == nil {
		t.Error("member erin is missing")
	}
	if n, _ := r.Members("acme"); n != 1 {
		t.Errorf("Members(acme) = %d, want 1", n)
	}
	if g, _ := r.ObjectGroups("acme", "frn:finmars:portfolios:portfolio:bonds"); g != nil {
		t.Errorf("old assignments survive: %q", g)
	}
	if g, _ := r.ObjectGroups("acme", "frn:finmars:portfolios:portfolio:fx"); !reflect.DeepEqual(g, []string{"g"}) {
		t.Errorf("ObjectGroups(fx) = %q, want [g]", g)
	}
}

func TestServicesAndRouteTables(t *testing.T) {
	st := newStore(t)
	r := mustUpdate(t, st, func(w *store.WriteTxn) error {
		if err := w.PutService("catalog", portfolios); err != nil {
			return err
		}
		return w.PutService("catalog", instruments)
	}).Read()
	svcs, err := r.Services()
	if err != nil || len(svcs) != 2 || svcs[0].Name != "instruments" || svcs[1].Name != "portfolios" || svcs[1].Bundle != "catalog" {
		t.Fatalf("Services() = %+v, %v", svcs, err)
	}
	for _, tc := range []struct {
		scope, path string
		match       bool
	}{
		{"portfolios", "/api/v1/portfolios/portfolio/", true},
		{"portfolios", "/api/v1/instruments/instrument/", false},
		{"instruments", "/api/v1/instruments/instrument/", true},
		{store.AllServices, "/api/v1/portfolios/portfolio/7/", true},
		{store.AllServices, "/api/v1/instruments/instrument/", true},
	} {
		table, err := r.RouteTable(tc.scope)
		if err != nil || table == nil {
			t.Errorf("RouteTable(%q) = %v, %v", tc.scope, table, err)
			continue
		}
		if _, ok := table.Match("GET", tc.path); ok != tc.match {
			t.Errorf("RouteTable(%q).Match(GET %s) = %v, want %v", tc.scope, tc.path, ok, tc.match)
		}
	}
	if table, _ := r.RouteTable("transactions"); table != nil {
		t.Error("RouteTable of an unknown service is not nil")
	}

	r = mustUpdate(t, st, func(w *store.WriteTxn) error { return w.DeleteService("instruments") }).Read()
	if table, _ := r.RouteTable("instruments"); table != nil {
		t.Error("route table of a deleted service survives")
	}
	if table, _ := r.RouteTable(store.AllServices); table == nil {
		t.Error("no route table over all services")
	} else if _, ok := table.Match("GET", "/api/v1/instruments/instrument/"); ok {
		t.Error("the table over all services still routes a deleted service")
	}
}

func TestDeleteBundle(t *testing.T) {
	st := newStore(t)
	tenants := parseTenants(t, map[string]string{"acme": acmeJSON, "beta": `{"members": {"bob": {}}}`})
	old := mustUpdate(t, st, func(w *store.WriteTxn) error {
		for _, err := range []error{
			w.PutTenant("one", tenants["acme"]),
			w.PutTenant("two", tenants["beta"]),
			w.PutService("one", portfolios),
			w.PutService("two", instruments),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	r := mustUpdate(t, st, func(w *store.WriteTxn) error { return w.DeleteBundle("one") }).Read()

	if rec, _ := r.Tenant("acme"); rec != nil {
		t.Error("tenant acme of the deleted bundle survives")
	}
	if m, _ := r.Member("acme", "bob"); m != nil {
		t.Error("member acme/bob of the deleted bundle survives")
	}
	if n, _ := r.Members("acme"); n != 0 {
		t.Errorf("Members(acme) = %d after DeleteBundle", n)
	}
	if g, _ := r.ObjectGroups("acme", "frn:finmars:portfolios:portfolio:bonds"); g != nil {
		t.Errorf("assignments of the deleted bundle survive: %q", g)
	}
	if table, _ := r.RouteTable("portfolios"); table != nil {
		t.Error("route table of a service of the deleted bundle survives")
	}
	if table, _ := r.RouteTable(store.AllServices); table == nil {
		t.Error("no route table over all services")
	} else {
		if _, ok := table.Match("GET", "/api/v1/portfolios/portfolio/"); ok {
			t.Error("the table over all services still routes the deleted bundle's service")
		}
		if _, ok := table.Match("GET", "/api/v1/instruments/instrument/"); !ok {
			t.Error("the table over all services lost the other bundle's service")
		}
	}
	if rec, _ := r.Tenant("beta"); rec == nil {
		t.Error("tenant beta of the other bundle is gone")
	}
	if m, _ := r.Member("beta", "bob"); m == nil {
		t.Error("member beta/bob of the other bundle is gone")
	}
	if svcs, _ := r.Services(); len(svcs) != 1 || svcs[0].Name != "instruments" {
		t.Errorf("Services() = %+v, want instruments only", svcs)
	}

	// A snapshot taken before the change still sees the old data.
	or := old.Read()
	if rec, _ := or.Tenant("acme"); rec == nil {
		t.Error("an earlier snapshot lost tenant acme")
	}
	if table, _ := or.RouteTable("portfolios"); table == nil {
		t.Error("an earlier snapshot lost the portfolios route table")
	}

	// Deleting a bundle that supplied nothing is not an error.
	mustUpdate(t, st, func(w *store.WriteTxn) error { return w.DeleteBundle("never-loaded") })
}

func TestUpdateErrorKeepsNothing(t *testing.T) {
	st := newStore(t)
	before := mustUpdate(t, st, func(w *store.WriteTxn) error { return w.PutService("catalog", instruments) })
	boom := errors.New("boom")
	snap, err := st.Update(func(w *store.WriteTxn) error {
		if err := w.PutTenant("one", acme(t)); err != nil {
			return err
		}
		if err := w.PutService("one", portfolios); err != nil {
			return err
		}
		if err := w.DeleteService("instruments"); err != nil {
			return err
		}
		return fmt.Errorf("processor failed: %w", boom)
	})
	if !errors.Is(err, boom) {
		t.Errorf("Update error = %v, want one wrapping %v", err, boom)
	}
	if snap != nil {
		t.Error("a failed Update returned a snapshot")
	}
	for name, r := range map[string]*store.Reader{"current": st.Snapshot().Read(), "earlier": before.Read()} {
		if rec, _ := r.Tenant("acme"); rec != nil {
			t.Errorf("%s snapshot: the failed Update's tenant is kept", name)
		}
		if m, _ := r.Member("acme", "bob"); m != nil {
			t.Errorf("%s snapshot: the failed Update's member is kept", name)
		}
		if table, _ := r.RouteTable("portfolios"); table != nil {
			t.Errorf("%s snapshot: the failed Update's service is kept", name)
		}
		if table, _ := r.RouteTable("instruments"); table == nil {
			t.Errorf("%s snapshot: the failed Update's deletion is kept", name)
		}
		if svcs, _ := r.Services(); len(svcs) != 1 || svcs[0].Name != "instruments" {
			t.Errorf("%s snapshot: Services() = %+v", name, svcs)
		}
	}
}

// TestKeysNameOneTenant covers the key table: a key names its tenant, a key
// of two tenants is refused, and deleting a tenant frees its keys.
func TestKeysNameOneTenant(t *testing.T) {
	mk := func(code, app, key string) *acl.Tenant {
		return &acl.Tenant{
			Code: code, Checks: []string{"package"},
			Members: map[string]*acl.Member{}, Roles: map[string]*acl.Role{}, Groups: map[string]*acl.Group{},
			Policies: map[string]*acl.Policy{}, ResourceGroups: map[string]*acl.ResourceGroup{},
			Applications: map[string]*acl.Application{app: {Name: app, Package: "PCK", Keys: []*acl.Key{{Key: key}}}},
		}
	}
	st := newStore(t)
	r := mustUpdate(t, st, func(w *store.WriteTxn) error { return w.PutTenant("one", mk("tnt1", "app1", "k1")) }).Read()
	k, err := r.Key("k1")
	if err != nil || k == nil || k.Tenant != "tnt1" || k.Application != "app1" || k.Package != "PCK" {
		t.Fatalf("Key(k1) = %+v, %v", k, err)
	}
	if k, _ := r.Key("k2"); k != nil {
		t.Errorf("Key(k2) = %+v, want nil", k)
	}
	if _, err := st.Update(func(w *store.WriteTxn) error { return w.PutTenant("two", mk("tnt2", "app2", "k1")) }); err == nil {
		t.Error("a key of two tenants was accepted")
	}
	if rec, _ := st.Snapshot().Read().Tenant("tnt2"); rec != nil {
		t.Error("the refused tenant was kept")
	}
	// Re-putting the same tenant with the same key is a replacement.
	mustUpdate(t, st, func(w *store.WriteTxn) error { return w.PutTenant("one", mk("tnt1", "app1", "k1")) })
	r = mustUpdate(t, st, func(w *store.WriteTxn) error { return w.DeleteBundle("one") }).Read()
	if k, _ := r.Key("k1"); k != nil {
		t.Errorf("key of a deleted tenant survives: %+v", k)
	}
}
