package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/internal/testdemo"
)

// shadowStatus is the "shadow" part of GET /v1/status.
type shadowStatus struct {
	Shadowing bool `json:"shadowing"`
	Bundles   []struct {
		Name      string `json:"name"`
		State     string `json:"state"`
		LastError *struct {
			Message string `json:"message"`
		} `json:"last_error"`
	} `json:"bundles"`
	Counts struct {
		Same        int `json:"same"`
		AllowToDeny int `json:"allow_to_deny"`
		DenyToAllow int `json:"deny_to_allow"`
		Changed     int `json:"changed"`
		Dropped     int `json:"dropped"`
		Skipped     int `json:"skipped"`
	} `json:"counts"`
	LastDifference *struct {
		Change string `json:"change"`
		Input  struct {
			Member string `json:"member"`
		} `json:"input"`
	} `json:"last_difference"`
}

func (s *server) shadowStatus(t *testing.T) shadowStatus {
	t.Helper()
	resp := s.do(t, http.MethodGet, "/v1/status", "", nil)
	var st struct {
		Shadow *shadowStatus `json:"shadow"`
	}
	if err := json.Unmarshal(resp.body, &st); err != nil || st.Shadow == nil {
		t.Fatalf("GET /v1/status: %v %s", err, resp.body)
	}
	return *st.Shadow
}

// shadowMetric reads verdict_shadow_decisions_total{result} from /metrics.
func (s *server) shadowMetric(t *testing.T, result string) int {
	t.Helper()
	resp := s.do(t, http.MethodGet, "/metrics", "", nil)
	m := regexp.MustCompile(`(?m)^verdict_shadow_decisions_total\{result="` + result + `"\} (\d+)$`).FindSubmatch(resp.body)
	if m == nil {
		t.Fatalf("/metrics has no verdict_shadow_decisions_total{result=%q}", result)
	}
	var n int
	fmt.Sscan(string(m[1]), &n)
	return n
}

