package loader

import (
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	policy "github.com/verdict-authz/verdict/rego"
)

// A module the policy compiler refuses (it adds rules to the engine's own
// package) is blamed on the bundle that holds it, so the other bundles of
// a partial load still serve.
func TestBlameRefusedModule(t *testing.T) {
	parse := func(name, src string) *ast.Module {
		m, err := ast.ParseModuleWithOpts(name, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	good := &Bundle{Source: Source{Name: "good"}, Modules: map[string]*ast.Module{
		"good/policy.rego": parse("good/policy.rego", "package ext\n\nallow := true\n")}}
	bad := &Bundle{Source: Source{Name: "bad"}, Modules: map[string]*ast.Module{
		"bad/engine.rego": parse("bad/engine.rego", "package verdict.engine\n\nextra := true\n")}}
	modules := map[string]*ast.Module{}
	for _, b := range []*Bundle{good, bad} {
		for name, m := range b.Modules {
			modules[name] = m
		}
	}
	_, err := policy.CompilePolicy(t.Context(), modules, nil)
	if err == nil {
		t.Fatal("a module in the engine's package compiled")
	}
	got := blame(err, []*Bundle{good, bad})
	if len(got) != 1 || got["bad"] == nil || !strings.HasPrefix(got["bad"].Error(), "bad/engine.rego: package verdict.engine is reserved") {
		t.Fatalf("blame = %v", got)
	}
}
