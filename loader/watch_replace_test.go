package loader

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/internal/testfiles"
)

// watchTimeout bounds every wait for the watcher: generous, since a loaded CI
// machine can be slow, while a watcher that lost a directory never catches up.
const watchTimeout = 10 * time.Second

// startWatcher loads src and runs a Watcher on it until the test ends.
func startWatcher(t *testing.T, src Source) (*Loader, *decision.Engine, *Watcher) {
	t.Helper()
	l, engine := newTestLoader(t)
	if _, err := l.LoadAll(context.Background(), []Source{src}); err != nil {
		t.Fatal(err)
	}
	w, err := NewWatcher(l, []Source{src}, WatchOptions{Debounce: 20 * time.Millisecond, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return l, engine, w
}

// waitFor polls cond until it holds, failing the test after watchTimeout
// with cond's description of what it saw last.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(watchTimeout)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: still waiting for %s; last seen: %s", watchTimeout, what, saw)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// serves reports whether the served generation has the revision (when not
// empty) and tenant ta's member.
func serves(engine *decision.Engine, revision, member string) func() (bool, string) {
	return func() (bool, string) {
		g := engine.Current()
		if g == nil {
			return false, "no generation"
		}
		m, _ := g.Facts.Read().Member("ta", member)
		ok := m != nil && (revision == "" || g.Revisions["b"] == revision)
		return ok, fmt.Sprintf("generation %d revisions %v, member %s present: %v", g.Number, g.Revisions, member, m != nil)
	}
}

func inState(l *Loader, state string) func() (bool, string) {
	return func() (bool, string) {
		for _, b := range l.Status().Bundles {
			if b.Name == "b" {
				return b.State == state, fmt.Sprintf("state %s, last error %+v", b.State, b.LastError)
			}
		}
		return false, "no bundle b in the status"
	}
}

func members(names ...string) string {
	var s strings.Builder
	for _, n := range names {
		s.WriteString("  " + n + ": {policies: [read]}\n")
	}
	return s.String()
}

// replaceDir puts a directory holding files at dir in place of the one there,
// in quick succession, the way a deploy script does: by renaming the old one
// away and a new one (written beforehand in spare) in, or by removing the old
// tree and writing the new one (rm -rf + cp -r).
func replaceDir(t *testing.T, how, dir, spare string, files map[string]string) {
	t.Helper()
	switch how {
	case "rename":
		testfiles.Write(t, spare, files)
		if err := os.Rename(dir, spare+".old"); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(spare, dir); err != nil {
			t.Fatal(err)
		}
	case "remove":
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		testfiles.Write(t, dir, files)
	default:
		t.Fatalf("replace how? %s", how)
	}
}

// TestWatchFollowsAReplacedDirectory replaces a watched directory (a tenant
// directory inside the bundle, the directory holding it, or the bundle root)
// by rename-swap and by remove-and-recreate, twice each, and checks after
// each swap that an edit of the new directory's files is seen: a broken file
// is reported as a failed reload and its fix is served.
func TestWatchFollowsAReplacedDirectory(t *testing.T) {
	for _, how := range []string{"rename", "remove"} {
		for _, which := range []string{"verdict/tenants/ta", "verdict", "."} {
			t.Run(how+" "+which, func(t *testing.T) {
				root := t.TempDir()
				dir := filepath.Join(root, "b")
				testfiles.Write(t, dir, tenantBundle("ta", "r0", members("alice")))
				l, engine, _ := startWatcher(t, Source{Name: "b", Location: dir})
				target := filepath.Join(dir, filepath.FromSlash(which))
				for round := 1; round <= 2; round++ {
					revision := fmt.Sprintf("r%d", round)
					swapped := fmt.Sprintf("swapped%d", round)
					// The new directory's files, relative to target.
					files := map[string]string{}
					for name, content := range tenantBundle("ta", revision, members("alice", swapped)) {
						rel, err := filepath.Rel(filepath.FromSlash(which), filepath.FromSlash(name))
						if err != nil || strings.HasPrefix(rel, "..") {
							continue
						}
						files[filepath.ToSlash(rel)] = content
					}
					wantRevision := revision
					if _, ok := files[".manifest"]; !ok {
						wantRevision = "" // the manifest stays
					}
					replaceDir(t, how, target, filepath.Join(root, fmt.Sprintf("spare%d", round)), files)
					waitFor(t, fmt.Sprintf("round %d: the replaced directory is served", round), serves(engine, wantRevision, swapped))
					waitFor(t, fmt.Sprintf("round %d: the swap is accepted", round), inState(l, StateOK))

					// Edits of the new directory's files must be seen.
					data := filepath.Join(dir, "verdict", "tenants", "ta", "data.yaml")
					if err := os.WriteFile(data, []byte("name: ta\nmembers:\n  alice: {policies: [read\n"), 0o644); err != nil {
						t.Fatal(err)
					}
					waitFor(t, fmt.Sprintf("round %d: the broken data.yaml is reported", round), inState(l, StateFailed))
					fixed := fmt.Sprintf("fixed%d", round)
					testfiles.Write(t, dir, map[string]string{"verdict/tenants/ta/data.yaml": tenantBundle("ta", "", members("alice", fixed))["verdict/tenants/ta/data.yaml"]})
					waitFor(t, fmt.Sprintf("round %d: the fix is served", round), serves(engine, "", fixed))
					waitFor(t, fmt.Sprintf("round %d: the bundle is ok again", round), inState(l, StateOK))
				}
			})
		}
	}
}

func TestWalkDirsFollowsSymlinkedDirectories(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "b")
	testfiles.Write(t, dir, map[string]string{"verdict/tenants/tb/data.yaml": "", "verdict/file": ""})
	testfiles.Write(t, root, map[string]string{"shared/ta/sub/data.yaml": "", "k8s/..2024/x": ""})
	for link, target := range map[string]string{
		"b/verdict/tenants/ta":  "../../../shared/ta", // relative, to a directory outside the bundle
		"b/verdict/tenants/ta2": filepath.Join(root, "shared", "ta"),
		"b/verdict/loop":        "..", // encloses it
		"b/verdict/dangling":    "nowhere",
		"b/verdict/file-link":   "file",
		"b/..data":              filepath.Join(root, "k8s", "..2024"),
	} {
		if err := os.Symlink(target, filepath.Join(root, filepath.FromSlash(link))); err != nil {
			t.Fatal(err)
		}
	}
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range walkDirs(filepath.Join(real, "b"), true) {
		rel, _ := filepath.Rel(real, d.path)
		got = append(got, filepath.ToSlash(rel))
		if !d.info.IsDir() {
			t.Errorf("%s: not a directory's info", rel)
		}
	}
	slices.Sort(got)
	want := []string{"b", "b/verdict", "b/verdict/tenants", "b/verdict/tenants/tb", "shared/ta", "shared/ta/sub"}
	if !slices.Equal(got, want) {
		t.Errorf("walkDirs = %q, want %q", got, want)
	}
}

// TestWatchFollowsASymlinkedSubdirectory edits the files of a tenant
// directory that is a symlink to a directory outside the bundle, replaces
// that directory, and points the symlink elsewhere.
func TestWatchFollowsASymlinkedSubdirectory(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "b")
	testfiles.Write(t, dir, tenantBundle("ta", "r0", members("alice")))
	tenant := filepath.Join(dir, "verdict", "tenants", "ta")
	shared := filepath.Join(root, "shared")
	if err := os.Rename(tenant, shared); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(shared, tenant); err != nil {
		t.Fatal(err)
	}
	src := Source{Name: "b", Location: dir}
	if _, err := Read(src); err != nil {
		t.Skipf("the bundle reader does not read a symlinked directory: %v", err)
	}
	l, engine, _ := startWatcher(t, src)
	edit := func(step, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(data, "data.yaml"), []byte("name: ta\nmembers:\n  alice: {policies: [read\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		waitFor(t, step+": the broken data.yaml is reported", inState(l, StateFailed))
		testfiles.Write(t, data, map[string]string{"data.yaml": tenantBundle("ta", "", members("alice", step))["verdict/tenants/ta/data.yaml"]})
		waitFor(t, step+": the fix is served", serves(engine, "", step))
		waitFor(t, step+": the bundle is ok again", inState(l, StateOK))
	}
	edit("target", shared)

	files := map[string]string{"data.yaml": tenantBundle("ta", "", members("alice", "swapped"))["verdict/tenants/ta/data.yaml"]}
	replaceDir(t, "rename", shared, filepath.Join(root, "spare"), files)
	waitFor(t, "the replaced target is served", serves(engine, "", "swapped"))
	edit("replaced", shared)

	other := filepath.Join(root, "other")
	testfiles.Write(t, other, map[string]string{"data.yaml": tenantBundle("ta", "", members("alice", "retargeted"))["verdict/tenants/ta/data.yaml"]})
	if err := os.Symlink(other, tenant+".new"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tenant+".new", tenant); err != nil { // ln -sfn
		t.Fatal(err)
	}
	waitFor(t, "the new target is served", serves(engine, "", "retargeted"))
	edit("retargeted", other)
}
