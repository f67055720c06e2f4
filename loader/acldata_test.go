package loader

import (
	"reflect"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/internal/testfiles"
)

// TestACLDataDecodedAgainAfterInstall: once a bundle is installed its decoded
// verdict.catalog and verdict.tenants are dropped, and ACLData decodes the
// data files (JSON and YAML, at several depths) again into the same value.
func TestACLDataDecodedAgainAfterInstall(t *testing.T) {
	dir := t.TempDir()
	testfiles.Write(t, dir, map[string]string{
		"data.json":                 `{"other": {"x": 1}, "verdict": {"ext": {"blocked": ["203.0.113.66"]}}}`,
		"verdict/catalog/data.json": `{"services": {"portfolios": {"routes": [{"path": "/api/v1/portfolios/portfolio/", "viewset": "Portfolio"}]}}}`,
		"verdict/tenants/ta/data.yaml": "name: ta\nmembers:\n  alice: {policies: [read], is_admin: false}\n" +
			"access_policies:\n  read:\n    Statement:\n      - {Effect: Allow, Action: [\"finmars:Portfolio:list\"], Resource: \"*\"}\n",
	})
	b, err := Read(Source{Name: "a", Location: dir})
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := b.ACLData()
	if err != nil || decoded["catalog"] == nil || decoded["tenants"] == nil {
		t.Fatalf("ACLData() = %v, %v", decoded, err)
	}
	l, _ := newTestLoader(t)
	if err := l.Apply(t.Context(), b.Source, b, nil); err != nil {
		t.Fatal(err)
	}
	if b.aclData.Load() != nil {
		t.Fatal("the installed bundle still holds its decoded data")
	}
	again, err := b.ACLData()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, decoded) {
		t.Fatalf("decoded again: %v\nwant %v", again, decoded)
	}
}

// TestLintSeesThePreviousVersion: lint rules compare a new version with the
// installed one, whose data is decoded again for them.
func TestLintSeesThePreviousVersion(t *testing.T) {
	dir := t.TempDir()
	files := tenantBundle("ta", "a1", "  alice: {policies: [read]}\n  bob: {policies: [read]}\n")
	files[".manifest"] = `{"revision": "a1", "roots": ["verdict/tenants/ta", "verdict/lint"]}`
	files["verdict/lint/lint.rego"] = `package verdict.lint

deny contains sprintf("member %s of %s was removed (revision %s)", [name, code, input.previous.revision]) if {
	some code, prev in input.previous.tenants
	some name, _ in prev.members
	not input.tenants[code].members[name]
}
`
	testfiles.Write(t, dir, files)
	l, _ := newTestLoader(t)
	src := Source{Name: "a", Location: dir}
	if _, err := l.LoadAll(t.Context(), []Source{src}); err != nil {
		t.Fatal(err)
	}
	testfiles.Write(t, dir, map[string]string{"verdict/tenants/ta/data.yaml": strings.Replace(files["verdict/tenants/ta/data.yaml"], "  bob: {policies: [read]}\n", "", 1)})
	err := l.Reload(t.Context(), src)
	if err == nil || !strings.Contains(err.Error(), "member bob of ta was removed (revision a1)") {
		t.Fatalf("err = %v", err)
	}
}
