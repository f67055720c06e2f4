package rego

import (
	"bytes"
	"io/fs"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"

	"github.com/verdict-authz/verdict/bundles"
)

// regoFiles returns the .rego files of fsys, by path.
func regoFiles(t *testing.T, fsys fs.FS) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".rego") {
			return err
		}
		src, err := fs.ReadFile(fsys, path)
		out[path] = src
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("no .rego files found")
	}
	return out
}

// The engine's Rego and the demo bundle's are what bundle authors read and
// copy: they are in OPA's canonical format (`opa fmt`), so that a diff
// shows changes, not layout.
func TestRegoIsCanonicallyFormatted(t *testing.T) {
	for _, tree := range []struct {
		name string
		fsys fs.FS
	}{{"rego", files}, {"bundles/demo", bundles.Demo()}} {
		for path, src := range regoFiles(t, tree.fsys) {
			formatted, err := format.SourceWithOpts(path, src, format.Opts{RegoVersion: ast.RegoV1})
			if err != nil {
				t.Errorf("%s/%s: %v", tree.name, path, err)
				continue
			}
			if !bytes.Equal(formatted, src) {
				t.Errorf("%s/%s is not in canonical format: run opa fmt -w %s/%s", tree.name, path, tree.name, path)
			}
		}
	}
}

// The engine's Rego, its tests and the demo bundle's Rego compile together
// in OPA's strict mode: no unused variables, imports or arguments, no
// deprecated built-ins, no shadowed input or data.
func TestRegoCompilesStrict(t *testing.T) {
	modules := map[string]*ast.Module{}
	for _, tree := range []struct {
		name string
		fsys fs.FS
	}{{"rego", files}, {"bundles/demo", bundles.Demo()}} {
		for path, src := range regoFiles(t, tree.fsys) {
			name := tree.name + "/" + path
			m, err := ast.ParseModuleWithOpts(name, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
			if err != nil {
				t.Fatalf("parse %s: %v", name, err)
			}
			modules[name] = m
		}
	}
	c := ast.NewCompiler().WithStrict(true).WithDefaultRegoVersion(ast.RegoV1)
	if c.Compile(modules); c.Failed() {
		t.Fatalf("strict compilation: %v", c.Errors)
	}
}
