package loader

import (
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/verdict-authz/verdict/loader/acl"
)

// checkRoots reports data and packages outside the manifest's roots.
func (b *Bundle) checkRoots(ps *acl.Problems) {
	for _, r := range b.Roots {
		if r == "" {
			return
		}
	}
	for name, m := range b.Modules {
		p := packagePath(m)
		if !underAnyRoot(p, b.Roots) {
			ps.AddProblem(acl.Problem{File: strings.TrimPrefix(name, b.Source.Name+"/"), Message: fmt.Sprintf("package %s is outside the bundle's roots %v", strings.ReplaceAll(p, "/", "."), b.Roots)})
		}
	}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if underAnyRoot(prefix, b.Roots) {
			return
		}
		obj, ok := v.(map[string]any)
		if !ok || !isRootAncestor(prefix, b.Roots) {
			ps.AddProblem(acl.Problem{Message: fmt.Sprintf("data at %s is outside the bundle's roots %v", strings.ReplaceAll(prefix, "/", "."), b.Roots)})
			return
		}
		for k, child := range obj {
			walk(strings.TrimPrefix(prefix+"/"+k, "/"), child)
		}
	}
	for k, v := range b.Data {
		walk(k, v)
	}
}

func packagePath(m *ast.Module) string {
	parts := make([]string, 0, len(m.Package.Path))
	for _, t := range m.Package.Path[1:] {
		s, ok := t.Value.(ast.String)
		if !ok {
			break
		}
		parts = append(parts, string(s))
	}
	return strings.Join(parts, "/")
}

// underAnyRoot reports whether p (slash-separated) lies at or below a root.
func underAnyRoot(p string, roots []string) bool {
	for _, r := range roots {
		r = strings.Trim(r, "/")
		if r == "" || p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

// isRootAncestor reports whether some root lies below p.
func isRootAncestor(p string, roots []string) bool {
	for _, r := range roots {
		if strings.HasPrefix(strings.Trim(r, "/")+"/", p+"/") {
			return true
		}
	}
	return false
}

// rootsOverlap reports whether two bundles' roots overlap.
func rootsOverlap(a, b []string) (string, string, bool) {
	for _, x := range a {
		for _, y := range b {
			x, y := strings.Trim(x, "/"), strings.Trim(y, "/")
			if x == "" || y == "" || x == y || strings.HasPrefix(x, y+"/") || strings.HasPrefix(y, x+"/") {
				return x, y, true
			}
		}
	}
	return "", "", false
}
