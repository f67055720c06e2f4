// Package failclosed injects faults into the change pipeline (issue 8,
// "fail closed"): a change that cannot be made - a processor that panics or
// fails, a bundle whose Rego does not compile, whose conditions have no rule
// or whose data does not validate - is rejected as a whole, the last good
// generation keeps serving unchanged, and the process lives on. Faults on
// the request path are in decision/failclosed_test.go and
// loader/store/failclosed_test.go.
package failclosed

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/loader/loadertest"
	"github.com/verdict-authz/verdict/loader/store"
)

const catalog = `{"services": {"portfolios": {"routes": [{"path": "/api/v1/portfolios/portfolio/", "viewset": "Portfolio"}]}}}`

func tenant(statement string) string {
	return `{"members": {"bob": {"policies": ["p"]}, "root": {"is_admin": true}},
	 "access_policies": {"p": {"Statement": [` + statement + `]}}}`
}

const readAll = `{"Effect": "Allow", "Action": "finmars:Portfolio:list", "Resource": "*"}`

func catalogBundle() fstest.MapFS {
	return fstest.MapFS{
		".manifest":                 {Data: []byte(`{"revision": "c1", "roots": ["verdict/catalog"]}`)},
		"verdict/catalog/data.json": {Data: []byte(catalog)},
	}
}

func acmeBundle(revision, tenantJSON string, modules map[string]string) fstest.MapFS {
	fs := fstest.MapFS{
		".manifest":                      {Data: []byte(`{"revision": "` + revision + `", "roots": ["verdict/tenants/acme", "acme"]}`)},
		"verdict/tenants/acme/data.json": {Data: []byte(tenantJSON)},
	}
	for name, src := range modules {
		fs[name] = &fstest.MapFile{Data: []byte(src)}
	}
	return fs
}

// setup serves the catalog and acme bundles; bob may list portfolios.
func setup(t *testing.T) (*decision.Engine, *loader.Loader) {
	t.Helper()
	return loadertest.Load(t, []loader.Source{
		{Name: "catalog", FS: catalogBundle()},
		{Name: "acme", FS: acmeBundle("a1", tenant(readAll), nil)},
	})
}

// answers records the decisions that show what is served.
func answers(t *testing.T, engine *decision.Engine) []string {
	t.Helper()
	var out []string
	for _, member := range []string{"bob", "root", "carol"} {
		for _, action := range []string{"finmars:Portfolio:list", "finmars:Portfolio:destroy"} {
			d, err := engine.Decide(context.Background(), &decision.Request{Tenant: "acme", Member: member, Action: action})
			if err != nil {
				t.Fatal(err)
			}
			codes := make([]string, len(d.Reasons))
			for i, r := range d.Reasons {
				codes[i] = r.Code
			}
			out = append(out, fmt.Sprintf("%s %s: %v %d %v %v", member, action, d.Allow, d.Status, codes, d.Revision))
		}
	}
	return out
}

func TestRejectedBundlesKeepTheLastGoodOne(t *testing.T) {
	engine, ld := setup(t)
	before := answers(t, engine)
	gen := engine.Current().Number
	for _, tc := range []struct {
		name    string
		fs      fstest.MapFS
		message string
	}{
		{"Rego that does not parse", acmeBundle("a2", tenant(readAll), map[string]string{
			"acme/x.rego": "package acme\n\nallow if {",
		}), "x.rego"},
		{"Rego that does not compile", acmeBundle("a2", tenant(readAll), map[string]string{
			"acme/x.rego": "package acme\n\nallow if data.acme.nothing(1, 2, 3)\n",
		}), "x.rego"},
		{"a module in the engine's package", func() fstest.MapFS {
			fs := acmeBundle("a2", tenant(readAll), map[string]string{
				"verdict/engine/mine/x.rego": "package verdict.engine.mine\n\nx := 1\n",
			})
			fs[".manifest"] = &fstest.MapFile{Data: []byte(`{"revision": "a2", "roots": ["verdict/tenants/acme", "verdict/engine/mine"]}`)}
			return fs
		}(), "reserved"},
		{"a condition without a rule", acmeBundle("a2", tenant(`{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": "never_defined"}`), nil),
			"never_defined"},
		{"a dangling reference", acmeBundle("a2", `{"members": {"bob": {"policies": ["gone"]}}}`, nil), "gone"},
		{"a malformed action", acmeBundle("a2", tenant(`{"Effect": "Allow", "Action": "finmars:Portfolio:list:x", "Resource": "*"}`), nil),
			"finmars:Portfolio:list:x"},
		{"data outside the roots", func() fstest.MapFS {
			fs := acmeBundle("a2", tenant(`{"Effect": "Allow", "Action": "*", "Resource": "*"}`), nil)
			fs["verdict/tenants/other/data.json"] = &fstest.MapFile{Data: []byte(`{}`)}
			return fs
		}(), "root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ld.Reload(t.Context(), loader.Source{Name: "acme", FS: tc.fs})
			if err == nil {
				t.Fatal("the change was accepted")
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error does not mention %q: %v", tc.message, err)
			}
			if n := engine.Current().Number; n != gen {
				t.Fatalf("generation %d installed, want %d kept", n, gen)
			}
			if after := answers(t, engine); !reflect.DeepEqual(after, before) {
				t.Fatalf("answers changed:\n%v\n%v", before, after)
			}
		})
	}
	// A good version is still taken afterwards.
	if err := ld.Reload(t.Context(), loader.Source{Name: "acme", FS: acmeBundle("a3", tenant(`{"Effect": "Allow", "Action": "*", "Resource": "*"}`), nil)}); err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(answers(t, engine), before) {
		t.Fatal("a good version after the rejected ones changed nothing")
	}
}

