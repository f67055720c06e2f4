// Package rego holds verdict's own Rego policy, the rules that turn the
// facts the decision engine gathers into a decision, and embeds it so the
// binary needs no files at run time. Its tests live beside it as
// *_test.rego and run with `go test ./rego/` (or `opa test rego/`). It also
// compiles those rules with the bundles' modules into a Policy
// (CompilePolicy) and evaluates the engine's queries on it.
package rego

import (
	"embed"
	"fmt"
	"io/fs"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

//go:embed verdict/*.rego
var files embed.FS

// Package is the Rego package of the engine's rules; bundles may not
// declare it or anything below it.
const Package = "verdict.engine"

// DecisionQuery is the query the engine evaluates for a decision.
const DecisionQuery = "data.verdict.engine.decision"

// PlanQuery is the query the engine evaluates for a list plan.
const PlanQuery = "data.verdict.engine.plan"

// Modules returns verdict's own modules, parsed, keyed by a file name under
// "verdict-system/". Test files are left out unless withTests is set.
func Modules(withTests bool) (map[string]*ast.Module, error) {
	out := map[string]*ast.Module{}
	err := fs.WalkDir(files, "verdict", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".rego") {
			return err
		}
		if strings.HasSuffix(path, "_test.rego") && !withTests {
			return nil
		}
		src, err := files.ReadFile(path)
		if err != nil {
			return err
		}
		name := "verdict-system/" + path
		m, err := ast.ParseModuleWithOpts(name, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
		if err != nil {
			return fmt.Errorf("parse %s: %w", name, err)
		}
		out[name] = m
		return nil
	})
	return out, err
}
