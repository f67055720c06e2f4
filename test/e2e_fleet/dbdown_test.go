package e2efleet

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/test/pgtest"
)

// The database stopped for 10 s: decisions continue on the last synced
// state, writes answer 503 state.unavailable, and once the state is older
// than --state-max-staleness consent-based allows deny with state.stale and
// /health/ready answers 503. A sidecar started meanwhile serves the local
// copy in its --state-dir. After the restart every sidecar catches up and
// nothing is lost.
func TestDatabaseDown(t *testing.T) {
	cluster := pgtest.StartCluster(t)
	f := dsnFile(t, cluster.NewDatabase(t))
	const staleness = "3s"
	// A long consistency wait: while the database is down, a decision asking
	// for a newer revision must not wait for all of it.
	a := startNode(t, "A", f, "--state-max-staleness", staleness, "--state-consistency-wait", "30s")
	b := startNode(t, "B", f, "--state-max-staleness", staleness, "--state-dir", filepath.Join(t.TempDir(), "state"))
	a.requestKhepri(t)
	rev := a.consent(t, true)
	a.write(t, http.MethodPut, "/v1/services/ledger", `{"routes": [{"method": "GET", "path": "/ledger/v1/entries/{id}", "action": "ledger:entries:get"}]}`)
	if d := b.beat(t, rev); !d.Allow {
		t.Fatalf("B before the database stops: %s", d.codes())
	}
	digest, _ := converged(t, a, b)

	cluster.Stop(t)
	stopped := time.Now()

	// Decisions continue on the last synced state.
	for _, n := range []*node{a, b} {
		if d := n.beat(t, 0); !d.Allow {
			t.Fatalf("%s right after the database stopped: %s", n.name, d.codes())
		}
	}
	// Writes are refused and change nothing.
	r := a.call(t, http.MethodPut, consentPath, "false")
	if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), `"code":"state.unavailable"`) {
		t.Fatalf("a write with the database down: HTTP %d %s; want 503 state.unavailable", r.status, r.body)
	}
	if d := a.beat(t, 0); !d.Allow {
		t.Fatalf("the refused withdrawal was applied at A: %s", d.codes())
	}
	asked := time.Now()
	if d := a.beat(t, rev+100); d.Allow || !d.has("state.stale") {
		t.Fatalf("a revision the database cannot deliver now: %s", d.codes())
	}
	if waited := time.Since(asked); waited > 10*time.Second {
		t.Fatalf("a decision asking for a revision waited %v with the database down", waited)
	}

	// After the staleness limit: fail closed where stale state could
	// wrongly allow, and not ready; other decisions go on.
	eventually(t, 6*time.Second, "A and B deny consent-based allows with state.stale", func() (bool, string) {
		da, db := a.beat(t, 0), b.beat(t, 0)
		return !da.Allow && da.has("state.stale") && !db.Allow && db.has("state.stale"), da.codes() + " / " + db.codes()
	})
	for _, n := range []*node{a, b} {
		if r := n.call(t, http.MethodGet, "/health/ready", ""); r.status != http.StatusServiceUnavailable {
			t.Errorf("%s /health/ready with stale state: HTTP %d %s", n.name, r.status, r.body)
		}
		st := n.status(t)
		if !st.Fleet.Stale || st.Fleet.Connected || st.Fleet.LastError == "" {
			t.Errorf("%s status while the database is down: %+v", n.name, st.Fleet)
		}
		if r := n.must(t, http.StatusOK, http.MethodGet, "/v1/status", ""); !strings.Contains(string(r.body), `"ready":false`) {
			t.Errorf("%s /v1/status says ready with stale state", n.name)
		}
	}
	route := `{"tenant": "fineract", "member": "antony", "request": {"service": "ledger", "method": "GET", "path": "/ledger/v1/entries/7"}}`
	if d := a.decide(t, route); !d.Allow {
		t.Fatalf("a decision without consent while stale: %s", d.codes())
	}

	// B restarts while the database is down: it serves its local copy.
	b = b.restart(t, "/health")
	if st := b.status(t); st.Digest != digest || st.Fleet.Source != "local copy" {
		t.Fatalf("B restarted with the database down: digest %s source %q; want %s from the local copy", st.Digest, st.Fleet.Source, digest)
	}
	if d := b.decide(t, route); !d.Allow {
		t.Fatalf("B on its local copy does not know the registered service: %s", d.codes())
	}

	if wait := 10*time.Second - time.Since(stopped); wait > 0 {
		time.Sleep(wait)
	}
	cluster.Start(t)

	// Everyone catches up and recovers; writes work again.
	for _, n := range []*node{a, b} {
		if err := n.Wait("/health/ready", 15*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	rev = b.consent(t, false)
	if d := a.beat(t, rev); d.Allow || !d.has("delegation.not_enabled") {
		t.Fatalf("A after the withdrawal at B: %s", d.codes())
	}
	rev = a.consent(t, true)
	if d := b.beat(t, rev); !d.Allow {
		t.Fatalf("B after the consent at A: %s", d.codes())
	}
	converged(t, a, b)
	if st := b.status(t); st.Fleet.Source != "database" || st.Fleet.Stale {
		t.Errorf("B after the database is back: %+v", st.Fleet)
	}
}
