// Package e2ereload tests live bundles from the outside: it builds
// cmd/verdict, runs `verdict run --watch` on a temporary bundle directory on
// a loopback port, edits the bundle's files the ways editors, deploy scripts
// and Kubernetes do, and polls /v1/decide, /v1/status and /health/ready
// until they follow (every wait is bounded).
package e2ereload

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

	verdictclient "github.com/verdict-authz/verdict/decision/client"
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

func (s *server) get(t *testing.T, path string, v any) int {
	t.Helper()
	resp, err := client.Get(s.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, s.Out.String())
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, body)
		}
	}
	return resp.StatusCode
}

// Decision is a decision as the public Go client returns it.
type Decision struct{ verdictclient.Decision }

func (d Decision) codes() string {
	var cs []string
	for _, r := range d.Reasons {
		cs = append(cs, r.Code)
	}
	return strings.Join(cs, ",")
}

// decide asks s through the public Go client; body is the JSON of a
// decision request.
func decide(s *server, body string) (Decision, error) {
	var req verdictclient.Request
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		return Decision{}, fmt.Errorf("%v: %s", err, body)
	}
	d, err := verdictclient.New(s.URL, verdictclient.WithHTTPClient(client)).Decide(context.Background(), &req)
	if err != nil {
		return Decision{}, err
	}
	return Decision{*d}, nil
}

// Status is GET /v1/status.
type Status struct {
	Ready      bool     `json:"ready"`
	Generation uint64   `json:"generation"`
	Failing    []string `json:"failing"`
	Bundles    []struct {
		Name      string `json:"name"`
		State     string `json:"state"`
		Revision  string `json:"revision"`
		Failures  int    `json:"failures"`
		LastError *struct {
			Stage    string `json:"stage"`
			File     string `json:"file"`
			Line     int    `json:"line"`
			Message  string `json:"message"`
			Problems []struct {
				File, Entry, Message string
				Line                 int
			} `json:"problems"`
		} `json:"last_error"`
	} `json:"bundles"`
}

func (s *server) status(t *testing.T) Status {
	t.Helper()
	var st Status
	if code := s.get(t, "/v1/status", &st); code != http.StatusOK {
		t.Fatalf("GET /v1/status: HTTP %d", code)
	}
	return st
}

func (s *server) ready(t *testing.T) int {
	t.Helper()
	return s.get(t, "/health/ready", nil)
}

// eventually polls cond every 20 ms for at most 10 s.
func eventually(t *testing.T, s *server, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not within 10 s; last seen: %s\nserver log:\n%s", what, last, s.Out.String())
}

// expectDecision waits until the decision for body has allow and the codes.
func expectDecision(t *testing.T, s *server, what, body string, allow bool, code string) {
	t.Helper()
	eventually(t, s, what, func() (bool, string) {
		d, err := decide(s, body)
		if err != nil {
			return false, err.Error()
		}
		return d.Allow == allow && strings.Contains(d.codes(), code), fmt.Sprintf("allow=%v codes=%s revision=%v", d.Allow, d.codes(), d.Revision)
	})
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replaceByRename writes content the way editors save: into a temporary
// file beside path, then renamed over it.
func replaceByRename(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".swp~"
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
