package decision_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/decision"
)

// TestQueryFunctionPathIsAnInputError: a Data API path naming a function
// (a rule with arguments), or a path inside one, is the caller's mistake,
// not an internal error. It was a Rego type error ("function
// data.verdict.engine.truthy used as reference, not called") that the Data
// API answered 500.
func TestQueryFunctionPathIsAnInputError(t *testing.T) {
	engine := demoEngine(t)
	ctx := context.Background()
	for _, tt := range []struct {
		path []string
		want string
	}{
		{[]string{"verdict", "engine", "truthy"}, "data.verdict.engine.truthy is a function, not a document"},
		{[]string{"verdict", "engine", "truthy", "x"}, `data.verdict.engine.truthy.x is inside the function data.verdict.engine.truthy`},
	} {
		_, err := engine.Query(ctx, tt.path, map[string]any{"a": true})
		var inErr *decision.InputError
		if !errors.As(err, &inErr) {
			t.Fatalf("%v: error %v (%T), want an InputError", tt.path, err, err)
		}
		if inErr.Field != "path" || !strings.Contains(inErr.Message, tt.want) {
			t.Errorf("%v: InputError %q: %q, want field path and a message containing %q", tt.path, inErr.Field, inErr.Message, tt.want)
		}
	}

	// The package around the function is a document: its value leaves the
	// function out, as OPA's does.
	res, err := engine.Query(ctx, []string{"verdict", "engine"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	doc, ok := res.Result.(map[string]any)
	if !res.Defined || !ok {
		t.Fatalf("data.verdict.engine = %v (defined %v), want an object", res.Result, res.Defined)
	}
	if _, ok := doc["truthy"]; ok {
		t.Errorf("data.verdict.engine has the function truthy: %v", doc["truthy"])
	}
	// Rules without arguments beside the function still evaluate.
	if _, err := engine.Query(ctx, []string{"verdict", "engine", "verdict"}, nil); err != nil {
		t.Errorf("data.verdict.engine.verdict: %v", err)
	}
}
