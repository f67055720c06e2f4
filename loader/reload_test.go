package loader

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/keys"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/internal/testfiles"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func tenantBundle(code, revision, members string) map[string]string {
	return map[string]string{
		".manifest": `{"revision": "` + revision + `", "roots": ["verdict/tenants/` + code + `"]}`,
		"verdict/tenants/" + code + "/data.yaml": "name: " + code + "\nmembers:\n" + members +
			"access_policies:\n  read:\n    Statement:\n      - {Effect: Allow, Action: [\"finmars:Portfolio:list\"], Resource: \"*\"}\n",
	}
}

func newTestLoader(t *testing.T) (*Loader, *decision.Engine) {
	t.Helper()
	engine := decision.NewEngine(quietLog())
	l, err := New(engine, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l, engine
}

func flush(t *testing.T, l *Loader) Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return l.Status()
}

func bundleStatus(t *testing.T, st Status, name string) BundleStatus {
	t.Helper()
	for _, b := range st.Bundles {
		if b.Name == name {
			return b
		}
	}
	t.Fatalf("status lists no bundle %s: %+v", name, st)
	return BundleStatus{}
}

func TestReloadRebuildsOnlyTheChangedBundle(t *testing.T) {
	root := t.TempDir()
	dirA, dirB := filepath.Join(root, "a"), filepath.Join(root, "b")
	testfiles.Write(t, dirA, tenantBundle("ta", "a1", "  alice: {policies: [read]}\n"))
	testfiles.Write(t, dirB, tenantBundle("tb", "b1", "  bob: {policies: [read]}\n"))
	l, engine := newTestLoader(t)
	srcA, srcB := Source{Name: "a", Location: dirA}, Source{Name: "b", Location: dirB}
	if _, err := l.LoadAll(t.Context(), []Source{srcA, srcB}); err != nil {
		t.Fatal(err)
	}
	before := engine.Current()
	bobBefore, _ := before.Facts.Read().Member("tb", "bob")
	aliceBefore, _ := before.Facts.Read().Member("ta", "alice")
	tenantBBefore, _ := before.Facts.Read().Tenant("tb")

	testfiles.Write(t, dirA, tenantBundle("ta", "a2", "  alice: {policies: [read]}\n  carol: {}\n"))
	if err := l.Reload(t.Context(), srcA); err != nil {
		t.Fatal(err)
	}
	after := engine.Current()
	if after.Number != before.Number+1 || after.Revisions["a"] != "a2" || after.Revisions["b"] != "b1" {
		t.Fatalf("generation %d revisions %v", after.Number, after.Revisions)
	}
	r := after.Facts.Read()
	bobAfter, _ := r.Member("tb", "bob")
	tenantBAfter, _ := r.Tenant("tb")
	aliceAfter, _ := r.Member("ta", "alice")
	carol, _ := r.Member("ta", "carol")
	if bobAfter != bobBefore || tenantBAfter != tenantBBefore {
		t.Error("reloading bundle a rebuilt bundle b's records")
	}
	if aliceAfter == aliceBefore || carol == nil {
		t.Error("bundle a's records were not rebuilt")
	}
	// The old generation is untouched: a decision that holds it sees the old data.
	if c, _ := before.Facts.Read().Member("ta", "carol"); c != nil {
		t.Error("the previous generation's snapshot changed")
	}
	st := flush(t, l)
	if a := bundleStatus(t, st, "a"); a.State != StateOK || a.Revision != "a2" || a.Loads != 2 {
		t.Errorf("status of a = %+v", a)
	}
}

func TestUnchangedReloadInstallsNothing(t *testing.T) {
	dir := t.TempDir()
	testfiles.Write(t, dir, tenantBundle("ta", "a1", "  alice: {}\n"))
	l, engine := newTestLoader(t)
	src := Source{Name: "a", Location: dir}
	if _, err := l.LoadAll(t.Context(), []Source{src}); err != nil {
		t.Fatal(err)
	}
	gen := engine.Current()
	if err := l.Reload(t.Context(), src); err != nil {
		t.Fatal(err)
	}
	if engine.Current() != gen {
		t.Error("a reload of identical files installed a new generation")
	}
	if a := bundleStatus(t, flush(t, l), "a"); a.State != StateOK || a.LastSuccessfulLoad == nil || a.Loads != 1 {
		t.Errorf("status = %+v", a)
	}
}

