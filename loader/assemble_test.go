package loader

import (
	"errors"
	"testing"

	"github.com/verdict-authz/verdict/internal/testfiles"
	"github.com/verdict-authz/verdict/loader/acl"
)

// TestAssembleProblemsNameFileAndEntry: what is wrong only when bundles are
// put together — a SOAJS key given to two applications — is reported like
// any validation problem, with the data file and the entry (README "Bundles").
func TestAssembleProblemsNameFileAndEntry(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef"
	app := func(name string) string {
		return "name: " + name + "\napplications:\n  " + name + "_app:\n    package: P\n    keys:\n      - key: other-" + name + "\n      - key: " + key + "\n"
	}
	dir := t.TempDir()
	testfiles.Write(t, dir, map[string]string{
		"verdict/catalog/data.yaml": "services:\n  s:\n    routes:\n      - {path: /x/, viewset: X}\n" +
			"products:\n  PROD:\n    packages:\n      P: {acl: {s: {}}}\n",
		"verdict/tenants/ta/data.yaml": app("ta"),
		"verdict/tenants/tb/data.yaml": app("tb"),
	})
	b, err := Read(Source{Name: "demo", Location: dir})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Assemble(t.Context(), []*Bundle{b})
	var verr *acl.ValidationError
	if !errors.As(err, &verr) || len(verr.Problems) != 1 {
		t.Fatalf("Assemble: %v, want one validation problem", err)
	}
	p := verr.Problems[0]
	if p.File != "verdict/tenants/tb/data.yaml" || p.Entry != "applications.tb_app.keys[1].key" {
		t.Errorf("problem at %s %s, want verdict/tenants/tb/data.yaml applications.tb_app.keys[1].key: %v", p.File, p.Entry, p)
	}
}
