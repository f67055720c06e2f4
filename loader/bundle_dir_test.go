package loader

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/internal/testfiles"
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
	testfiles.Write(t, dir, tenantBundle("bank", "r1", "  alice: {policies: [read]}\n"))
	src := Source{Name: "bank", Location: dir}
	clean, err := Read(src)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := newTestLoader(t)
	if _, err := l.LoadAll(t.Context(), []Source{src}); err != nil {
		t.Fatal(err)
	}

	bank := "verdict/tenants/bank/"
	symlink(t, dir, bank+".#data.yaml", "alice@host.4242:1700000000")
	symlink(t, dir, bank+".#conditions.rego", "alice@host.4242:1700000000")
	symlink(t, dir, ".#.manifest", "alice@host.4242:1700000000")
	testfiles.Write(t, dir, map[string]string{
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
	if err := l.Reload(t.Context(), src); err != nil {
		t.Fatal(err)
	}
	if st := flush(t, l); !st.Ready || bundleStatus(t, st, "bank").State != StateOK {
		t.Errorf("status with editor files: %+v", st)
	}

	// Files that merely look alike are read.
	testfiles.Write(t, dir, map[string]string{bank + "x#.rego": "package [", bank + "swp.rego": "package ["})
	if _, err := Read(src); err == nil || !strings.Contains(err.Error(), "x#.rego") && !strings.Contains(err.Error(), "swp.rego") {
		t.Errorf("x#.rego and swp.rego are modules: err = %v", err)
	}
}

// TestBrokenLinksStillFailABundle: a dangling symlink that is not an
// editor's fails the bundle with a message naming it — whether its name is
// a data file's or not, since it may stand for a directory of data (a
// tenant shared from elsewhere that is not there).
func TestBrokenLinksStillFailABundle(t *testing.T) {
	for _, tc := range []struct{ link, want string }{
		{"verdict/tenants/bank/data.yaml", "read failed on verdict/tenants/bank/data.yaml: a symlink to ../elsewhere.yaml, which does not exist"},
		{"verdict/tenants/shared", "read failed on verdict/tenants/shared: a symlink to ../elsewhere.yaml, which does not exist"},
	} {
		dir := t.TempDir()
		testfiles.Write(t, dir, tenantBundle("bank", "r1", "  alice: {}\n"))
		os.Remove(filepath.Join(dir, filepath.FromSlash(tc.link)))
		symlink(t, dir, tc.link, "../elsewhere.yaml")
		_, err := Read(Source{Name: "b", Location: dir})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.link, err, tc.want)
		}
	}
}

// TestSymlinkedDirectoryIsReadAsADirectory: a directory of a bundle that is
// a symlink to a directory elsewhere (a tenant shared between bundles) is
// read as if it were there, with the same paths: the same digest as a copy,
// and problems named with the path in the bundle.
func TestSymlinkedDirectoryIsReadAsADirectory(t *testing.T) {
	root := t.TempDir()
	manifest := map[string]string{".manifest": `{"revision": "r1", "roots": ["verdict/tenants"]}`}
	bankFiles := map[string]string{
		"data.yaml": "name: Bank\nmembers:\n  alice: {policies: [read]}\n" +
			"access_policies:\n  read:\n    Statement:\n      - {Effect: Allow, Action: [\"finmars:Portfolio:list\"], Resource: \"*\"}\n",
		"ext/ext.rego": "package verdict.tenants.bank.ext\n\nx := 1\n",
	}
	acme := tenantBundle("acme", "r1", "  bob: {}\n")
	delete(acme, ".manifest")

	copied := filepath.Join(root, "copied")
	testfiles.Write(t, copied, manifest)
	testfiles.Write(t, copied, acme)
	for name, content := range bankFiles {
		testfiles.Write(t, copied, map[string]string{"verdict/tenants/bank/" + name: content})
	}
	want, err := Read(Source{Name: "b", Location: copied})
	if err != nil {
		t.Fatal(err)
	}

	shared := filepath.Join(root, "shared", "bank")
	testfiles.Write(t, shared, bankFiles)
	for i, target := range []string{shared, "../../../shared/bank"} { // relative to verdict/tenants
		linked := filepath.Join(root, fmt.Sprintf("linked%d", i))
		testfiles.Write(t, linked, manifest)
		testfiles.Write(t, linked, acme)
		symlink(t, linked, "verdict/tenants/bank", target)
		b, err := Read(Source{Name: "b", Location: linked})
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		if b.Digest != want.Digest || b.Doc.Tenants["bank"] == nil || b.Doc.Tenants["acme"] == nil || b.Modules["b/verdict/tenants/bank/ext/ext.rego"] == nil {
			t.Errorf("%s: tenants %v, modules %v, digest %s (a copy: %s)", target, b.Doc.Tenants, b.Modules, b.Digest, want.Digest)
		}
	}

	// A problem in the linked directory names the file by its bundle path.
	testfiles.Write(t, shared, map[string]string{"data.yaml": "name: Bank\nmembers:\n  alice: {policies: [missing]}\n"})
	_, err = Read(Source{Name: "b", Location: filepath.Join(root, "linked1")})
	if err == nil || !strings.Contains(err.Error(), "verdict/tenants/bank/data.yaml: members.alice.policies[0]") {
		t.Errorf("a problem in the linked directory: %v", err)
	}
}

// TestSymlinkToAnEnclosingDirectoryIsAnError: a symlink that would make the
// walk go round forever fails the bundle, naming it.
func TestSymlinkToAnEnclosingDirectoryIsAnError(t *testing.T) {
	dir := t.TempDir()
	testfiles.Write(t, dir, tenantBundle("bank", "r1", "  alice: {}\n"))
	symlink(t, dir, "verdict/tenants/bank/again", "../..")
	_, err := Read(Source{Name: "b", Location: dir})
	if err == nil || !strings.Contains(err.Error(), "read failed on verdict/tenants/bank/again: a symlink to ") ||
		!strings.Contains(err.Error(), "a directory that encloses it") {
		t.Errorf("err = %v", err)
	}
}
