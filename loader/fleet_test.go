package loader

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader/generation"
	"github.com/verdict-authz/verdict/loader/state"
	"github.com/verdict-authz/verdict/loader/state/pgstate"
	"github.com/verdict-authz/verdict/test/pgtest"
)

// fleetWithoutDB makes l follow a fleet whose database the test never
// reaches: changes are handed to applyChangesLocked directly.
func fleetWithoutDB(t *testing.T, l *Loader, maxStaleness time.Duration) *fleet {
	db, err := pgstate.Open(context.Background(), "postgres://nobody@127.0.0.1:1/none")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	o := FleetOptions{DB: db, MaxStaleness: maxStaleness}
	o.defaults()
	f := &fleet{db: db, opts: o, wake: make(chan struct{}, 1), progress: make(chan struct{}), lastConfirmed: time.Now()}
	l.mu.Lock()
	l.fleet = f
	l.genState = generation.StateInfo{Shared: true}
	l.installStateLocked()
	l.mu.Unlock()
	return f
}

func consentChange(rev uint64, enabled bool) pgstate.Change {
	return pgstate.Change{Revision: rev, Consent: &pgstate.Consent{Tenant: "cn", Application: "rhythm",
		Group: "identity__v1__app_self", Member: "imhotep", Enabled: enabled, At: time.Unix(int64(rev), 0).UTC()}}
}

const askPermissions = "/identity/v1/applications/rhythm/permissions"

// The follower applies a contiguous run of revisions and stops at a gap:
// a later change is never applied before an earlier one it has not seen,
// and the generation says which revision its facts include.
func TestFleetAppliesChangesInOrderAndStopsAtGap(t *testing.T) {
	l, engine, _ := cnWorld(t, "")
	f := fleetWithoutDB(t, l, time.Minute)
	apply := func(changes ...pgstate.Change) {
		t.Helper()
		l.mu.Lock()
		defer l.mu.Unlock()
		if err := l.applyChangesLocked(t.Context(), changes); err != nil {
			t.Fatal(err)
		}
	}
	// Revision 2 (a consent) has not been seen; 3 withdraws it again.
	apply(consentChange(1, false), consentChange(3, false))
	if got := f.applied.Load(); got != 1 {
		t.Fatalf("applied revision %d after [1, 3], want 1: 3 must wait for 2", got)
	}
	d := decide(t, engine, "imhotep", "rhythm", "POST", askPermissions)
	if d.Allow || d.StateRevision != 1 {
		t.Fatalf("after revision 1 (withdrawal): allow %v at %d", d.Allow, d.StateRevision)
	}
	apply(consentChange(2, true))
	if d := decide(t, engine, "imhotep", "rhythm", "POST", askPermissions); !d.Allow || d.StateRevision != 2 {
		t.Fatalf("after revision 2 (consent): allow %v at %d", d.Allow, d.StateRevision)
	}
	// 2 again (already applied) and 3: only 3 is applied.
	apply(consentChange(2, true), consentChange(3, false))
	if d := decide(t, engine, "imhotep", "rhythm", "POST", askPermissions); d.Allow || d.StateRevision != 3 {
		t.Fatalf("after revision 3 (withdrawal): allow %v at %d", d.Allow, d.StateRevision)
	}
	// A change that closes as unchanged still advances the revision.
	apply(consentChange(4, false))
	if g := engine.Current(); g.State.Revision != 4 {
		t.Fatalf("generation at revision %d after an unchanged change 4", g.State.Revision)
	}
}

// Past the staleness limit the generation is stale and Rego denies the
// consent-based allow; a confirmation makes it current again.
func TestFleetStalenessFailsClosed(t *testing.T) {
	l, engine, _ := cnWorld(t, "")
	f := fleetWithoutDB(t, l, 50*time.Millisecond)
	l.checkStaleness()
	if d := decide(t, engine, "imhotep", "rhythm", "POST", askPermissions); !d.Allow {
		t.Fatalf("current state: %v", d.Reasons)
	}
	time.Sleep(60 * time.Millisecond)
	l.checkStaleness()
	d := decide(t, engine, "imhotep", "rhythm", "POST", askPermissions)
	if d.Allow || d.Reasons[len(d.Reasons)-1].Code != "state.stale" {
		t.Fatalf("stale state: allow %v, %v", d.Allow, d.Reasons)
	}
	if st := l.FleetStatus(); !st.Stale {
		t.Errorf("status does not say stale: %+v", st)
	}
	if l.Status().Ready {
		t.Error("status says ready with stale state")
	}
	f.confirmed(time.Now(), 0)
	l.checkStaleness()
	if d := decide(t, engine, "imhotep", "rhythm", "POST", askPermissions); !d.Allow {
		t.Fatalf("confirmed again: %v", d.Reasons)
	}
}

