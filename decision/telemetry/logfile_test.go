package telemetry

import (
	"os"
	"path/filepath"
	"testing"
)

// Reopen follows logrotate's convention: after the file is renamed, the
// writes before Reopen go to the renamed file and the writes after it to a
// new file under the path.
func TestLogFileReopensByPath(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.log")
	f, err := OpenDecisionLogDestination(path)
	if err != nil {
		t.Fatal(err)
	}
	write := func(s string) {
		t.Helper()
		if _, err := f.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	write("one\n")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	write("two\n") // still the open file, now named .1
	if err := f.Reopen(); err != nil {
		t.Fatal(err)
	}
	write("three\n")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{path + ".1": "one\ntwo\n", path: "three\n"} {
		if got, err := os.ReadFile(name); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", filepath.Base(name), got, err, want)
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the new file: %v, %v", fi, err)
	}
	// After Close, writes fail and Reopen opens nothing.
	if _, err := f.Write([]byte("late\n")); err == nil {
		t.Error("a write after Close succeeded")
	}
	os.Remove(path)
	if err := f.Reopen(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("Reopen after Close created the file (%v)", err)
	}

	// A path that cannot be opened keeps the old file in use.
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	g, err := OpenDecisionLogDestination(filepath.Join(sub, "d.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := os.Rename(sub, sub+".gone"); err != nil {
		t.Fatal(err)
	}
	if err := g.Reopen(); err == nil {
		t.Error("reopening in a missing directory succeeded")
	}
	if _, err := g.Write([]byte("kept\n")); err != nil {
		t.Errorf("the old file is no longer written: %v", err)
	}
	// Standard output is never reopened.
	out, err := OpenDecisionLogDestination("-")
	if err != nil || out.Reopen() != nil || out.Path() != "" {
		t.Errorf("stdout: %v", err)
	}
}
