package e2ereload

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tenantYAML is a tenant whose member alice has the given policies; the
// policy read allows listing portfolios.
func tenantYAML(name, alicePolicies string) string {
	return fmt.Sprintf(`name: %s
members:
  alice: {policies: [%s]}
access_policies:
  read:
    Statement:
      - {Effect: Allow, Action: ["finmars:Portfolio:list"], Resource: "*"}
`, name, alicePolicies)
}

func listAs(tenant string) string {
	return `{"tenant":"` + tenant + `","member":"alice","action":"finmars:Portfolio:list"}`
}

func failures(st Status, bundle string) int {
	for _, b := range st.Bundles {
		if b.Name == bundle {
			return b.Failures
		}
	}
	return -1
}

// TestWatchFollowsFileEdits edits one watched bundle in each of the ways a
// bundle author does and checks that decisions, /v1/status and
// /health/ready follow.
func TestWatchFollowsFileEdits(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "live")
	acme := filepath.Join(dir, "verdict", "tenants", "acme", "data.yaml")
	writeFile(t, filepath.Join(dir, ".manifest"), `{"revision": "r1", "roots": ["verdict"]}`)
	writeFile(t, acme, tenantYAML("Acme", "read"))
	s := start(t, "--watch", "--bundle", "live="+dir)
	if code := s.ready(t); code != http.StatusOK {
		t.Fatalf("ready = %d", code)
	}
	expectDecision(t, s, "initial", listAs("acme"), true, "iam.allow")

	t.Run("in-place write", func(t *testing.T) {
		writeFile(t, acme, tenantYAML("Acme", ""))
		expectDecision(t, s, "alice loses her policy", listAs("acme"), false, "iam.no_allow")
	})
	t.Run("rename-replace", func(t *testing.T) {
		replaceByRename(t, acme, tenantYAML("Acme", "read"))
		expectDecision(t, s, "alice gets her policy back", listAs("acme"), true, "iam.allow")
	})
	t.Run("new subdirectory", func(t *testing.T) {
		expectDecision(t, s, "beta is unknown", listAs("beta"), false, "tenant.unknown")
		writeFile(t, filepath.Join(dir, "verdict", "tenants", "beta", "data.yaml"), tenantYAML("Beta", "read"))
		expectDecision(t, s, "beta appears", listAs("beta"), true, "iam.allow")
	})
	t.Run("manifest revision", func(t *testing.T) {
		replaceByRename(t, filepath.Join(dir, ".manifest"), `{"revision": "r2", "roots": ["verdict"]}`)
		eventually(t, s, "revision r2", func() (bool, string) {
			d, err := decide(s, listAs("acme"))
			return err == nil && d.Revision["live"] == "r2", fmt.Sprint(d.Revision, err)
		})
	})
	// None of the writes above may have shown a transient error.
	if n := failures(s.status(t), "live"); n != 0 {
		t.Fatalf("%d failures recorded while editing valid files:\n%s", n, s.Out.String())
	}
	beta := filepath.Join(dir, "verdict", "tenants", "beta", "data.yaml")
	t.Run("bad YAML", func(t *testing.T) {
		writeFile(t, beta, "name: Beta\nmembers:\n  alice: {policies: [read\n")
		eventually(t, s, "not ready", func() (bool, string) {
			code := s.ready(t)
			return code == http.StatusServiceUnavailable, fmt.Sprint(code)
		})
		st := s.status(t)
		b := st.Bundles[0]
		if st.Ready || b.State != "failed" || b.LastError == nil || b.LastError.File != "verdict/tenants/beta/data.yaml" || b.LastError.Line <= 0 || b.LastError.Message == "" {
			t.Fatalf("status = %+v (last error %+v)", st, b.LastError)
		}
		if b.Revision != "r2" {
			t.Errorf("served revision = %q, want r2 (the last good one)", b.Revision)
		}
		expectDecision(t, s, "the last good beta keeps serving", listAs("beta"), true, "iam.allow")
	})
	t.Run("fixed", func(t *testing.T) {
		writeFile(t, beta, tenantYAML("Beta", ""))
		eventually(t, s, "ready again", func() (bool, string) {
			code := s.ready(t)
			return code == http.StatusOK, fmt.Sprint(code)
		})
		expectDecision(t, s, "the fixed beta serves", listAs("beta"), false, "iam.no_allow")
	})
	t.Run("dangling reference", func(t *testing.T) {
		replaceByRename(t, acme, tenantYAML("Acme", "read, no-such-policy"))
		eventually(t, s, "not ready", func() (bool, string) {
			code := s.ready(t)
			return code == http.StatusServiceUnavailable, fmt.Sprint(code)
		})
		le := s.status(t).Bundles[0].LastError
		if le == nil || le.File != "verdict/tenants/acme/data.yaml" || len(le.Problems) != 1 ||
			!strings.Contains(le.Problems[0].Entry, "members.alice.policies") || !strings.Contains(le.Message, "no-such-policy") {
			t.Fatalf("last error = %+v", le)
		}
		expectDecision(t, s, "acme keeps serving", listAs("acme"), true, "iam.allow")
		replaceByRename(t, acme, tenantYAML("Acme", "read"))
		eventually(t, s, "ready again", func() (bool, string) {
			code := s.ready(t)
			return code == http.StatusOK, fmt.Sprint(code)
		})
	})
	t.Run("delete", func(t *testing.T) {
		if err := os.RemoveAll(filepath.Dir(beta)); err != nil {
			t.Fatal(err)
		}
		expectDecision(t, s, "beta is gone", listAs("beta"), false, "tenant.unknown")
		expectDecision(t, s, "acme stays", listAs("acme"), true, "iam.allow")
	})
	t.Run("delete a failing bundle", func(t *testing.T) {
		writeFile(t, acme, "name: [\n")
		eventually(t, s, "not ready", func() (bool, string) {
			code := s.ready(t)
			return code == http.StatusServiceUnavailable, fmt.Sprint(code)
		})
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		eventually(t, s, "ready once the bad bundle is removed", func() (bool, string) {
			code := s.ready(t)
			return code == http.StatusOK, fmt.Sprint(code)
		})
		expectDecision(t, s, "acme is gone with its bundle", listAs("acme"), false, "tenant.unknown")
		if st := s.status(t); st.Bundles[0].State != "removed" {
			t.Errorf("state = %q", st.Bundles[0].State)
		}
		// The bundle comes back in one piece.
		writeFile(t, filepath.Join(dir, ".manifest"), `{"revision": "r3", "roots": ["verdict"]}`)
		writeFile(t, acme, tenantYAML("Acme", "read"))
		expectDecision(t, s, "acme is back", listAs("acme"), true, "iam.allow")
	})
	if !strings.Contains(s.Out.String(), "change rejected") || !strings.Contains(s.Out.String(), "duration=") {
		t.Errorf("reloads are not logged with outcome and duration:\n%s", s.Out.String())
	}
}

