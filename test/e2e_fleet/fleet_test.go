package e2efleet

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/test/pgtest"
)

func threeNodes(t *testing.T, dsn string, extra ...string) (a, b, c *node) {
	t.Helper()
	f := dsnFile(t, dsn)
	return startNode(t, "A", f, extra...), startNode(t, "B", f, extra...), startNode(t, "C", f, extra...)
}

// A consent given at A is honoured at B and C; a withdrawal at C is
// enforced at A and B; a service registered at B translates routes at A.
// Every write answers its revision, and a decision asking for it sees it.
func TestChangesAtOneSidecarHonouredAtTheOthers(t *testing.T) {
	// The test servers trust loopback connections, so a password in the
	// DSN is accepted and must show nowhere.
	dsn := strings.Replace(pgtest.NewDatabase(t), "postgres://postgres@", "postgres://postgres:pw-s3cret@", 1)
	a, b, c := threeNodes(t, dsn)

	if d := b.beat(t, 0); d.Allow || !d.has("delegation.not_requested") {
		t.Fatalf("before any request: %s", d.codes())
	}
	a.requestKhepri(t)
	rev := a.consent(t, true)
	for _, n := range []*node{b, c} {
		if d := n.beat(t, rev); !d.Allow || d.StateRevision < rev {
			t.Fatalf("%s after the consent at A (revision %d): allow %v at %d, %s", n.name, rev, d.Allow, d.StateRevision, d.codes())
		}
	}
	rev = c.consent(t, false)
	for _, n := range []*node{a, b} {
		if d := n.beat(t, rev); d.Allow || !d.has("delegation.not_enabled") {
			t.Fatalf("%s after the withdrawal at C (revision %d): allow %v, %s", n.name, rev, d.Allow, d.codes())
		}
	}
	// Without consistency too, within a moment (LISTEN/NOTIFY).
	rev = b.consent(t, true)
	eventually(t, 2*time.Second, "C sees B's consent without asking for it", func() (bool, string) {
		d := c.beat(t, 0)
		return d.Allow, d.codes()
	})

	rev = b.write(t, http.MethodPut, "/v1/services/ledger", `{"routes": [{"method": "GET", "path": "/ledger/v1/entries/{id}", "action": "ledger:entries:get"}]}`)
	ask := fmt.Sprintf(`{"tenant": "fineract", "member": "antony", "request": {"service": "ledger", "method": "GET", "path": "/ledger/v1/entries/7"}, "consistency": {"at_least": %d}}`, rev)
	if d := a.decide(t, ask); !d.Allow || d.has("route.unknown") {
		t.Fatalf("A after B registered ledger: allow %v, %s", d.Allow, d.codes())
	}
	converged(t, a, b, c)

	metrics := string(a.must(t, http.StatusOK, http.MethodGet, "/metrics", "").body)
	for _, m := range []string{"verdict_state_applied_revision", "verdict_state_lag_changes", "verdict_state_stale 0", "verdict_state_connected 1"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	status := string(a.must(t, http.StatusOK, http.MethodGet, "/v1/status", "").body)
	for _, n := range []*node{a, b, c} {
		if strings.Contains(n.Out.String(), "pw-s3cret") || strings.Contains(status, "pw-s3cret") || strings.Contains(strings.Join(n.Cmd.Args, " "), "pw-s3cret") {
			t.Errorf("%s shows the database password (log, status or command line)", n.name)
		}
	}
}

// A consent written at A and a decision at B carrying A's revision sees
// the consent every time, and the withdrawal after it too.
func TestConsistencyAtLeastEveryTime(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	f := dsnFile(t, dsn)
	a, b := startNode(t, "A", f), startNode(t, "B", f)
	a.requestKhepri(t)
	for i := 0; i < 40; i++ {
		enabled := i%2 == 0
		rev := a.consent(t, enabled)
		// Read your own write: A applied it before it answered.
		if d := a.beat(t, 0); d.Allow != enabled || d.StateRevision < rev {
			t.Fatalf("round %d: A answered allow %v at revision %d right after writing revision %d", i, d.Allow, d.StateRevision, rev)
		}
		if d := b.beat(t, rev); d.Allow != enabled || d.StateRevision < rev {
			t.Fatalf("round %d: consent %v written at revision %d; B answered allow %v at revision %d (%s)", i, enabled, rev, d.Allow, d.StateRevision, d.codes())
		}
	}
	// A revision nobody wrote is not reached: state.stale after the wait.
	d := b.beat(t, 1<<40)
	if d.Allow || !d.has("state.stale") {
		t.Fatalf("a revision far ahead: allow %v, %s; want state.stale", d.Allow, d.codes())
	}
}

// 300 changes written concurrently through three sidecars converge to one
// digest; restarting every sidecar restores the same state.
func TestConcurrentChangesConvergeAndSurviveRestart(t *testing.T) {
	a, b, c := threeNodes(t, pgtest.NewDatabase(t))
	nodes := []*node{a, b, c}
	a.requestKhepri(t)
	const total = 300
	var wg sync.WaitGroup
	var failed atomic.Int32
	var next atomic.Int32
	for w := 0; w < 12; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > total {
					return
				}
				n := nodes[rand.IntN(len(nodes))]
				var r response
				switch i % 3 {
				case 0:
					r = n.call(t, http.MethodPut, consentPath, fmt.Sprint(rand.IntN(2) == 0))
				case 1:
					r = n.call(t, http.MethodPost, permissions, fmt.Sprintf(`{"group": "%s", "operations": [%q]}`, khepri, []string{"CHANGE", "READ", "DELETE"}[rand.IntN(3)]))
				default:
					r = n.call(t, http.MethodPut, fmt.Sprintf("/v1/services/svc-%d", i%40),
						fmt.Sprintf(`{"routes": [{"method": "GET", "path": "/svc/%d/{id}", "action": "svc:items:get"}]}`, i))
				}
				if r.status != http.StatusOK && r.status != http.StatusCreated {
					failed.Add(1)
					t.Errorf("%s: change %d: HTTP %d %s", n.name, i, r.status, r.body)
				}
			}
		}(w)
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.FailNow()
	}
	digest, rev := converged(t, nodes...)
	if st := a.status(t); st.Registrations != 40 {
		t.Errorf("registrations = %d, want 40", st.Registrations)
	}
	for i, n := range nodes {
		nodes[i] = n.restart(t, "/health/ready")
	}
	if d2, rev2 := converged(t, nodes...); d2 != digest || rev2 != rev {
		t.Fatalf("after restarting every sidecar: digest %s at %d, want %s at %d", d2, rev2, digest, rev)
	}
}