func TestFailedReloadKeepsTheLastGoodVersion(t *testing.T) {
	dir := t.TempDir()
	testfiles.Write(t, dir, tenantBundle("ta", "a1", "  alice: {policies: [read]}\n"))
	l, engine := newTestLoader(t)
	src := Source{Name: "a", Location: dir}
	if _, err := l.LoadAll(t.Context(), []Source{src}); err != nil {
		t.Fatal(err)
	}
	good := engine.Current()
	cases := []struct {
		name, content, file, entry string
		line                       int // -1: any line
	}{
		{"bad YAML", "name: ta\nmembers:\n  alice: {policies: [read\n", "verdict/tenants/ta/data.yaml", "", -1},
		{"dangling reference", "name: ta\nmembers:\n  alice: {policies: [missing]}\n", "verdict/tenants/ta/data.yaml", "members.alice.policies[0]", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			testfiles.Write(t, dir, map[string]string{"verdict/tenants/ta/data.yaml": tc.content})
			if err := l.Reload(t.Context(), src); err == nil {
				t.Fatal("the bad version was accepted")
			}
			if engine.Current() != good {
				t.Fatal("a rejected version replaced the generation")
			}
			st := flush(t, l)
			a := bundleStatus(t, st, "a")
			if st.Ready || a.State != StateFailed || a.LastError == nil {
				t.Fatalf("status = %+v", st)
			}
			lineOK := a.LastError.Line == tc.line || tc.line < 0 && a.LastError.Line > 0
			if a.LastError.File != tc.file || !lineOK || a.LastError.Message == "" {
				t.Errorf("last error = %+v, want file %s line %d", a.LastError, tc.file, tc.line)
			}
			if tc.entry != "" && a.LastError.Problems[0].Entry != tc.entry {
				t.Errorf("entry = %q, want %q", a.LastError.Problems[0].Entry, tc.entry)
			}
			if a.Revision != "a1" {
				t.Errorf("the status must keep the served revision, got %q", a.Revision)
			}
		})
	}
	testfiles.Write(t, dir, tenantBundle("ta", "a3", "  alice: {policies: [read]}\n"))
	if err := l.Reload(t.Context(), src); err != nil {
		t.Fatal(err)
	}
	if st := flush(t, l); !st.Ready || len(st.Failing) != 0 {
		t.Errorf("after the fix: %+v", st)
	}
}

func TestRemovedBundleIsUnloadedAndClearsItsFailure(t *testing.T) {
	root := t.TempDir()
	dirA, dirB := filepath.Join(root, "a"), filepath.Join(root, "b")
	testfiles.Write(t, dirA, tenantBundle("ta", "a1", "  alice: {}\n"))
	testfiles.Write(t, dirB, tenantBundle("tb", "b1", "  bob: {}\n"))
	l, engine := newTestLoader(t)
	srcA, srcB := Source{Name: "a", Location: dirA}, Source{Name: "b", Location: dirB}
	if _, err := l.LoadAll(t.Context(), []Source{srcA, srcB}); err != nil {
		t.Fatal(err)
	}
	testfiles.Write(t, dirB, map[string]string{"verdict/tenants/tb/data.yaml": "name: [\n"})
	if err := l.Reload(t.Context(), srcB); err == nil {
		t.Fatal("bad version accepted")
	}
	if err := os.RemoveAll(dirB); err != nil {
		t.Fatal(err)
	}
	if err := l.Reload(t.Context(), srcB); err != nil {
		t.Fatal(err)
	}
	gen := engine.Current()
	if _, ok := gen.Revisions["b"]; ok {
		t.Errorf("revisions after removal: %v", gen.Revisions)
	}
	if tb, _ := gen.Facts.Read().Tenant("tb"); tb != nil {
		t.Error("the removed bundle's tenant is still served")
	}
	st := flush(t, l)
	if !st.Ready || bundleStatus(t, st, "b").State != StateRemoved {
		t.Errorf("status = %+v", st)
	}
}

