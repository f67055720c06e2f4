// Package soak tests the built verdict binary from the outside, on
// loopback only: the server limits (header size, read timeouts), graceful
// shutdown with requests in flight, and a bounded soak of `verdict run
// --watch` whose bundle is rewritten every 200 ms (valid versions A and B
// alternating with invalid ones) under paced load, checking every answer
// and that memory stays flat. The soak runs about 12 s by default and about
// 2 minutes with VERDICT_SOAK=long (see RESULTS.md). Every wait is bounded.
package soak

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/test/e2eutil"
)

var binary string

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "verdict-soak-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if binary, err = e2eutil.BuildVerdict(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// syncBuffer collects a child process's output for the test to read.
type syncBuffer = e2eutil.SyncBuffer

// server is a running `verdict run`.
type server struct {
	addr    string
	url     string
	cmd     *exec.Cmd
	out     *syncBuffer
	done    chan struct{}
	waitErr error
}

// start runs `verdict run` with args on a free loopback port and waits until
// /health answers.
func start(t *testing.T, args ...string) *server {
	t.Helper()
	for attempt := 0; attempt < 3; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		s := &server{addr: addr, url: "http://" + addr, out: &syncBuffer{}, done: make(chan struct{})}
		s.cmd = exec.Command(binary, append([]string{"run", "--addr", addr}, args...)...)
		s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
		if err := s.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { s.waitErr = s.cmd.Wait(); close(s.done) }()
		t.Cleanup(s.stop)
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-s.done:
				deadline = time.Time{}
				continue
			default:
			}
			if resp, err := client.Get(s.url + "/health"); err == nil {
				resp.Body.Close()
				return s
			}
			time.Sleep(20 * time.Millisecond)
		}
		s.stop()
		if !strings.Contains(s.out.String(), "address already in use") {
			t.Fatalf("verdict run did not come up:\n%s", s.out.String())
		}
	}
	t.Fatal("no free port")
	return nil
}

func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

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
