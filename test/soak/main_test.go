// Package soak tests the built verdict binary from the outside, on
// loopback only: the server limits (header size, read timeouts), graceful
// shutdown with requests in flight, and a bounded soak of `verdict run
// --watch` whose bundle is rewritten every 200 ms (valid versions A and B
// alternating with invalid ones) under paced load, checking every answer
// and that memory stays flat. The soak runs about 12 s by default and about
// 2 minutes with VERDICT_SOAK=long (see RESULTS.md). Every wait is bounded.
package soak

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/test/e2eutil"
)

var binary string

func TestMain(m *testing.M) { os.Exit(e2eutil.RunMain(m, &binary)) }

// server is a running `verdict run` (see e2eutil.Server).
type server struct{ *e2eutil.Server }

// start runs `verdict run` with args on a free loopback port and waits until
// /health answers (not /health/ready: a watched server may start unready).
func start(t *testing.T, args ...string) *server { return &server{e2eutil.Start(t, binary, args...)} }

var client = &http.Client{Timeout: 10 * time.Second}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
