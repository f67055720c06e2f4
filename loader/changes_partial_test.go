package loader

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/internal/testfiles"
)

// partialWorld writes the catalog, the cn tenant with the given delegations
// and a second, independent tenant bundle, and returns their sources.
func partialWorld(t *testing.T, delegations string) []Source {
	t.Helper()
	root := t.TempDir()
	testfiles.Write(t, filepath.Join(root, "catalog"), cnCatalog)
	testfiles.Write(t, filepath.Join(root, "cn"), cnTenant("t1", delegations))
	testfiles.Write(t, filepath.Join(root, "b"), tenantBundle("tb", "b1", "  bob: {policies: [read]}\n"))
	return []Source{
		{Name: "b", Location: filepath.Join(root, "b")},
		{Name: "catalog", Location: filepath.Join(root, "catalog")},
		{Name: "cn", Location: filepath.Join(root, "cn")},
	}
}

// With --watch (LoadAvailable), a bundle that does not fit with the others
// at start is left out with its own error; the bundles that fit are served
// and not blamed for it. The bundle left out is accepted as soon as a
// registration makes it fit.
func TestLoadAvailableLeavesOutTheBundleThatDoesNotFit(t *testing.T) {
	sources := partialWorld(t, appSelf+"    portfolio__v1__khepri: {operations: [CHANGE], enabled_by: [imhotep]}\n")
	l, engine := newTestLoader(t)
	ctx := t.Context()
	gen, err := l.LoadAvailable(ctx, sources)
	if err == nil || !strings.Contains(err.Error(), `unknown permittable group "portfolio__v1__khepri"`) {
		t.Fatalf("load = %v", err)
	}
	if gen == nil {
		t.Fatal("nothing is served: the bundles that fit were not installed")
	}
	if rev := engine.Current().Revisions; rev["catalog"] != "c1" || rev["b"] != "b1" || rev["cn"] != "" {
		t.Fatalf("revisions %v", rev)
	}
	st := flush(t, l)
	if st.Ready || len(st.Failing) != 1 || st.Failing[0] != "cn" {
		t.Fatalf("ready %v failing %v; want only cn failing", st.Ready, st.Failing)
	}
	for _, name := range []string{"catalog", "b"} {
		if bs := bundleStatus(t, st, name); bs.State != StateOK || bs.LastError != nil {
			t.Errorf("%s: state %s, last error %+v", name, bs.State, bs.LastError)
		}
	}
	cn := bundleStatus(t, st, "cn")
	if cn.LastError == nil || cn.LastError.Stage != "bundle-assemble" ||
		cn.LastError.File != "verdict/tenants/cn/data.yaml" ||
		!strings.Contains(cn.LastError.Message, "delegations.rhythm.portfolio__v1__khepri") {
		t.Fatalf("cn's last error %+v", cn.LastError)
	}
	if _, _, err := l.RegisterService(ctx, "portfolio", portfolioDoc(t, "")); err != nil {
		t.Fatal(err)
	}
	if st := flush(t, l); !st.Ready || engine.Current().Revisions["cn"] != "t1" {
		t.Fatalf("after the registration: ready %v failing %v revisions %v", st.Ready, st.Failing, engine.Current().Revisions)
	}
}

// A Rego compile error is the bundle's whose module has it.
func TestLoadAvailableLeavesOutTheBundleWhoseRegoDoesNotCompile(t *testing.T) {
	sources := partialWorld(t, appSelf)
	bad := filepath.Join(t.TempDir(), "bad")
	testfiles.Write(t, bad, map[string]string{
		".manifest":       `{"revision": "x1", "roots": ["bad"]}`,
		"bad/policy.rego": "package bad\n\nallow if no_such_function(1)\n",
	})
	sources = append(sources, Source{Name: "bad", Location: bad})
	l, engine := newTestLoader(t)
	gen, err := l.LoadAvailable(t.Context(), sources)
	if err == nil || !strings.Contains(err.Error(), "no_such_function") {
		t.Fatalf("load = %v", err)
	}
	if gen == nil {
		t.Fatal("nothing is served")
	}
	if rev := engine.Current().Revisions; rev["catalog"] != "c1" || rev["b"] != "b1" || rev["cn"] != "t1" || rev["bad"] != "" {
		t.Fatalf("revisions %v", rev)
	}
	st := flush(t, l)
	if len(st.Failing) != 1 || st.Failing[0] != "bad" {
		t.Fatalf("failing %v", st.Failing)
	}
	if le := bundleStatus(t, st, "bad").LastError; le == nil || le.Stage != "bundle-assemble" ||
		le.File != "bad/policy.rego" || le.Line != 3 {
		t.Fatalf("bad's last error %+v", le)
	}
}

// Without --watch (LoadAll) nothing is installed when one bundle does not
// fit: the process does not start.
func TestLoadAllInstallsNothingWhenOneBundleDoesNotFit(t *testing.T) {
	sources := partialWorld(t, appSelf+"    portfolio__v1__khepri: {operations: [CHANGE], enabled_by: [imhotep]}\n")
	l, engine := newTestLoader(t)
	if gen, err := l.LoadAll(t.Context(), sources); err == nil || gen != nil {
		t.Fatalf("load = %v, %v", gen, err)
	}
	if engine.Current() != nil {
		t.Fatal("a generation was installed")
	}
}