// kill -9 of a sidecar during a burst loses no acknowledged change: every
// registration answered 200 before the kill is at the other sidecar, and
// at the killed one once it is back.
func TestKill9DuringBurstLosesNoAcknowledgedChange(t *testing.T) {
	f := dsnFile(t, pgtest.NewDatabase(t))
	a, b := startNode(t, "A", f), startNode(t, "B", f)
	const total, killAt = 200, 60
	var (
		mu     sync.Mutex
		acked  []int
		next   atomic.Int32
		nAcked atomic.Int32
		once   sync.Once
		wg     sync.WaitGroup
	)
	hc := &http.Client{Timeout: 10 * time.Second}
	put := func(i int) bool {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, fmt.Sprintf("%s/v1/services/burst-%d", a.URL, i),
			strings.NewReader(fmt.Sprintf(`{"routes": [{"method": "POST", "path": "/burst/%d", "action": "burst:items:create"}]}`, i)))
		resp, err := hc.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return err == nil && resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"state_revision"`)
	}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > total {
					return
				}
				if put(i) {
					mu.Lock()
					acked = append(acked, i)
					mu.Unlock()
					if nAcked.Add(1) == killAt {
						once.Do(func() { a.Kill() })
					}
				}
			}
		}()
	}
	wg.Wait()
	if len(acked) < killAt {
		t.Fatalf("only %d writes were acknowledged", len(acked))
	}
	a = a.restart(t, "/health/ready")
	converged(t, a, b)
	for _, n := range []*node{a, b} {
		for _, i := range acked {
			n.must(t, http.StatusOK, http.MethodGet, fmt.Sprintf("/v1/services/burst-%d", i), "")
		}
	}
	t.Logf("%d writes acknowledged before and around the kill; all present at both sidecars", len(acked))
}
