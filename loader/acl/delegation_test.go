package acl_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/loader/acl"
)

func withDelegations(t *testing.T, delegations string) map[string]any {
	t.Helper()
	tenant := decode(t, validTenant)
	tenant["delegations"] = decodeValue(t, delegations)
	return map[string]any{"catalog": decode(t, validCatalog), "tenants": map[string]any{"acme": tenant}}
}

func TestParseDelegations(t *testing.T) {
	doc, ps := parse(t, withDelegations(t, `{
	  "rhythm": {
	    "portfolio__v1__khepri": {"operations": ["change", "READ", "CHANGE"], "enabled_by": ["bob", "alice"]}
	  },
	  "portfolio": {
	    "accounting__v1__journal": {"operations": ["DELETE"]}
	  }
	}`))
	if got := problemStrings(ps); got != nil {
		t.Fatalf("problems:\n%s", strings.Join(got, "\n"))
	}
	for _, w := range ps.Warnings() {
		if strings.Contains(w.Entry, "delegations") {
			t.Errorf("delegations are parsed now, yet warned about: %s", w)
		}
	}
	acme := doc.Tenants["acme"]
	want := map[string]map[string]*acl.Delegation{
		"rhythm": {"portfolio__v1__khepri": {Application: "rhythm", Group: "portfolio__v1__khepri",
			Operations: []string{"CHANGE", "READ"}, EnabledBy: []string{"bob", "alice"}}},
		"portfolio": {"accounting__v1__journal": {Application: "portfolio", Group: "accounting__v1__journal",
			Operations: []string{"DELETE"}}},
	}
	if !reflect.DeepEqual(acme.Delegations, want) {
		t.Errorf("delegations = %#v", acme.Delegations)
	}
	// Both groups are references the set of bundles must resolve, named
	// where they were written.
	var refs []string
	for _, r := range doc.Refs {
		if r.Kind == acl.RefPermittableGroup {
			refs = append(refs, r.Name+" @ "+r.Loc.File()+": "+r.Loc.Entry())
		}
	}
	wantRefs := []string{
		"accounting__v1__journal @ verdict/tenants/acme/data.yaml: delegations.portfolio.accounting__v1__journal",
		"portfolio__v1__khepri @ verdict/tenants/acme/data.yaml: delegations.rhythm.portfolio__v1__khepri",
	}
	if !reflect.DeepEqual(refs, wantRefs) {
		t.Errorf("refs = %q, want %q", refs, wantRefs)
	}
}

func TestParseDelegationProblems(t *testing.T) {
	const f = "verdict/tenants/acme/data.yaml: "
	tests := []struct {
		name, delegations string
		want              []string
	}{
		{"bad operation", `{"rhythm": {"g": {"operations": ["READ", "WRITE"], "enabled_by": ["bob"]}}}`,
			[]string{f + `delegations.rhythm.g.operations[1]: unknown operation "WRITE"; operations are READ, CHANGE and DELETE`}},
		{"no operations", `{"rhythm": {"g": {"operations": [], "enabled_by": ["bob"]}}}`,
			[]string{f + `delegations.rhythm.g.operations: must name at least one of READ, CHANGE, DELETE`}},
		{"operations missing", `{"rhythm": {"g": {"enabled_by": ["bob"]}}}`,
			[]string{f + `delegations.rhythm.g: operations is required (READ, CHANGE, DELETE)`}},
		{"operation not a string", `{"rhythm": {"g": {"operations": [1]}}}`,
			[]string{f + `delegations.rhythm.g.operations[0]: expected a non-empty string, got a number`}},
		{"unknown member", `{"rhythm": {"g": {"operations": ["READ"], "enabled_by": ["bob", "imhotep"]}}}`,
			[]string{f + `delegations.rhythm.g.enabled_by[1]: unknown member "imhotep"`}},
		{"member twice", `{"rhythm": {"g": {"operations": ["READ"], "enabled_by": ["bob", "bob"]}}}`,
			[]string{f + `delegations.rhythm.g.enabled_by[1]: "bob" is listed twice`}},
		{"application not an object", `{"rhythm": ["g"]}`,
			[]string{f + `delegations.rhythm: expected an object, got a list`}},
		{"entry not an object", `{"rhythm": {"g": "READ"}}`,
			[]string{f + `delegations.rhythm.g: expected an object, got a string`}},
		{"delegations not an object", `["rhythm"]`,
			[]string{f + `delegations: expected an object, got a list`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, ps := parse(t, withDelegations(t, tt.delegations))
			if got := problemStrings(ps); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, tt.want)
			}
			if doc.Tenants["acme"] != nil {
				t.Error("a tenant with a bad delegation was kept")
			}
		})
	}
}

