package rego

import (
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestNoNegatedCallOnARef holds the engine's rules free of a Rego trap
// that makes a guard fail open: OPA rewrites "not f(input.x)" to
// "t = input.x; not f(t)", so when input.x is missing the expression is
// undefined rather than true (open-policy-agent/opa#1877), and a branch
// meant to deny a request that lacks a fact is skipped. A negated call may
// only take variables and literals (a reference, to input, data, a rule or
// into a variable, is moved out of the negation); a missing fact is tested through a
// rule ("not fact_given"). "not a == b" is the exception when a and b are
// references: OPA leaves them in place, so it holds when either is missing
// (but not a call in them: "not lower(input.x) == y" is the trap again).
func TestNoNegatedCallOnARef(t *testing.T) {
	modules, err := Modules(false)
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range modules {
		ast.WalkExprs(m, func(e *ast.Expr) bool {
			if !e.Negated || !e.IsCall() {
				return false
			}
			equality := e.Operator().Equal(ast.Equal.Ref())
			for _, arg := range e.Operands() {
				refs := refOperands(arg)
				if _, isRef := arg.Value.(ast.Ref); isRef && equality {
					// "not a == b" keeps a and b in place; a call in
					// them ("not lower(input.x) == y") is moved out.
					refs = nil
				}
				for _, r := range refs {
					t.Errorf("%s:%d: %q negates a call on %v, which is undefined, not true, when %v is missing; test it through a rule", name, e.Location.Row, e, r, r)
				}
			}
			return false
		})
	}
}

// refOperands are the references in t, a call's operand, other than the
// names of the functions it calls.
func refOperands(t *ast.Term) []ast.Ref {
	var refs []ast.Ref
	vis := ast.NewGenericVisitor(func(x any) bool {
		switch v := x.(type) {
		case ast.Ref:
			refs = append(refs, v)
			return true
		case ast.Call:
			for _, operand := range v[1:] {
				refs = append(refs, refOperands(operand)...)
			}
			return true
		}
		return false
	})
	vis.Walk(t)
	return refs
}
