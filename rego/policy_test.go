package rego

import (
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestCompilePolicyKeepsTheEnginesPackage: no bundle module may define a
// rule in data.verdict.engine, whether by its package or by a rule head
// that is a ref ("engine.covers(r) if …" in package verdict adds a
// definition to the engine's covers: every group would cover the object).
func TestCompilePolicyKeepsTheEnginesPackage(t *testing.T) {
	tests := []struct {
		name   string
		module string
		// reserved is whether the module must be refused.
		reserved bool
	}{
		{"the engine's package", "package verdict.engine\n\nx := 1\n", true},
		{"a package below it", "package verdict.engine.mine\n\nx := 1\n", true},
		{"a function definition through a ref head", "package verdict\n\nengine.covers(r) if r.kind == \"group\"\n", true},
		{"a boolean rule through a ref head", "package verdict\n\nengine.key_valid if true\n", true},
		{"a partial object through a ref head", "package verdict\n\nengine[k] := 1 if some k in [\"decision\"]\n", true},
		{"extension rules beside the engine", "package verdict.ext\n\ndeny contains \"closed\" if input.context.closed\n", false},
		{"a condition rule", "package verdict\n\nconditions.office_hours if true\n", false},
		{"a package whose name starts like the engine's", "package verdict.engineering\n\nx := 1\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ast.ParseModuleWithOpts("bundle/x.rego", tt.module, ast.ParserOptions{RegoVersion: ast.RegoV1})
			if err != nil {
				t.Fatal(err)
			}
			_, err = CompilePolicy(t.Context(), map[string]*ast.Module{"bundle/x.rego": m}, map[string]any{})
			refused := err != nil && strings.Contains(err.Error(), "reserved for verdict's engine")
			if refused != tt.reserved {
				t.Errorf("refused = %v (err %v), want %v", refused, err, tt.reserved)
			}
			if refused && !strings.Contains(err.Error(), "bundle/x.rego") {
				t.Errorf("the error does not name the file: %v", err)
			}
		})
	}
}