func TestShadowCandidateCountsAKnownMix(t *testing.T) {
	candidate := testdemo.Write(t, testdemo.FreezePortfolioWrites, testdemo.InternReadsInstruments)
	shadowLog := filepath.Join(t.TempDir(), "shadow.log")
	s := startServer(t, "--bundle", demoBundle, "--candidate", "demo="+candidate, "--shadow-log", shadowLog)

	for _, q := range []struct{ member, action, frn string }{
		{"head_of_banking", "finmars:Portfolio:update", ""},                                             // allow → deny
		{"user_b", "finmars:Portfolio:partial_update", "frn:finmars:portfolios:portfolio:fx-portfolio"}, // allow → deny
		{"olivia", "finmars:Portfolio:update", ""},                                                      // changed
		{"user_a", "finmars:Portfolio:list", ""},                                                        // same
		{"olivia", "finmars:Instrument:list", ""},                                                       // same
		{"admin", "finmars:Portfolio:update", ""},                                                       // same
		{"intern", "finmars:Instrument:list", ""},                                                       // deny → allow
	} {
		body := fmt.Sprintf(`{"tenant":"bank","member":%q,"action":%q}`, q.member, q.action)
		if q.frn != "" {
			body = fmt.Sprintf(`{"tenant":"bank","member":%q,"action":%q,"resource":{"frn":%q}}`, q.member, q.action, q.frn)
		}
		s.decide(t, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	var st shadowStatus
	for {
		st = s.shadowStatus(t)
		c := st.Counts
		if c.Same+c.AllowToDeny+c.DenyToAllow+c.Changed == 7 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	c := st.Counts
	if !st.Shadowing || c.Same != 3 || c.AllowToDeny != 2 || c.DenyToAllow != 1 || c.Changed != 1 || c.Dropped != 0 || c.Skipped != 0 {
		t.Fatalf("shadow status %+v", st)
	}
	for result, want := range map[string]int{"same": 3, "allow_to_deny": 2, "deny_to_allow": 1, "changed": 1} {
		if got := s.shadowMetric(t, result); got != want {
			t.Errorf("verdict_shadow_decisions_total{result=%q} = %d, want %d", result, got, want)
		}
	}
	if st.LastDifference == nil || st.LastDifference.Change != "deny_to_allow" || st.LastDifference.Input.Member != "intern" {
		t.Errorf("last difference %+v", st.LastDifference)
	}
	logData, err := os.ReadFile(shadowLog)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(logData)), "\n"); len(lines) != 4 {
		t.Errorf("shadow log has %d lines, want one per difference (4):\n%s", len(lines), logData)
	}
}

func TestShadowCandidateThatFailsValidationNeverShadows(t *testing.T) {
	broken := acmeBundle(t, strings.Replace(acmeTenant, "roles: [viewer]", "roles: [viwer]", 1))
	s := startServer(t, "--bundle", demoBundle, "--candidate", "demo="+broken)
	d := s.decide(t, `{"tenant":"bank","member":"head_of_banking","action":"finmars:Portfolio:update"}`)
	if !d.Allow {
		t.Fatalf("the live bundle must answer: %+v", d)
	}
	deadline := time.Now().Add(10 * time.Second)
	var st shadowStatus
	for {
		st = s.shadowStatus(t)
		if st.Counts.Skipped == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.Shadowing || st.Counts.Skipped != 1 || st.Counts.Same+st.Counts.AllowToDeny+st.Counts.DenyToAllow+st.Counts.Changed != 0 {
		t.Fatalf("shadow status %+v", st)
	}
	if len(st.Bundles) != 1 || st.Bundles[0].State != "failed" || st.Bundles[0].LastError == nil ||
		!strings.Contains(st.Bundles[0].LastError.Message, `unknown role "viwer"`) {
		t.Fatalf("candidate bundle status %+v", st.Bundles)
	}
	if got := s.shadowMetric(t, "same") + s.shadowMetric(t, "allow_to_deny"); got != 0 {
		t.Fatalf("a failed candidate shadowed %d decisions", got)
	}
	if resp := s.do(t, http.MethodGet, "/health/ready", "", nil); resp.status != http.StatusOK {
		t.Fatalf("a failed candidate made /health/ready answer %d", resp.status)
	}
}

// TestShadowCandidatePausesWhileItsNewestVersionFails watches a good
// candidate, breaks it (the last good candidate stays loaded but must not
// shadow) and fixes it again.
func TestShadowCandidatePausesWhileItsNewestVersionFails(t *testing.T) {
	candidate := testdemo.Write(t, testdemo.FreezePortfolioWrites)
	s := startServer(t, "--bundle", demoBundle, "--candidate", "demo="+candidate, "--watch", "--debounce", "50ms")
	const q = `{"tenant":"bank","member":"head_of_banking","action":"finmars:Portfolio:update"}`
	waitFor := func(what string, ok func(shadowStatus) bool) shadowStatus {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			st := s.shadowStatus(t)
			if ok(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: shadow status %+v\nserver log:\n%s", what, st, s.Out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	s.decide(t, q)
	waitFor("the good candidate shadows", func(st shadowStatus) bool { return st.Shadowing && st.Counts.AllowToDeny == 1 })

	path := filepath.Join(candidate, "verdict", "tenants", "bank", "data.yaml")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(good), "roles: [banking_head]", "roles: [banking_headd]", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor("the broken candidate is reported", func(st shadowStatus) bool { return !st.Shadowing && st.Bundles[0].State == "failed" })
	s.decide(t, q)
	st := waitFor("the broken candidate skips", func(st shadowStatus) bool { return st.Counts.Skipped == 1 })
	if st.Counts.AllowToDeny != 1 {
		t.Fatalf("the broken candidate shadowed: %+v", st.Counts)
	}

	if err := os.WriteFile(path, good, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor("the fixed candidate shadows again", func(st shadowStatus) bool { return st.Shadowing })
	s.decide(t, q)
	waitFor("the fixed candidate shadows", func(st shadowStatus) bool { return st.Counts.AllowToDeny == 2 })
}
