package rego

import (
	"bytes"
	"context"
	"regexp"
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
// test runner, the way `opa test rego/` would, and reports each Rego test
// as a subtest. A failed test is run again with tracing so that the report
// shows the expressions that failed (with -v, the whole trace).
func TestRego(t *testing.T) {
	modules, err := Modules(true)
	if err != nil {
		t.Fatalf("load modules: %v", err)
	}
	testFiles := 0
	for name := range modules {
		if strings.HasSuffix(name, "_test.rego") {
			testFiles++
		}
	}
	if testFiles == 0 {
		t.Fatal("no *_test.rego module is embedded")
	}

	results := runRegoTests(t, modules, "", false)
	if len(results) == 0 {
		t.Fatal("the Rego test runner found no test rules")
	}

	var failed []string
	for _, r := range results {
		if r.Fail {
			failed = append(failed, regexp.QuoteMeta(r.Package+"."+r.Name))
		}
	}
	traces := map[string]*tester.Result{}
	if len(failed) > 0 {
		for _, r := range runRegoTests(t, modules, "^("+strings.Join(failed, "|")+")$", true) {
			traces[r.Package+"."+r.Name] = r
		}
	}

	for _, r := range results {
		t.Run(strings.TrimPrefix(r.Package, "data.")+"."+r.Name, func(t *testing.T) {
			if len(r.Output) > 0 {
				t.Logf("print output:\n%s", r.Output)
			}
			switch {
			case r.Error != nil:
				t.Errorf("%s: error: %v", location(r), r.Error)
			case r.Fail:
				t.Errorf("%s: failed%s", location(r), failures(traces[r.Package+"."+r.Name]))
			case r.Skip:
				t.Skip("skipped (todo_ test)")
			}
		})
	}
}

// runRegoTests runs the tests whose names match filter (all when empty) and
// returns their results in source order.
func runRegoTests(t *testing.T, modules map[string]*ast.Module, filter string, trace bool) []*tester.Result {
	t.Helper()
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
	runner := tester.NewRunner().
		SetCompiler(compiler).
		SetStore(store).
		SetModules(modules).
		SetDefaultRegoVersion(ast.RegoV1).
		CapturePrintOutput(true).
		// Builtin errors make an expression undefined, as in the engine's
		// own evaluation (decision/policy.go does not raise them).
		RaiseBuiltinErrors(false).
		EnableTracing(trace)
	if filter != "" {
		runner = runner.Filter(filter)
	}
	ch, err := runner.RunTests(ctx, txn)
	if err != nil {
		t.Fatalf("compile or run Rego tests: %v", err)
	}
	var out []*tester.Result
	for r := range ch {
		out = append(out, r)
	}
	// The runner reports tests as they finish; report them in source order.
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Location, out[j].Location
		if a == nil || b == nil || a.File != b.File {
			return location(out[i]) < location(out[j])
		}
		return a.Row < b.Row
	})
	return out
}

// failures lists the expressions that failed in a traced run of a failed
// test, as `opa test --explain=fails` does; with -v, the whole trace.
func failures(r *tester.Result) string {
	if r == nil || len(r.Trace) == 0 {
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
