package loader

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// symlink makes the symlink name (a slash path under dir) pointing to target.
func symlink(t *testing.T, dir, name, target string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// TestEditorFilesLeaveABundleAsItIs: what editors write beside the files
// they edit — Emacs's lock (a dangling symlink, .#data.yaml), auto-save and
// backup files, Vim's swap files and write probe, JetBrains' safe-write
// copies — is not part of the bundle: it reads as without them (same
// digest) and a reload keeps it ready. .#conditions.rego would otherwise be
// read as a module.
func TestEditorFilesLeaveABundleAsItIs(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, tenantBundle("bank", "r1", "  alice: {policies: [read]}\n"))
	src := Source{Name: "bank", Location: dir}
	clean, err := Read(src)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := newTestLoader(t)
	if _, err := l.LoadAll(context.Background(), []Source{src}); err != nil {
		t.Fatal(err)
	}

	bank := "verdict/tenants/bank/"
	symlink(t, dir, bank+".#data.yaml", "alice@host.4242:1700000000")
	symlink(t, dir, bank+".#conditions.rego", "alice@host.4242:1700000000")
	symlink(t, dir, ".#.manifest", "alice@host.4242:1700000000")
	writeFiles(t, dir, map[string]string{
		bank + ".#lint.rego":                 "alice@host.4242:1700000000", // the lock where symlinks are not supported
		bank + "#data.yaml#":                 "name: [",
		bank + "data.yaml~":                  "name: [",
		bank + ".data.yaml.swp":              "b0VIM 9.0\x00\x00\x00",
		bank + ".data.yaml.swo":              "b0VIM 9.0\x00\x00\x00",
		bank + "4913":                        "",
		bank + "data.yaml___jb_tmp___":       "name: [",
		bank + "conditions.rego___jb_old___": "package [",
	})
	b, err := Read(src)
	if err != nil {
		t.Fatalf("with editor files: %v", err)
	}
	if b.Digest != clean.Digest || b.Revision != "r1" || b.Doc.Tenants["bank"] == nil {
		t.Errorf("with editor files: revision %q, digest %s (without them %s)", b.Revision, b.Digest, clean.Digest)
	}
	if err := l.Reload(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	if st := flush(t, l); !st.Ready || bundleStatus(t, st, "bank").State != StateOK {
		t.Errorf("status with editor files: %+v", st)
	}

	// Files that merely look alike are read.
	writeFiles(t, dir, map[string]string{bank + "x#.rego": "package [", bank + "swp.rego": "package ["})
	if _, err := Read(src); err == nil || !strings.Contains(err.Error(), "x#.rego") && !strings.Contains(err.Error(), "swp.rego") {
		t.Errorf("x#.rego and swp.rego are modules: err = %v", err)
	}
}
