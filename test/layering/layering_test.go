// Package layering holds the test that pins which verdict packages may
// import which: data flows files → loader → store snapshot → engine → HTTP,
// and imports point one way, down that flow (README, "Development").
package layering

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/verdict-authz/verdict/"

// mayImport lists, for each library package of the module (module prefix
// cut), the module's packages it may import directly. A package missing
// from this table fails the test until it is given its place; an import
// not listed fails it too. cmd/verdict wires everything and the test/
// packages may import anything, so neither is listed.
var mayImport = map[string][]string{
	// Nothing of verdict below this line.
	"bundles":              nil,
	"rego":                 nil,
	"loader/acl":           nil,
	"loader/state":         nil,
	"loader/jsonkeys":      nil,
	"decision/client":      nil, // a service links it: the standard library only
	"decision/proxyauth":   {"loader/acl", "loader/route"},
	"decision/admission":   nil,
	"loader/state/pgstate": {"loader/state"},

	// The typed model, then the store that indexes it, then the generation
	// (a store snapshot and the compiled Rego) the loader builds.
	"loader/route":      {"loader/acl"},
	"loader/store":      {"loader/acl", "loader/route"},
	"loader/generation": {"rego", "loader/store"},

	// The engine serves generations: it reads their store snapshots and
	// runs the Rego rego compiled.
	"decision": {"rego", "loader/acl", "loader/generation", "loader/store", "loader/route"},

	// The loader builds generations and hands them to an Installer it
	// declares (decision.Engine is one); it never imports the engine.
	"loader": {"rego", "loader/acl", "loader/generation", "loader/jsonkeys", "loader/store", "loader/state", "loader/state/pgstate"},

	// Above the engine: what asks it questions and reports on it.
	"decision/access":     {"decision", "loader/acl", "loader/store"},
	"decision/shadow":     {"decision", "decision/access"},
	"decision/telemetry":  {"decision"},
	"decision/datafilter": {"decision"},

	// The doors: HTTP and ext_authz, the top floor below cmd. They serve
	// the engine's decisions and the loader's status and run-time API.
	"decision/extauthz": {"decision", "decision/admission", "decision/proxyauth", "loader"},
	"decision/httpapi":  {"decision", "decision/access", "decision/admission", "decision/datafilter", "decision/proxyauth", "decision/telemetry", "loader", "loader/acl", "loader/jsonkeys"},

	// Test helpers.
	"internal/testdemo":  {"bundles"},
	"internal/testfiles": nil,
	"internal/testjwt":   nil,
	"loader/loadertest":  {"bundles", "decision", "loader"},
}

// crossings are imports that run against the flow because a type sits in
// the wrong folder, not because the layers need each other. Each names the
// move that removes it; the test allows them until then. None remain.
var crossings = map[string][]string{}

// free lists packages that may import any package of the module.
func free(pkg string) bool {
	return strings.HasPrefix(pkg, "cmd/") || strings.HasPrefix(pkg, "test/")
}

type listedPackage struct {
	ImportPath string
	Imports    []string
}

func TestLayering(t *testing.T) {
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", module+"...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("go list: %v\n%s", err, exit.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := map[string]bool{}
	crossed := map[[2]string]bool{}
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkg := strings.TrimPrefix(p.ImportPath, module)
		seen[pkg] = true
		if free(pkg) {
			continue
		}
		allowed, known := mayImport[pkg]
		allowed = append(slices.Clip(allowed), crossings[pkg]...)
		if !known {
			t.Errorf("%s has no place in the layering table; add it to mayImport (and README's package map)", pkg)
			continue
		}
		for _, imp := range p.Imports {
			dep, ok := strings.CutPrefix(imp, module)
			if !ok {
				continue
			}
			if slices.Contains(crossings[pkg], dep) {
				crossed[[2]string{pkg, dep}] = true
			}
			if !slices.Contains(allowed, dep) {
				t.Errorf("%s imports %s, which the layering does not allow", pkg, dep)
			}
		}
	}
	for pkg, deps := range crossings {
		for _, dep := range deps {
			if !crossed[[2]string{pkg, dep}] {
				t.Errorf("%s no longer imports %s: remove the crossing from the table", pkg, dep)
			}
		}
	}
	for pkg := range mayImport {
		if !seen[pkg] {
			t.Errorf("mayImport lists %s, which go list did not find", pkg)
		}
	}
}
