package loader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/verdict-authz/verdict/loader/generation"
	"github.com/verdict-authz/verdict/loader/state"
	"github.com/verdict-authz/verdict/loader/state/pgstate"
)

// Fleet mode (--state-db): the run-time state lives in PostgreSQL, shared
// by every sidecar (loader/state/pgstate), and each sidecar follows it.
//
//   - A write (registration, delegation request, consent) begins a database
//     transaction that takes the fleet's write lock, applies every change
//     committed since this sidecar's last one (so it is validated against
//     the fleet's current state), runs through the pipeline, where the
//     state-db-write processor appends it to the change log and commits,
//     and is installed here before it is answered with its revision. A
//     database that cannot be reached refuses the write (503
//     state.unavailable) and nothing is applied anywhere.
//   - The follower applies every committed change, in revision order,
//     through the same pipeline: LISTEN/NOTIFY wakes it, and it polls the
//     log every PollInterval as well, since notifications are lost while a
//     connection is down. It applies only a contiguous run of revisions and
//     stops at a gap, so no change is ever skipped.
//   - A catch-up that reaches the database's head confirms the state is
//     current. After MaxStaleness without one, the generation is marked
//     stale (input.facts.state.stale): Rego then denies an application
//     acting for a member by consent, and /health/ready answers 503.
//   - With a state directory as well, the directory holds a copy of the last
//     synced state (and fleet.json its revision), served by a sidecar that
//     starts while the database is down.

// FleetOptions configures fleet mode.
type FleetOptions struct {
	DB *pgstate.Store
	// StateDir, when set, keeps a local copy of the last synced state.
	StateDir string
	// MaxStaleness is how long the state may go without being confirmed
	// current before consent-based allows are denied (default 30 s).
	MaxStaleness time.Duration
	// ConsistencyWait bounds how long a decision asking for a newer
	// revision waits for it (default 2 s).
	ConsistencyWait time.Duration
	// PollInterval is how often the change log is read besides
	// notifications (default the lesser of 1 s and MaxStaleness/4).
	PollInterval time.Duration
	// WriteTimeout bounds a write's database work (default 5 s).
	WriteTimeout time.Duration
	// Origin names this sidecar in the change log (default host:pid).
	Origin string
}

func (o *FleetOptions) defaults() {
	if o.MaxStaleness <= 0 {
		o.MaxStaleness = 30 * time.Second
	}
	if o.ConsistencyWait <= 0 {
		o.ConsistencyWait = 2 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = min(time.Second, o.MaxStaleness/4)
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 5 * time.Second
	}
	if o.Origin == "" {
		host, _ := os.Hostname()
		o.Origin = host + ":" + strconv.Itoa(os.Getpid())
	}
}

// FleetStatus is what GET /v1/status says about the shared state.
type FleetStatus struct {
	// Backend is "postgresql"; Database names it without its password.
	Backend  string `json:"backend"`
	Database string `json:"database"`
	// Connected: the last exchange with the database succeeded.
	Connected bool `json:"connected"`
	// AppliedRevision is the last change applied here; HeadRevision the
	// last one the database was seen to hold; Lag the difference.
	AppliedRevision uint64 `json:"applied_revision"`
	HeadRevision    uint64 `json:"head_revision"`
	Lag             uint64 `json:"lag"`
	// LastConfirmed is when the state was last confirmed current;
	// StalenessSeconds how long ago that was.
	LastConfirmed       *time.Time `json:"last_confirmed,omitempty"`
	StalenessSeconds    float64    `json:"staleness_seconds"`
	MaxStalenessSeconds float64    `json:"max_staleness_seconds"`
	// Stale: not confirmed within the limit; consent-based allows are
	// denied (state.stale) and /health/ready answers 503.
	Stale bool `json:"stale"`
	// Source is where the state came from at start: "database", or
	// "local copy" when the database was down and --state-dir's copy is
	// served (until the first catch-up).
	Source      string     `json:"source"`
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	// LocalCopy is the state directory holding the copy; LocalCopyProblem
	// says why it is not kept (it is then not used at a start).
	LocalCopy        string `json:"local_copy,omitempty"`
	LocalCopyProblem string `json:"local_copy_problem,omitempty"`
}

// StateUnavailableError is a write refused because the state database
// could not be reached or failed: nothing was applied (HTTP 503).
type StateUnavailableError struct{ Err error }

func (e *StateUnavailableError) Error() string {
	return "the run-time state database is unavailable; nothing was changed: " + e.Err.Error()
}

func (e *StateUnavailableError) Unwrap() error { return e.Err }

type fleet struct {
	db   *pgstate.Store
	opts FleetOptions
	// applied is the last revision applied; written under the loader's mu.
	applied atomic.Uint64
	// stale mirrors the installed generation's State.Stale.
	stale atomic.Bool
	wake  chan struct{}

	mu            sync.Mutex
	progress      chan struct{} // closed when applied advances or a catch-up ends
	connected     bool
	migrated      bool
	head          uint64
	lastConfirmed time.Time
	lastError     string
	lastErrorAt   time.Time
	source        string
	copyProblem   string
}

// markerFile records the revision of the local copy in the state directory.
const markerFile = "fleet.json"

func (f *fleet) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fleet) failed(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connected = false
	f.lastError = err.Error()
	f.lastErrorAt = time.Now()
}