// faultyProcessor fails or panics inside the change's transaction, after
// the store processor has written the new bundle.
type faultyProcessor struct {
	panic bool
	armed *bool
}

func (p faultyProcessor) Name() string { return "test-faulty" }
func (p faultyProcessor) Order() int   { return 450 }
func (p faultyProcessor) Process(_ context.Context, ev *loader.Event, _ *store.WriteTxn) error {
	if !*p.armed {
		return nil
	}
	if p.panic {
		panic("processor bug")
	}
	return errors.New("processor refused")
}

func TestFailingProcessorRollsTheChangeBack(t *testing.T) {
	engine, ld := setup(t)
	armed := false
	ld.Pipeline().Register(faultyProcessor{armed: &armed})
	before := answers(t, engine)
	gen := engine.Current().Number
	armed = true
	err := ld.Reload(t.Context(), loader.Source{Name: "acme", FS: acmeBundle("a2", tenant(`{"Effect": "Allow", "Action": "*", "Resource": "*"}`), nil)})
	if err == nil || !strings.Contains(err.Error(), "processor refused") {
		t.Fatalf("Reload: %v", err)
	}
	if engine.Current().Number != gen || !reflect.DeepEqual(answers(t, engine), before) {
		t.Fatal("a change a processor refused was installed")
	}
	armed = false
	if err := ld.Reload(t.Context(), loader.Source{Name: "acme", FS: acmeBundle("a3", tenant(`{"Effect": "Allow", "Action": "*", "Resource": "*"}`), nil)}); err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(answers(t, engine), before) {
		t.Fatal("the next good change was not installed")
	}
}

func TestPanickingProcessorRejectsTheChange(t *testing.T) {
	engine, ld := setup(t)
	armed := false
	ld.Pipeline().Register(faultyProcessor{panic: true, armed: &armed})
	before := answers(t, engine)
	gen := engine.Current().Number
	armed = true
	var err error
	recovered := func() (r any) {
		defer func() { r = recover() }()
		err = ld.Reload(t.Context(), loader.Source{Name: "acme", FS: acmeBundle("a2", tenant(`{"Effect": "Allow", "Action": "*", "Resource": "*"}`), nil)})
		return nil
	}()
	if engine.Current().Number != gen || !reflect.DeepEqual(answers(t, engine), before) {
		t.Fatal("a change whose processor panicked was installed")
	}
	if recovered != nil {
		t.Fatalf("a panic in a synchronous processor escaped Loader.Reload (%v): under --watch it would crash the process", recovered)
	}
	if err == nil || !strings.Contains(err.Error(), "processor bug") {
		t.Fatalf("Reload after a processor panic: %v", err)
	}
	armed = false
	if err := ld.Reload(t.Context(), loader.Source{Name: "acme", FS: acmeBundle("a3", tenant(`{"Effect": "Allow", "Action": "*", "Resource": "*"}`), nil)}); err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(answers(t, engine), before) {
		t.Fatal("the next good change was not installed")
	}
}
