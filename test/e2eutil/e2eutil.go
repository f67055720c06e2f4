// Package e2eutil holds what the end-to-end test packages share: building
// the verdict binary once per package and a buffer that a child process and
// the test can use at the same time.
package e2eutil

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// BuildVerdict builds cmd/verdict into dir and returns the binary's path;
// the go tool's output goes to stderr.
func BuildVerdict(dir string) (string, error) {
	bin := filepath.Join(dir, "verdict")
	build := exec.Command("go", "build", "-o", bin, "github.com/verdict-authz/verdict/cmd/verdict")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("go build: %w", err)
	}
	return bin, nil
}

// SyncBuffer is a bytes.Buffer safe for a writer goroutine (a child
// process's output) and a reader (the test) at once.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