// A state directory that holds entries but no copy of the fleet's state is
// refused: its entries are not the fleet's and would be served by one
// sidecar only.
func TestFleetRefusesUnimportedStateDir(t *testing.T) {
	dir := t.TempDir()
	d, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.PutService(&state.ServiceFile{Name: "s", Document: []byte(`{"routes": []}`)}); err != nil {
		t.Fatal(err)
	}
	db, err := pgstate.Open(t.Context(), "postgres://nobody@127.0.0.1:1/none")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l, _ := newTestLoader(t)
	err = l.OpenFleet(t.Context(), FleetOptions{DB: db, StateDir: dir})
	if err == nil || !strings.Contains(err.Error(), "verdict state import --from-dir") {
		t.Fatalf("OpenFleet on an unimported state directory = %v", err)
	}
}

// Two sidecars writing at once through one database, each a consent for
// its own member and a request: both end with every change, in the same
// order, at the same revision.
func TestFleetConcurrentWritersConverge(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	open := func() (*Loader, *decision.Engine) {
		db, err := pgstate.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		l, engine := newTestLoader(t)
		if err := l.OpenFleet(ctx, FleetOptions{DB: db, StateDir: filepath.Join(t.TempDir(), "copy")}); err != nil {
			t.Fatal(err)
		}
		loadCN(t, l)
		return l, engine
	}
	l1, _ := open()
	l2, e2 := open()
	const each = 40
	var wg sync.WaitGroup
	for i, l := range []*Loader{l1, l2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < each; k++ {
				if _, err := l.SetConsent(ctx, "cn", "rhythm", "identity__v1__app_self", []string{"antony", "imhotep"}[i], k%2 == 0); err != nil {
					t.Error(err)
					return
				}
				if _, err := l.RequestDelegation(ctx, "cn", fmt.Sprint("app", i), "identity__v1__app_self", []string{"CHANGE"}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		d1, _ := l1.reader().RuntimeDigest()
		d2, _ := l2.reader().RuntimeDigest()
		a1, a2 := l1.fleet.applied.Load(), l2.fleet.applied.Load()
		if d1 == d2 && a1 == a2 && a1 >= 2*each+2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no convergence: %s at %d vs %s at %d", d1, a1, d2, a2)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The last consents were withdrawals (k = each-1 is odd).
	if d := decide(t, e2, "imhotep", "rhythm", "POST", askPermissions); d.Allow {
		t.Errorf("imhotep's last change was a withdrawal, yet allowed at %d", d.StateRevision)
	}
}

// A catch-up that read the head before this sidecar wrote a newer change,
// and applies after it, finds more applied than the head it read: the
// state is current, not a database behind this sidecar (nor disconnected).
func TestFleetCatchUpRacingOwnWriteConfirms(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	db, err := pgstate.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	l, _ := newTestLoader(t)
	if err := l.OpenFleet(ctx, FleetOptions{DB: db, PollInterval: time.Hour}); err != nil {
		t.Fatal(err)
	}
	loadCN(t, l)
	l.mu.Lock()
	done := make(chan struct{})
	go func() { l.catchUp(ctx); close(done) }()
	time.Sleep(300 * time.Millisecond) // the catch-up reads the head, then waits for l.mu
	w, err := db.BeginWrite(ctx, "test")
	if err != nil {
		l.mu.Unlock()
		t.Fatal(err)
	}
	c := consentChange(0, false)
	if _, err := w.Append(ctx, &c); err != nil {
		l.mu.Unlock()
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		l.mu.Unlock()
		t.Fatal(err)
	}
	err = l.applyChangesLocked(ctx, []pgstate.Change{c})
	l.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	<-done
	if st := l.FleetStatus(); st.LastError != "" || !st.Connected || st.AppliedRevision != 1 {
		t.Fatalf("after a catch-up racing a write: %+v", st)
	}
}
