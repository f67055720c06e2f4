// Package e2eutil holds what the end-to-end test packages share: building
// the verdict binary once per package, a buffer that a child process and
// the test can use at the same time, and a running `verdict run`.
package e2eutil

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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

// Server is a running `verdict run` on a loopback port.
type Server struct {
	Addr    string
	URL     string
	Cmd     *exec.Cmd
	Out     *SyncBuffer // the process's stdout and stderr
	Done    chan struct{}
	WaitErr error // set when Done is closed
}

var healthClient = &http.Client{Timeout: 10 * time.Second}

// Start runs `binary run --addr <free port>` with args, stops it when the
// test ends, and waits until /health answers (not /health/ready: a watched
// server may start unready). A port taken between choosing and binding it
// is retried.
func Start(t testing.TB, binary string, args ...string) *Server {
	t.Helper()
	for attempt := 0; attempt < 3; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		s := &Server{Addr: addr, URL: "http://" + addr, Out: &SyncBuffer{}, Done: make(chan struct{})}
		s.Cmd = exec.Command(binary, append([]string{"run", "--addr", addr}, args...)...)
		s.Cmd.Stdout, s.Cmd.Stderr = s.Out, s.Out
		if err := s.Cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { s.WaitErr = s.Cmd.Wait(); close(s.Done) }()
		t.Cleanup(s.Stop)
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-s.Done:
				deadline = time.Time{}
				continue
			default:
			}
			if resp, err := healthClient.Get(s.URL + "/health"); err == nil {
				resp.Body.Close()
				return s
			}
			time.Sleep(20 * time.Millisecond)
		}
		s.Stop()
		if !strings.Contains(s.Out.String(), "address already in use") {
			t.Fatalf("verdict run did not come up:\n%s", s.Out.String())
		}
	}
	t.Fatal("no free port")
	return nil
}

// Stop sends SIGTERM and waits for the process to end, killing it after
// 15 s.
func (s *Server) Stop() {
	select {
	case <-s.Done:
		return
	default:
	}
	s.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.Done:
	case <-time.After(15 * time.Second):
		s.Cmd.Process.Kill()
		<-s.Done
	}
}
