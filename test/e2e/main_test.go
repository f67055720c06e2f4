// Package e2e tests the verdict binary from the outside: it builds
// cmd/verdict once, runs `verdict run` on a free loopback port and talks to
// it over HTTP, and runs `verdict check` and `verdict eval` as a user would.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/test/e2eutil"
)

var (
	// binary is the verdict binary TestMain built.
	binary string
	// demoBundle is the repository's demo bundle directory.
	demoBundle string

	sharedMu     sync.Mutex
	sharedServer *server
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "verdict-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if binary, err = e2eutil.BuildVerdict(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if demoBundle, err = filepath.Abs(filepath.Join("..", "..", "bundles", "demo")); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	code := m.Run()
	sharedMu.Lock()
	if sharedServer != nil {
		sharedServer.Stop()
	}
	sharedMu.Unlock()
	return code
}

// server is a running `verdict run` (see e2eutil.Server).
type server struct{ *e2eutil.Server }

// startServer runs `verdict run` on a free 127.0.0.1 port with args and
// waits until /health/ready answers 200. It is stopped when the test ends.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	s, err := launch(args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// launch runs `verdict run` with args and waits until it is ready; the
// caller stops it.
func launch(args ...string) (*server, error) {
	s, err := e2eutil.Launch(binary, e2eutil.Options{WaitPath: "/health/ready"}, args...)
	if err != nil {
		return nil, err
	}
	return &server{s}, nil
}

// demo returns the server that serves the demo bundle from the repository,
// shared by the tests and stopped by TestMain.
func demo(t *testing.T) *server {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if sharedServer == nil {
		s, err := launch("--bundle", demoBundle)
		if err != nil {
			t.Fatal(err)
		}
		sharedServer = s
	}
	return sharedServer
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// response is an HTTP answer with its body read.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (s *server) do(t *testing.T, method, path, contentType string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v\nserver log:\n%s", method, path, err, s.Out.String())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (s *server) post(t *testing.T, path, body string) response {
	t.Helper()
	return s.do(t, http.MethodPost, path, "application/json", strings.NewReader(body))
}

// Decision is the JSON answer of POST /v1/decide (README "HTTP API").
type Decision struct {
	DecisionID string            `json:"decision_id"`
	Allow      bool              `json:"allow"`
	Status     int               `json:"status"`
	Tenant     string            `json:"tenant"`
	Action     string            `json:"action"`
	Visibility string            `json:"visibility"`
	Fields     []string          `json:"fields"`
	Reasons    []Reason          `json:"reasons"`
	Revision   map[string]string `json:"revision"`
}

// Reason is one ground of a decision.
type Reason struct {
	Layer         string `json:"layer"`
	Code          string `json:"code"`
	Effect        string `json:"effect"`
	Message       string `json:"message"`
	Policy        string `json:"policy"`
	Statement     *int   `json:"statement"`
	ResourceGroup string `json:"resource_group"`
	SoajsCode     int    `json:"soajs_code"`
}

func (d *Decision) codes() []string {
	out := make([]string, len(d.Reasons))
	for i, r := range d.Reasons {
		out[i] = r.Code
	}
	return out
}

func (d *Decision) reason(code string) *Reason {
	for i := range d.Reasons {
		if d.Reasons[i].Code == code {
			return &d.Reasons[i]
		}
	}
	return nil
}

// decide posts a decision request and decodes the decision; HTTP must
// answer 200 for every decision made.
func (s *server) decide(t *testing.T, body string) *Decision {
	t.Helper()
	resp := s.post(t, "/v1/decide", body)
	if resp.status != http.StatusOK {
		t.Fatalf("POST /v1/decide %s: HTTP %d: %s", body, resp.status, resp.body)
	}
	if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var d Decision
	dec := json.NewDecoder(bytes.NewReader(resp.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("decode decision %s: %v", resp.body, err)
	}
	return &d
}

// result is a finished CLI run.
type result struct {
	code           int
	stdout, stderr string
}

// verdict runs the binary with args and stdin and waits at most 30 s.
func verdict(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	default:
		t.Fatalf("verdict %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("verdict %s did not finish within 30 s", strings.Join(args, " "))
	}
	return res
}