func TestLintRulesRejectABundle(t *testing.T) {
	dir := t.TempDir()
	files := tenantBundle("ta", "a1", "  alice: {policies: [read]}\n")
	files[".manifest"] = `{"revision": "a1", "roots": ["verdict/tenants/ta", "verdict/lint"]}`
	files["verdict/lint/lint.rego"] = `package verdict.lint

# No statement may grant finmars:* outside the admin role.
deny contains {"message": sprintf("tenant %s: policy %s grants finmars:* outside the admin role", [code, name]), "entry": sprintf("access_policies.%s", [name])} if {
	some code, t in input.tenants
	some name, p in t.access_policies
	some s in p.Statement
	s.Action[_] == "finmars:*"
	not admin_policy(t, name)
}

admin_policy(t, name) if name in t.roles.admin.policies
`
	testfiles.Write(t, dir, files)
	l, engine := newTestLoader(t)
	src := Source{Name: "a", Location: dir}
	if _, err := l.LoadAll(t.Context(), []Source{src}); err != nil {
		t.Fatal(err)
	}
	good := engine.Current()
	testfiles.Write(t, dir, map[string]string{"verdict/tenants/ta/data.yaml": "name: ta\nmembers:\n  alice: {policies: [all]}\n" +
		"access_policies:\n  all:\n    Statement:\n      - {Effect: Allow, Action: [\"finmars:*\"], Resource: \"*\"}\n"})
	err := l.Reload(t.Context(), src)
	if err == nil || !strings.Contains(err.Error(), "policy all grants finmars:* outside the admin role") {
		t.Fatalf("err = %v", err)
	}
	if engine.Current() != good {
		t.Fatal("a linted-out version was installed")
	}
	a := bundleStatus(t, flush(t, l), "a")
	if a.LastError == nil || a.LastError.Stage != "bundle-lint" {
		t.Errorf("last error = %+v", a.LastError)
	}
	// Granted through the admin role, the same statement passes.
	testfiles.Write(t, dir, map[string]string{"verdict/tenants/ta/data.yaml": "name: ta\nmembers:\n  alice: {roles: [admin]}\n" +
		"roles:\n  admin: {policies: [all]}\n" +
		"access_policies:\n  all:\n    Statement:\n      - {Effect: Allow, Action: [\"finmars:*\"], Resource: \"*\"}\n"})
	if err := l.Reload(t.Context(), src); err != nil {
		t.Fatal(err)
	}
	// Disabled, the lint processor lets anything through.
	if err := l.Pipeline().Disable("bundle-lint"); err != nil {
		t.Fatal(err)
	}
	testfiles.Write(t, dir, map[string]string{"verdict/tenants/ta/data.yaml": "name: ta\nmembers:\n  alice: {policies: [all]}\n" +
		"access_policies:\n  all:\n    Statement:\n      - {Effect: Allow, Action: [\"finmars:*\"], Resource: \"*\"}\n"})
	if err := l.Reload(t.Context(), src); err != nil {
		t.Fatalf("with bundle-lint disabled: %v", err)
	}
}

func TestRejectedBundleIsRetriedAfterAnotherChange(t *testing.T) {
	root := t.TempDir()
	cat, ten := filepath.Join(root, "catalog"), filepath.Join(root, "tenant")
	testfiles.Write(t, cat, map[string]string{
		".manifest":                 `{"revision": "c1", "roots": ["verdict/catalog"]}`,
		"verdict/catalog/data.yaml": "products: {P: {packages: {P1: {acl: {}}}}}\n",
	})
	testfiles.Write(t, ten, map[string]string{
		".manifest":                   `{"revision": "t1", "roots": ["verdict/tenants/x"]}`,
		"verdict/tenants/x/data.yaml": "name: x\napplications: {app: {package: P1}}\n",
	})
	l, _ := newTestLoader(t)
	srcC, srcT := Source{Name: "catalog", Location: cat}, Source{Name: "tenant", Location: ten}
	if _, err := l.LoadAll(t.Context(), []Source{srcC, srcT}); err != nil {
		t.Fatal(err)
	}
	// The tenant moves to a package the catalog does not have yet: rejected.
	testfiles.Write(t, ten, map[string]string{"verdict/tenants/x/data.yaml": "name: x\napplications: {app: {package: P2}}\n"})
	if err := l.Reload(t.Context(), srcT); err == nil {
		t.Fatal("a dangling package was accepted")
	}
	// The catalog adds it: the tenant's rejected version now fits.
	testfiles.Write(t, cat, map[string]string{"verdict/catalog/data.yaml": "products: {P: {packages: {P1: {acl: {}}, P2: {acl: {}}}}}\n"})
	if err := l.Reload(t.Context(), srcC); err != nil {
		t.Fatal(err)
	}
	if st := flush(t, l); !st.Ready {
		t.Errorf("status after the catalog change: %+v", st)
	}
}

