package rego

import (
	"bytes"
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/lineage"
)

// TestRego runs verdict's Rego unit tests (verdict/*_test.rego) with OPA's
// test runner, one subtest per Rego test, the way `opa test rego/` would.
func TestRego(t *testing.T) {
	modules, err := Modules(true)
	if err != nil {
		t.Fatalf("load modules: %v", err)
	}
	tests := 0
	for name := range modules {
		if strings.HasSuffix(name, "_test.rego") {
			tests++
		}
	}
	if tests == 0 {
		t.Fatal("no *_test.rego module is embedded")
	}

	ctx := context.Background()
	store := inmem.New()
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		t.Fatalf("open transaction: %v", err)
	}
	defer store.Abort(ctx, txn)

	compiler := ast.NewCompiler().
		WithEnablePrintStatements(true).
		WithDefaultRegoVersion(ast.RegoV1)
	results, err := tester.NewRunner().
		SetCompiler(compiler).
		SetStore(store).
		SetModules(modules).
		SetDefaultRegoVersion(ast.RegoV1).
		CapturePrintOutput(true).
		EnableTracing(true).
		RaiseBuiltinErrors(true).
		RunTests(ctx, txn)
	if err != nil {
		t.Fatalf("compile or run Rego tests: %v", err)
	}

	var all []*tester.Result
	for r := range results {
		all = append(all, r)
	}
	if len(all) == 0 {
		t.Fatal("the Rego test runner found no test rules")
	}
	// Report in source order, whatever order the runner finished them in.
	sort.SliceStable(all, func(i, j int) bool { return location(all[i]) < location(all[j]) })
	for _, r := range all {
		t.Run(strings.TrimPrefix(r.Package, "data.")+"."+r.Name, func(t *testing.T) {
			if len(r.Output) > 0 {
				t.Logf("print output:\n%s", r.Output)
			}
			switch {
			case r.Skip:
				t.Skip("skipped (todo_ test)")
			case r.Error != nil:
				t.Errorf("%s: error: %v", location(r), r.Error)
			case r.Fail:
				t.Errorf("%s: failed%s", location(r), failures(r))
			}
		})
	}
}

// failures lists the expressions that failed in a failed test, from its
// trace, the way `opa test --explain=fails` does; with -v the full trace.
func failures(r *tester.Result) string {
	if len(r.Trace) == 0 {
		return ""
	}
	var buf bytes.Buffer
	if testing.Verbose() {
		topdown.PrettyTraceWithLocation(&buf, r.Trace)
	} else {
		topdown.PrettyTraceWithLocation(&buf, lineage.Fails(r.Trace))
	}
	return ":\n" + buf.String()
}

func location(r *tester.Result) string {
	if r.Location == nil {
		return r.Name
	}
	return r.Location.String()
}