// confirmed records that the state was current as of start.
func (f *fleet) confirmed(start time.Time, head uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connected = true
	f.source = "database"
	if head > f.head {
		f.head = head
	}
	if start.After(f.lastConfirmed) {
		f.lastConfirmed = start
	}
}

func (f *fleet) seenHead(head uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connected = true
	if head > f.head {
		f.head = head
	}
}

func (f *fleet) isStale(now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastConfirmed.IsZero() || now.Sub(f.lastConfirmed) > f.opts.MaxStaleness
}

func (f *fleet) isConnected() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connected
}

func (f *fleet) progressChan() chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.progress
}

func (f *fleet) signalProgress() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.progress)
	f.progress = make(chan struct{})
}

// OpenFleet makes the run-time state the fleet's: it loads the current state
// from the database (creating or migrating its schema) and follows the
// change log from then on. When the database cannot be reached, it serves
// the local copy in StateDir if there is one, stale until the database
// confirms it. Call it instead of OpenState, before the bundles are loaded.
func (l *Loader) OpenFleet(ctx context.Context, o FleetOptions) error {
	o.defaults()
	f := &fleet{db: o.DB, opts: o, wake: make(chan struct{}, 1), progress: make(chan struct{}), source: "none"}
	var dir *state.Dir
	if o.StateDir != "" {
		var err error
		if dir, err = state.Open(o.StateDir); err != nil {
			return err
		}
		if _, err := readMarker(dir); errors.Is(err, os.ErrNotExist) {
			c, err := dir.Load()
			if err != nil {
				return err
			}
			if len(c.Services) > 0 || len(c.Delegations) > 0 || len(c.Problems) > 0 {
				return fmt.Errorf("the state directory %s holds run-time state that is not the fleet's: move it into the database first with `verdict state import --from-dir %s`, then start with an empty --state-dir", dir.Path(), dir.Path())
			}
		}
	}
	l.mu.Lock()
	l.fleet = f
	l.genState = generation.StateInfo{Shared: true, Stale: true}
	f.stale.Store(true)
	l.mu.Unlock()
	if dir != nil {
		l.stateMu.Lock()
		l.state = dir
		l.stateMu.Unlock()
	}
	l.engine.SetStateWaiter(l)

	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := l.loadFleet(lctx, dir)
	cancel()
	if err != nil {
		f.failed(err)
		l.log.Error("state database unavailable at start", "database", f.db.Description(), "error", err)
		if dir != nil {
			if err := l.restoreLocalCopy(ctx, dir); err != nil {
				l.log.Error("local copy of the state not served", "state_dir", dir.Path(), "error", err)
			}
		}
	}
	l.checkStaleness()
	go l.followFleet(l.ctx)
	return nil
}

// loadFleet migrates the schema, loads the current state and, with a state
// directory, writes it there as the local copy.
func (l *Loader) loadFleet(ctx context.Context, dir *state.Dir) error {
	f := l.fleet
	start := time.Now()
	from, to, err := f.db.Migrate(ctx)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.migrated = true
	f.mu.Unlock()
	if from != to {
		l.log.Info("state database schema migrated", "database", f.db.Description(), "from", from, "to", to)
	}
	snap, err := f.db.Load(ctx)
	if err != nil {
		return err
	}
	contents := snap.Contents()
	l.mu.Lock()
	defer l.mu.Unlock()
	problems, err := l.restoreLocked(ctx, "database "+f.db.Description(), contents)
	for _, p := range problems {
		l.log.Error("state entry ignored", "database", f.db.Description(), "entry", p.File, "problem", p.Message)
	}
	if err != nil {
		return fmt.Errorf("restore the state from the database: %w", err)
	}
	l.stateMu.Lock()
	l.stateProblems = problems
	l.stateMu.Unlock()
	f.applied.Store(snap.Revision)
	l.genState.Revision = snap.Revision
	if dir != nil {
		l.writeLocalCopy(dir, contents, snap.Revision)
	}
	f.confirmed(start, snap.Revision)
	l.installStateLocked()
	l.log.Info("state loaded from the database", "database", f.db.Description(), "revision", snap.Revision,
		"services", len(contents.Services), "delegations", len(contents.Delegations))
	return nil
}

// FleetStatus describes the shared state for GET /v1/status and the
// metrics (nil without a state database).
func (l *Loader) FleetStatus() *FleetStatus {
	f := l.fleet
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	st := &FleetStatus{Backend: "postgresql", Database: f.db.Description(), Connected: f.connected,
		AppliedRevision: f.applied.Load(), HeadRevision: f.head, MaxStalenessSeconds: f.opts.MaxStaleness.Seconds(),
		Stale: f.stale.Load(), Source: f.source, LastError: f.lastError, LocalCopy: f.opts.StateDir, LocalCopyProblem: f.copyProblem}
	if st.HeadRevision > st.AppliedRevision {
		st.Lag = st.HeadRevision - st.AppliedRevision
	}
	if !f.lastConfirmed.IsZero() {
		at := f.lastConfirmed
		st.LastConfirmed = &at
		st.StalenessSeconds = time.Since(at).Seconds()
	}
	if !f.lastErrorAt.IsZero() {
		at := f.lastErrorAt
		st.LastErrorAt = &at
	}
	return st
}