// signedTarball builds a bundle tarball, signed with key when it is not nil.
func signedTarball(t *testing.T, revision string, key *rsa.PrivateKey) []byte {
	t.Helper()
	roots := []string{"verdict/tenants/r"}
	b := bundle.Bundle{
		Manifest: bundle.Manifest{Revision: revision, Roots: &roots},
		Data: map[string]any{"verdict": map[string]any{"tenants": map[string]any{"r": map[string]any{
			"name": "r", "members": map[string]any{"m": map[string]any{}}}}}},
	}
	if key != nil {
		pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
		if err := b.GenerateSignature(bundle.NewSigningConfig(string(pemKey), "RS256", ""), "k1", false); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).Write(b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRemoteBundlePollsWithETagVerifiesAndPersists(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	// As the CLI does: keys.NewKeyConfig would stat the PEM text as a path.
	kc := &keys.Config{Key: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})), Algorithm: "RS256"}
	vc := bundle.NewVerificationConfig(map[string]*bundle.KeyConfig{"k1": kc}, "k1", "", nil)

	var body atomic.Pointer[[]byte]
	var etag atomic.Value
	var full, notModified atomic.Int32
	set := func(b []byte, tag string) { body.Store(&b); etag.Store(tag) }
	set(signedTarball(t, "r1", key), `"r1"`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tag := etag.Load().(string)
		if r.Header.Get("If-None-Match") == tag {
			notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		full.Add(1)
		w.Header().Set("ETag", tag)
		w.Header().Set("Content-Type", "application/gzip")
		w.Write(*body.Load())
	}))
	defer srv.Close()

	stateDir := t.TempDir()
	src := Source{Name: "remote", Location: srv.URL + "/bundle.tar.gz", Verification: vc}
	l, engine := newTestLoader(t)
	r := NewRemote(l, src, RemoteOptions{StateDir: stateDir, Client: srv.Client()})
	ctx := t.Context()
	if err := r.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := engine.Current().Revisions["remote"]; got != "r1" {
		t.Fatalf("revision %q", got)
	}
	if err := r.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if full.Load() != 1 || notModified.Load() != 1 {
		t.Errorf("full downloads %d, 304s %d; want 1 and 1", full.Load(), notModified.Load())
	}
	// An unsigned version is rejected; r1 keeps serving.
	set(signedTarball(t, "r2", nil), `"r2"`)
	if err := r.Poll(ctx); err == nil {
		t.Fatal("an unsigned bundle was accepted")
	}
	if got := engine.Current().Revisions["remote"]; got != "r1" {
		t.Fatalf("revision after a rejected download %q", got)
	}
	if st := flush(t, l); st.Ready {
		t.Errorf("ready while the newest remote version is rejected: %+v", st)
	}
	// The server goes away: a download error does not affect readiness by
	// itself, and a restart serves the persisted copy without the network.
	set(signedTarball(t, "r3", key), `"r3"`)
	if err := r.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if err := r.Poll(ctx); !errors.As(err, new(*DownloadError)) {
		t.Errorf("poll of a closed server = %v", err)
	}
	st := flush(t, l)
	if rs := bundleStatus(t, st, "remote"); !st.Ready || rs.DownloadError == nil || rs.Revision != "r3" {
		t.Errorf("status after a download error: %+v", st)
	}

	l2, engine2 := newTestLoader(t)
	r2 := NewRemote(l2, src, RemoteOptions{StateDir: stateDir})
	restored, ok := r2.Restore()
	if !ok || restored.ETag != `"r3"` {
		t.Fatalf("restore = %v %q", ok, restored.ETag)
	}
	if _, err := l2.LoadAll(ctx, []Source{restored}); err != nil {
		t.Fatal(err)
	}
	if got := engine2.Current().Revisions["remote"]; got != "r3" {
		t.Errorf("restored revision %q", got)
	}
}
