//go:build unix

package loader

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/internal/testfiles"
)

// TestFifosInABundleDirectory: a fifo (or another file that is not a
// regular one) that OPA's reader would not read is left out — reading it
// would block the reload for ever — and one named as a bundle file fails
// the bundle, naming it.
func TestFifosInABundleDirectory(t *testing.T) {
	dir := t.TempDir()
	testfiles.Write(t, dir, tenantBundle("bank", "r1", "  alice: {}\n"))
	if err := syscall.Mkfifo(filepath.Join(dir, "verdict", "notes"), 0o644); err != nil {
		t.Skip("no fifo:", err)
	}
	if _, err := readWithin(t, Source{Name: "b", Location: dir}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "verdict", "data.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := readWithin(t, Source{Name: "b", Location: dir}, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "read failed on verdict/data.json: not a regular file") {
		t.Errorf("err = %v", err)
	}
}