func TestParseDelegationWarnsAboutUnknownFields(t *testing.T) {
	_, ps := parse(t, withDelegations(t, `{"rhythm": {"g": {"operations": ["READ"], "enabledBy": ["bob"]}}}`))
	if err := ps.Err(); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range ps.Warnings() {
		if w.Entry == "delegations.rhythm.g.enabledBy" {
			found = true
		}
	}
	if !found {
		t.Errorf("no warning about enabledBy: %v", ps.Warnings())
	}
}

func TestOperationFor(t *testing.T) {
	for method, op := range map[string]string{
		"GET": "READ", "HEAD": "READ", "OPTIONS": "READ",
		"POST": "CHANGE", "PUT": "CHANGE", "PATCH": "CHANGE",
		"DELETE": "DELETE", "TRACE": "",
	} {
		if got := acl.OperationFor(method); got != op {
			t.Errorf("OperationFor(%s) = %q, want %q", method, got, op)
		}
	}
}

func TestNormalizeOperations(t *testing.T) {
	got, err := acl.NormalizeOperations([]string{"delete", "Read", "READ"})
	if err != nil || !reflect.DeepEqual(got, []string{"DELETE", "READ"}) {
		t.Errorf("= %q, %v", got, err)
	}
	_, err = acl.NormalizeOperations([]string{"READ", "UPDATE"})
	var ie *acl.IndexError
	if !errors.As(err, &ie) || ie.Index != 1 {
		t.Errorf("error %v does not name index 1", err)
	}
	if _, err := acl.NormalizeOperations(nil); err == nil {
		t.Error("no operations accepted")
	}
}

func TestValidName(t *testing.T) {
	for name, ok := range map[string]bool{
		"rhythm": true, "portfolio__v1__khepri": true, "with space": true, "ünï": true,
		"": false, "a/b": false, "tab\there": false, strings.Repeat("x", 129): false, strings.Repeat("x", 128): true,
	} {
		if acl.ValidName(name) != ok {
			t.Errorf("ValidName(%q) = %v", name, !ok)
		}
	}
}

func TestServiceDocumentRoundTrips(t *testing.T) {
	var ps acl.Problems
	raw := decode(t, validCatalog)["services"].(map[string]any)["portfolios"]
	svc := acl.ParseService("portfolios", raw, acl.NewLoc(nil), &ps)
	if err := ps.Err(); err != nil {
		t.Fatal(err)
	}
	doc := acl.ServiceDocument(svc)
	var ps2 acl.Problems
	again := acl.ParseService("portfolios", toGeneric(t, doc), acl.NewLoc(nil), &ps2)
	if err := ps2.Err(); err != nil {
		t.Fatalf("the document of a service does not parse: %v", err)
	}
	again.File, svc.File = "", ""
	if !reflect.DeepEqual(again, svc) {
		t.Errorf("round trip changed the service:\n got %#v\nwant %#v", again, svc)
	}
}

// toGeneric turns a document built of Go maps and slices into the generic
// tree JSON decoding gives ([]any, map[string]any).
func toGeneric(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return decodeValue(t, string(b))
}

// decodeValue decodes any JSON value the way OPA's bundle reader would.
func decodeValue(t *testing.T, src string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(src))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("bad test JSON: %v\n%s", err, src)
	}
	return v
}
