// Package e2eruntime tests run-time registration and delegation from the
// outside (README "Run-time registration and delegation"): it builds cmd/verdict,
// runs `verdict run --state-dir` on loopback ports, registers services,
// requests and consents to delegations over HTTP, restarts the process
// (gracefully and with kill -9) on the same state directory, and replays
// the Fineract CN provisioning flow of seed 000. Every wait is bounded.
package e2eruntime

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/test/e2eutil"
)

var (
	binary     string
	demoBundle string
)

func TestMain(m *testing.M) {
	var err error
	if demoBundle, err = filepath.Abs(filepath.Join("..", "..", "bundles", "demo")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(e2eutil.RunMain(m, &binary))
}

// server is a running `verdict run`, with the arguments to restart it and
// the admin token requests carry.
type server struct {
	*e2eutil.Server
	t     *testing.T
	args  []string
	token string
}

// start runs `verdict run --addr <free loopback port> args…` and waits until
// /health/ready answers 200 (at most 20 s). It is stopped when the test
// ends.
func start(t *testing.T, args ...string) *server {
	t.Helper()
	es, err := e2eutil.Launch(binary, e2eutil.Options{WaitPath: "/health/ready", Timeout: 20 * time.Second}, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(es.Stop)
	return &server{Server: es, t: t, args: args}
}

// startAt runs the server on addr without waiting.
func startAt(t *testing.T, addr string, args ...string) *server {
	t.Helper()
	es, err := e2eutil.LaunchAt(binary, addr, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(es.Stop)
	return &server{Server: es, t: t, args: args}
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := e2eutil.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// kill ends the server with SIGKILL, as kill -9 does.
func (s *server) kill() {
	if err := s.Kill(); err != nil {
		s.t.Fatal(err)
	}
}

// restart stops the server and starts the same command line again on a
// new port.
func (s *server) restart(t *testing.T) *server {
	t.Helper()
	s.Stop()
	n := start(t, s.args...)
	n.token = s.token
	return n
}

var httpClient = &http.Client{Timeout: 15 * time.Second}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// call sends a request; write endpoints get the server's admin token.
func (s *server) call(t *testing.T, method, path, body string) response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, s.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v\nserver log:\n%s", method, path, err, s.Out.String())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// must sends a request and fails the test unless it answers want.
func (s *server) must(t *testing.T, want int, method, path, body string) response {
	t.Helper()
	r := s.call(t, method, path, body)
	if r.status != want {
		t.Fatalf("%s %s %s: HTTP %d, want %d: %s", method, path, body, r.status, want, r.body)
	}
	return r
}

// Decision is the JSON answer of POST /v1/decide.
type Decision struct {
	DecisionID string `json:"decision_id"`
	Allow      bool   `json:"allow"`
	Status     int    `json:"status"`
	Action     string `json:"action"`
	Reasons    []struct {
		Layer   string `json:"layer"`
		Code    string `json:"code"`
		Effect  string `json:"effect"`
		Message string `json:"message"`
	} `json:"reasons"`
	Revision map[string]string `json:"revision"`
}

func (d *Decision) codes() []string {
	out := make([]string, len(d.Reasons))
	for i, r := range d.Reasons {
		out[i] = r.Code
	}
	return out
}

// ask is one decision question of a test.
type ask struct {
	tenant, member, application, method, path string
}

func (a ask) body() string {
	req := map[string]any{"tenant": a.tenant, "request": map[string]string{"method": a.method, "path": a.path}}
	if a.member != "" {
		req["member"] = a.member
	}
	if a.application != "" {
		req["application"] = a.application
	}
	b, _ := json.Marshal(req)
	return string(b)
}

func (s *server) decide(t *testing.T, a ask) *Decision {
	t.Helper()
	r := s.must(t, http.StatusOK, http.MethodPost, "/v1/decide", a.body())
	var d Decision
	r.decode(t, &d)
	return &d
}

// expect asks and checks the answer: allow or not, the status and the
// reason codes in order.
func (s *server) expect(t *testing.T, step string, a ask, allow bool, status int, codes ...string) *Decision {
	t.Helper()
	d := s.decide(t, a)
	if d.Allow != allow || d.Status != status || strings.Join(d.codes(), ",") != strings.Join(codes, ",") {
		t.Fatalf("%s: %s\n got allow=%v status=%d %v\nwant allow=%v status=%d %v\nreasons: %+v",
			step, a.body(), d.Allow, d.Status, d.codes(), allow, status, codes, d.Reasons)
	}
	return d
}

// tokenFile writes an admin token file (with a trailing newline, as editors
// leave it) and returns its path.
func tokenFile(t *testing.T, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