// configMapVersion writes one version of a bundle the way the kubelet
// publishes a ConfigMap volume: a hidden timestamped directory.
func configMapVersion(t *testing.T, dir, version, revision, alicePolicies string) {
	t.Helper()
	v := filepath.Join(dir, "..2026_"+version)
	writeFile(t, filepath.Join(v, ".manifest"), `{"revision": "`+revision+`", "roots": ["verdict"]}`)
	writeFile(t, filepath.Join(v, "verdict", "tenants", "acme", "data.yaml"), tenantYAML("Acme", alicePolicies))
}

// swapConfigMap points ..data at a version atomically, as the kubelet does:
// a new symlink renamed over the old one.
func swapConfigMap(t *testing.T, dir, version string) {
	t.Helper()
	tmp := filepath.Join(dir, "..data_tmp")
	os.Remove(tmp)
	if err := os.Symlink("..2026_"+version, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

// TestWatchFollowsConfigMapSymlinkSwaps serves a bundle laid out as a
// Kubernetes ConfigMap volume and swaps its ..data symlink.
func TestWatchFollowsConfigMapSymlinkSwaps(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cm")
	configMapVersion(t, dir, "01", "v1", "read")
	swapConfigMap(t, dir, "01")
	for _, name := range []string{".manifest", "verdict"} {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	s := start(t, "--watch", "--bundle", "cm="+dir)
	expectDecision(t, s, "v1", listAs("acme"), true, "iam.allow")

	configMapVersion(t, dir, "02", "v2", "")
	swapConfigMap(t, dir, "02")
	if err := os.RemoveAll(filepath.Join(dir, "..2026_01")); err != nil {
		t.Fatal(err)
	}
	expectDecision(t, s, "v2 after the swap", listAs("acme"), false, "iam.no_allow")

	configMapVersion(t, dir, "03", "v3", "read")
	swapConfigMap(t, dir, "03")
	os.RemoveAll(filepath.Join(dir, "..2026_02"))
	expectDecision(t, s, "v3 after a second swap", listAs("acme"), true, "iam.allow")
	d, err := decide(s, listAs("acme"))
	if err != nil || d.Revision["cm"] != "v3" {
		t.Fatalf("revision = %v, %v", d.Revision, err)
	}
	if st := s.status(t); !st.Ready || failures(st, "cm") != 0 {
		t.Errorf("status = %+v", st)
	}
}

// TestWatchFollowsASymlinkedBundleDirectory swaps the bundle location
// itself, a symlink to a release directory (`ln -sfn`).
func TestWatchFollowsASymlinkedBundleDirectory(t *testing.T) {
	root := t.TempDir()
	for _, rel := range []struct{ name, policies string }{{"rel1", "read"}, {"rel2", ""}} {
		d := filepath.Join(root, rel.name)
		writeFile(t, filepath.Join(d, ".manifest"), `{"revision": "`+rel.name+`", "roots": ["verdict"]}`)
		writeFile(t, filepath.Join(d, "verdict", "tenants", "acme", "data.yaml"), tenantYAML("Acme", rel.policies))
	}
	current := filepath.Join(root, "current")
	if err := os.Symlink("rel1", current); err != nil {
		t.Fatal(err)
	}
	s := start(t, "--watch", "--bundle", "app="+current)
	expectDecision(t, s, "rel1", listAs("acme"), true, "iam.allow")
	tmp := filepath.Join(root, "current.tmp")
	if err := os.Symlink("rel2", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, current); err != nil {
		t.Fatal(err)
	}
	expectDecision(t, s, "rel2", listAs("acme"), false, "iam.no_allow")
}

// TestWatchStartsUnreadyWithABadBundle: with --watch a bundle that is
// invalid at start leaves the server running, not ready, until it is fixed.
func TestWatchStartsUnreadyWithABadBundle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bad")
	writeFile(t, filepath.Join(dir, "verdict", "tenants", "acme", "data.yaml"), "name: [\n")
	s := start(t, "--watch", "--bundle", dir)
	if code := s.ready(t); code != http.StatusServiceUnavailable {
		t.Fatalf("ready = %d, want 503", code)
	}
	if st := s.status(t); len(st.Failing) != 1 || st.Bundles[0].LastError == nil || st.Bundles[0].LastError.Line <= 0 {
		t.Fatalf("status = %+v", st)
	}
	writeFile(t, filepath.Join(dir, "verdict", "tenants", "acme", "data.yaml"), tenantYAML("Acme", "read"))
	eventually(t, s, "ready once fixed", func() (bool, string) {
		code := s.ready(t)
		return code == http.StatusOK, fmt.Sprint(code)
	})
	expectDecision(t, s, "serving", listAs("acme"), true, "iam.allow")
	var procs struct {
		Processors []struct {
			Name    string
			Enabled bool
		}
	}
	if code := s.get(t, "/v1/processors", &procs); code != http.StatusOK || len(procs.Processors) < 5 {
		t.Errorf("GET /v1/processors: %d %+v", code, procs)
	}
}
