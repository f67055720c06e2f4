// Package e2efleet tests fleet mode from the outside (README "Running a fleet", issue 16):
// several `verdict run --state-db` processes share one real PostgreSQL
// (VERDICT_TEST_PG_DSN, or a throwaway cluster test/pgtest starts; a
// missing database fails the tests). A change written at one sidecar is
// honoured at the others, concurrent changes converge, kill -9 loses no
// acknowledged change, and a database stopped for a while keeps decisions
// going, refuses writes and fails closed once the state is stale.
package e2efleet

import (
	"bytes"
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
	"github.com/verdict-authz/verdict/test/pgtest"
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
	os.Exit(e2eutil.RunMain(m, &binary, pgtest.Cleanup))
}

// node is one sidecar of the fleet.
type node struct {
	*e2eutil.Server
	name string
	args []string
}

// dsnFile writes the DSN to a file for --state-db-file.
func dsnFile(t testing.TB, dsn string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "state-db")
	if err := os.WriteFile(p, []byte(dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startNode runs `verdict run --bundle demo --state-db-file F extra…` and
// waits until it is ready; it is stopped when the test ends.
func startNode(t *testing.T, name, dsnPath string, extra ...string) *node {
	t.Helper()
	args := append([]string{"--bundle", demoBundle, "--state-db-file", dsnPath, "--log-level", "warn"}, extra...)
	return launch(t, name, "/health/ready", args)
}

func launch(t testing.TB, name, wait string, args []string) *node {
	t.Helper()
	s, err := e2eutil.Launch(binary, e2eutil.Options{WaitPath: wait, Timeout: 30 * time.Second}, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return &node{Server: s, name: name, args: args}
}

// restart stops the node and starts the same command line on a new port.
func (n *node) restart(t *testing.T, wait string) *node {
	t.Helper()
	n.Stop()
	return launch(t, n.name, wait, n.args)
}

var client = &http.Client{Timeout: 15 * time.Second}

type response struct {
	status int
	body   []byte
}

func (n *node) call(t *testing.T, method, path, body string) response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, n.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s: %s %s: %v\nlog:\n%s", n.name, method, path, err, n.Out.String())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, body: b}
}

func (n *node) must(t *testing.T, want int, method, path, body string) response {
	t.Helper()
	r := n.call(t, method, path, body)
	if r.status != want {
		t.Fatalf("%s: %s %s %s: HTTP %d, want %d: %s", n.name, method, path, body, r.status, want, r.body)
	}
	return r
}

// written is what a write answers about the state.
type written struct {
	StateRevision uint64 `json:"state_revision"`
}

func (n *node) write(t *testing.T, method, path, body string) uint64 {
	t.Helper()
	r := n.call(t, method, path, body)
	if r.status != http.StatusOK && r.status != http.StatusCreated {
		t.Fatalf("%s: %s %s %s: HTTP %d: %s", n.name, method, path, body, r.status, r.body)
	}
	var w written
	if err := json.Unmarshal(r.body, &w); err != nil || w.StateRevision == 0 {
		t.Fatalf("%s: %s %s answered no state revision: %s", n.name, method, path, r.body)
	}
	return w.StateRevision
}

// The demo's Fineract CN tenant: rhythm acts for imhotep on the khepri
// beat route once it asked for the group and imhotep consented.
const (
	permissions = "/v1/tenants/fineract/applications/rhythm/permissions"
	khepri      = "portfolio__v1__khepri"
	consentPath = permissions + "/" + khepri + "/users/imhotep/enabled"
)

func (n *node) requestKhepri(t *testing.T) uint64 {
	return n.write(t, http.MethodPost, permissions, `{"group": "`+khepri+`", "operations": ["CHANGE"]}`)
}

func (n *node) consent(t *testing.T, enabled bool) uint64 {
	return n.write(t, http.MethodPut, consentPath, fmt.Sprint(enabled))
}

type decision struct {
	Allow         bool   `json:"allow"`
	StateRevision uint64 `json:"state_revision"`
	Reasons       []struct {
		Code string `json:"code"`
	} `json:"reasons"`
}

func (d *decision) has(code string) bool {
	for _, r := range d.Reasons {
		if r.Code == code {
			return true
		}
	}
	return false
}

func (d *decision) codes() string {
	var out []string
	for _, r := range d.Reasons {
		out = append(out, r.Code)
	}
	return strings.Join(out, ",")
}

// beat asks whether rhythm may post a khepri beat for imhotep, at least at
// the revision (0: no consistency asked).
func (n *node) beat(t *testing.T, atLeast uint64) *decision {
	t.Helper()
	body := `{"tenant": "fineract", "member": "imhotep", "application": "rhythm", "request": {"service": "portfolio", "method": "POST", "path": "/portfolio/v1/khepri/beats"}`
	if atLeast > 0 {
		body += fmt.Sprintf(`, "consistency": {"at_least": %d}`, atLeast)
	}
	return n.decide(t, body+"}")
}

func (n *node) decide(t *testing.T, body string) *decision {
	t.Helper()
	r := n.must(t, http.StatusOK, http.MethodPost, "/v1/decide", body)
	var d decision
	if err := json.Unmarshal(r.body, &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

type fleetStatus struct {
	AppliedRevision uint64 `json:"applied_revision"`
	HeadRevision    uint64 `json:"head_revision"`
	Connected       bool   `json:"connected"`
	Stale           bool   `json:"stale"`
	Source          string `json:"source"`
	LastError       string `json:"last_error"`
	Database        string `json:"database"`
}

type runtimeStatus struct {
	Digest        string       `json:"digest"`
	Registrations int          `json:"registrations"`
	Fleet         *fleetStatus `json:"fleet"`
}

func (n *node) status(t *testing.T) runtimeStatus {
	t.Helper()
	r := n.must(t, http.StatusOK, http.MethodGet, "/v1/status", "")
	var st struct {
		Runtime runtimeStatus `json:"runtime"`
	}
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatal(err)
	}
	if st.Runtime.Fleet == nil {
		t.Fatalf("%s: /v1/status has no runtime.fleet: %s", n.name, r.body)
	}
	return st.Runtime
}

// eventually retries cond for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, got := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last: %s", what, d, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// converged waits until every node applied the same revision as the
// database's head and shows the same digest, and returns it.
func converged(t *testing.T, nodes ...*node) (string, uint64) {
	t.Helper()
	var digest string
	var rev uint64
	eventually(t, 10*time.Second, "the fleet converges", func() (bool, string) {
		var b bytes.Buffer
		digest, rev = "", 0
		for i, n := range nodes {
			st := n.status(t)
			fmt.Fprintf(&b, "%s: rev %d head %d digest %s; ", n.name, st.Fleet.AppliedRevision, st.Fleet.HeadRevision, st.Digest)
			if i == 0 {
				digest, rev = st.Digest, st.Fleet.AppliedRevision
			} else if st.Digest != digest || st.Fleet.AppliedRevision != rev {
				return false, b.String()
			}
			if st.Fleet.HeadRevision != st.Fleet.AppliedRevision {
				return false, b.String()
			}
		}
		return true, b.String()
	})
	return digest, rev
}
