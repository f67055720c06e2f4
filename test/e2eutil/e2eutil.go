// Package e2eutil holds what the end-to-end test packages share: building
// the verdict binary once per package, a buffer that a child process and
// the test can use at the same time, and a running `verdict run`.
package e2eutil

import (
	"bytes"
	"fmt"
	"io"
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

	"github.com/verdict-authz/verdict/internal/testfiles"
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

// RunMain is TestMain's body for an end-to-end package: it builds
// cmd/verdict into a temporary directory, points *binary at it, runs the
// tests, then the cleanups in order, and removes the directory. It returns
// the exit code.
func RunMain(m *testing.M, binary *string, cleanups ...func()) int {
	dir, err := os.MkdirTemp("", "verdict-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if *binary, err = BuildVerdict(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	for _, c := range cleanups {
		c()
	}
	return code
}

// WriteFiles writes files (slash-separated path → content) under a new
// directory "bundle" of the test's temporary directory and returns it.
func WriteFiles(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bundle")
	testfiles.Write(t, dir, files)
	return dir
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

// Reset empties the buffer.
func (b *SyncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
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

// Options say how Launch starts and waits for a server.
type Options struct {
	// Env is the process's environment; nil inherits the test's.
	Env []string
	// WaitPath is the path that must answer 200 before Launch returns
	// (default /health: a watched server may start unready).
	WaitPath string
	// Timeout bounds the wait (default 15 s).
	Timeout time.Duration
}

var probeClient = &http.Client{Timeout: time.Second}

// FreeAddr returns a loopback address whose port was free a moment ago.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// LaunchAt runs `binary run --addr addr args…` without waiting for it.
// The caller stops it.
func LaunchAt(binary, addr string, env []string, args ...string) (*Server, error) {
	cmd := exec.Command(binary, append([]string{"run", "--addr", addr}, args...)...)
	cmd.Env = env
	return StartCmd(cmd, addr)
}

// StartCmd starts cmd, a `verdict run` set up by the caller (arguments,
// environment, credentials) that will serve on addr, without waiting for
// it. Its output goes to the Server's Out. The caller stops it.
func StartCmd(cmd *exec.Cmd, addr string) (*Server, error) {
	s := &Server{Addr: addr, URL: "http://" + addr, Out: &SyncBuffer{}, Done: make(chan struct{}), Cmd: cmd}
	s.Cmd.Stdout, s.Cmd.Stderr = s.Out, s.Out
	if err := s.Cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.WaitErr = s.Cmd.Wait(); close(s.Done) }()
	return s, nil
}

// Launch runs `binary run --addr <free port> args…` and waits until
// o.WaitPath answers 200. A port taken between choosing and binding it is
// retried. The caller stops the server.
func Launch(binary string, o Options, args ...string) (*Server, error) {
	if o.WaitPath == "" {
		o.WaitPath = "/health"
	}
	if o.Timeout == 0 {
		o.Timeout = 15 * time.Second
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var addr string
		if addr, err = FreeAddr(); err != nil {
			return nil, err
		}
		var s *Server
		if s, err = LaunchAt(binary, addr, o.Env, args...); err != nil {
			return nil, err
		}
		if err = s.Wait(o.WaitPath, o.Timeout); err == nil {
			return s, nil
		}
		s.Stop()
		if !strings.Contains(s.Out.String(), "address already in use") {
			return nil, err
		}
	}
	return nil, err
}

// Start is Launch for a test: it fails the test when the server does not
// come up and stops the server when the test ends.
func Start(t testing.TB, binary string, args ...string) *Server {
	t.Helper()
	s, err := Launch(binary, Options{}, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Wait polls path until it answers 200, the process exits or timeout
// passes.
func (s *Server) Wait(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.Done:
			return fmt.Errorf("verdict run exited (%v) before %s answered 200:\n%s", s.WaitErr, path, s.Out.String())
		default:
		}
		if resp, err := probeClient.Get(s.URL + path); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("verdict run: %s did not answer 200 within %v:\n%s", path, timeout, s.Out.String())
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

// Kill ends the process with SIGKILL, as kill -9 does, and waits for it.
func (s *Server) Kill() error {
	s.Cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-s.Done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("verdict run did not die of SIGKILL")
	}
}
