package decision_test

import (
	"errors"
	"fmt"
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
	ctx := t.Context()
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
	ask := func() (*decision.Request, error) {
		return &decision.Request{Tenant: "bank", Member: "user_a", Action: "finmars:Portfolio:list"}, nil
	}
	res, err := engine.QueryEngine(ctx, []string{"verdict", "engine"}, ask)
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
	if _, err := engine.QueryEngine(ctx, []string{"verdict", "engine", "verdict"}, ask); err != nil {
		t.Errorf("data.verdict.engine.verdict: %v", err)
	}
}

// TestQueryPathBounds: every distinct Data API path was prepared and kept
// (up to 1,024 per generation, whatever their size): 163 requests with
// 30,000-segment paths took the process to 1 GB (issue 14, item 12). A
// path over MaxDataPathBytes or MaxDataPathSegments is an InputError on
// "path" that names it, and the prepared queries kept are the
// MaxCachedDataQueries most recently used.
func TestQueryPathBounds(t *testing.T) {
	engine := demoEngine(t)
	ctx := t.Context()
	for _, tt := range []struct {
		name string
		path []string
		want string
	}{
		{"30,000 segments", strings.Split(strings.Repeat("a/", 30000)+"a", "/"), `"a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/…" is 60001 bytes long; a path may have at most 512`},
		{"too many segments", strings.Split(strings.Repeat("a/", decision.MaxDataPathSegments)+"a", "/"), "has 33 segments; a path may have at most 32"},
		{"one long segment", []string{"verdict", strings.Repeat("x", decision.MaxDataPathBytes)}, "bytes long; a path may have at most 512"},
		{"not UTF-8", []string{"verdict", "\xff"}, `"verdict/\xff" is not valid UTF-8`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := engine.Query(ctx, tt.path, nil)
			var inErr *decision.InputError
			if !errors.As(err, &inErr) || inErr.Field != "path" || !strings.Contains(inErr.Message, tt.want) {
				t.Fatalf("error %v, want an InputError on path containing %q", err, tt.want)
			}
		})
	}
	// At the bounds a path is answered.
	if _, err := engine.Query(ctx, strings.Split(strings.Repeat("a/", decision.MaxDataPathSegments-1)+"a", "/"), nil); err != nil {
		t.Fatalf("a path of %d segments: %v", decision.MaxDataPathSegments, err)
	}

	for i := range 3 * decision.MaxCachedDataQueries {
		if _, err := engine.Query(ctx, []string{"verdict", "nowhere", fmt.Sprint(i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := decision.CachedDataQueries(engine.Current()); n > decision.MaxCachedDataQueries {
		t.Errorf("%d prepared queries kept, want at most %d", n, decision.MaxCachedDataQueries)
	}
	// The most recently used are kept: asking again is a cache hit (no
	// entry is added).
	before := decision.CachedDataQueries(engine.Current())
	if _, err := engine.Query(ctx, []string{"verdict", "nowhere", fmt.Sprint(3*decision.MaxCachedDataQueries - 1)}, nil); err != nil {
		t.Fatal(err)
	}
	if after := decision.CachedDataQueries(engine.Current()); after != before {
		t.Errorf("asking for a recent path again changed the cache from %d to %d entries", before, after)
	}
}

// TestQueryBelowAScalarIsAnInputError: a path below a scalar (here below
// the boolean data.verdict.engine.decision.allow) is one the type checker
// refuses: no evaluation can give it a value. It was answered 500 with the
// raw type error (issue 14, item 17).
func TestQueryBelowAScalarIsAnInputError(t *testing.T) {
	engine := demoEngine(t)
	ask := func() (*decision.Request, error) {
		return &decision.Request{Tenant: "bank", Member: "admin", Action: "finmars:Portfolio:list"}, nil
	}
	_, err := engine.QueryEngine(t.Context(), []string{"verdict", "engine", "decision", "allow", "x"}, ask)
	var inErr *decision.InputError
	if !errors.As(err, &inErr) || inErr.Field != "path" || !strings.Contains(inErr.Message, "data.verdict.engine.decision.allow.x can have no value") {
		t.Fatalf("error %v, want an InputError on path saying the path can have no value", err)
	}
}

// TestQueryEngineMessagePaths: a reason's message is written by Go, not by
// the rules, so a Data API path that ends at one is answered from its
// reason: the message /v1/decide gives. It was undefined (or refused as a
// path that can have no value) once the rules stopped writing messages.
func TestQueryEngineMessagePaths(t *testing.T) {
	engine := demoEngine(t)
	ctx := t.Context()
	req := decision.Request{Tenant: "bank", Member: "intern", Action: "finmars:Portfolio:destroy"}
	d, err := engine.Decide(ctx, &req)
	if err != nil {
		t.Fatal(err)
	}
	if d.Allow || d.DecidingReason() != "iam.no_allow" {
		t.Fatalf("the request is not denied iam.no_allow: %+v", d)
	}
	ask := func() (*decision.Request, error) { r := req; return &r, nil }
	for _, tc := range []struct {
		path []string
		want string
	}{
		{[]string{"verdict", "engine", "no_allow_deny", "message"}, d.Reasons[len(d.Reasons)-1].Message},
		{[]string{"verdict", "engine", "incomplete_deny", "message"}, "The decision could not be made: a fact the rules need is missing or malformed."},
	} {
		res, err := engine.QueryEngine(ctx, tc.path, ask)
		if err != nil {
			t.Fatalf("%v: %v", tc.path, err)
		}
		if !res.Defined || res.Result != tc.want {
			t.Errorf("%v = %v (defined %v), want %q", tc.path, res.Result, res.Defined, tc.want)
		}
	}
	// A path to a message where there is none stays undefined.
	for _, path := range [][]string{
		{"verdict", "engine", "decision", "message"},
		{"verdict", "engine", "iam", "message"},
	} {
		res, err := engine.QueryEngine(ctx, path, ask)
		if err != nil {
			t.Fatalf("%v: %v", path, err)
		}
		if res.Defined {
			t.Errorf("%v = %v, want undefined", path, res.Result)
		}
	}
}
