package loader

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader/state"
	"github.com/verdict-authz/verdict/loader/state/pgstate"
	"github.com/verdict-authz/verdict/loader/store"
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

type marker struct {
	Version  int       `json:"version"`
	Revision uint64    `json:"revision"`
	SyncedAt time.Time `json:"synced_at"`
}

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
	l.genState = decision.StateInfo{Shared: true, Stale: true}
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

// writeLocalCopy writes every entry and the marker; a failure is reported
// and the copy is no longer kept.
func (l *Loader) writeLocalCopy(dir *state.Dir, c *state.Contents, revision uint64) {
	for _, s := range c.Services {
		if err := dir.PutService(s); err != nil {
			l.localCopyFailed(dir, err)
			return
		}
	}
	for _, d := range c.Delegations {
		if err := dir.PutDelegation(d); err != nil {
			l.localCopyFailed(dir, err)
			return
		}
	}
	l.writeMarker(dir, revision)
}

func (l *Loader) writeMarker(dir *state.Dir, revision uint64) {
	f := l.fleet
	f.mu.Lock()
	broken := f.copyProblem != ""
	f.mu.Unlock()
	if broken {
		return
	}
	data, _ := json.Marshal(marker{Version: 1, Revision: revision, SyncedAt: time.Now().UTC()})
	if err := state.WriteFileAtomic(filepath.Join(dir.Path(), markerFile), append(data, '\n')); err != nil {
		l.localCopyFailed(dir, err)
	}
}

// localCopyFailed stops keeping the local copy: its marker is removed so
// that a later start does not serve an incomplete copy.
func (l *Loader) localCopyFailed(dir *state.Dir, err error) {
	f := l.fleet
	f.mu.Lock()
	f.copyProblem = err.Error()
	f.mu.Unlock()
	os.Remove(filepath.Join(dir.Path(), markerFile))
	l.log.Error("the local copy of the state is no longer kept", "state_dir", dir.Path(), "error", err)
}

func readMarker(dir *state.Dir) (*marker, error) {
	data, err := os.ReadFile(filepath.Join(dir.Path(), markerFile))
	if err != nil {
		return nil, err
	}
	var m marker
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w", markerFile, err)
	}
	if m.Version != 1 {
		return nil, fmt.Errorf("%s: format version %d is not supported", markerFile, m.Version)
	}
	return &m, nil
}

// restoreLocalCopy serves the state directory's copy of the last synced
// state, at its revision and stale from the time it was synced.
func (l *Loader) restoreLocalCopy(ctx context.Context, dir *state.Dir) error {
	f := l.fleet
	m, err := readMarker(dir)
	if err != nil {
		return err
	}
	contents, err := dir.Load()
	if err != nil {
		return err
	}
	if len(contents.Problems) > 0 {
		// An incomplete copy could give back what a lost entry withdrew.
		return fmt.Errorf("the copy is incomplete, %d entries cannot be read (the first: %s)", len(contents.Problems), contents.Problems[0])
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	problems, err := l.restoreLocked(ctx, dir.Path(), contents)
	l.stateMu.Lock()
	l.stateProblems = problems
	l.stateMu.Unlock()
	if err != nil {
		return err
	}
	f.applied.Store(m.Revision)
	l.genState.Revision = m.Revision
	f.mu.Lock()
	f.source = "local copy"
	f.lastConfirmed = m.SyncedAt
	f.mu.Unlock()
	l.installStateLocked()
	l.log.Warn("serving the local copy of the state until the database is reachable", "state_dir", dir.Path(),
		"revision", m.Revision, "synced_at", m.SyncedAt)
	return nil
}

// followFleet applies the database's changes until ctx ends.
func (l *Loader) followFleet(ctx context.Context) {
	f := l.fleet
	go func() {
		backoff := 100 * time.Millisecond
		for ctx.Err() == nil {
			err := f.db.Listen(ctx, func(uint64) { f.poke() })
			if ctx.Err() != nil {
				return
			}
			f.failed(err)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(2*backoff, 2*time.Second)
		}
	}()
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				l.checkStaleness()
			}
		}
	}()
	poll := time.NewTicker(f.opts.PollInterval)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
		case <-poll.C:
		}
		l.catchUp(ctx)
	}
}

// catchUp applies every change the database holds beyond this sidecar's.
// Its end, successful or not, wakes the decisions waiting for a revision.
func (l *Loader) catchUp(ctx context.Context) {
	f := l.fleet
	defer f.signalProgress()
	f.mu.Lock()
	migrated := f.migrated
	f.mu.Unlock()
	if !migrated {
		// Started while the database was down: it may be new.
		mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, _, err := f.db.Migrate(mctx)
		cancel()
		if err != nil {
			f.failed(err)
			return
		}
		f.mu.Lock()
		f.migrated = true
		f.mu.Unlock()
	}
	for ctx.Err() == nil {
		start := time.Now()
		after := f.applied.Load()
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		changes, head, err := f.db.ChangesAfter(cctx, after, 500)
		cancel()
		if err != nil {
			f.failed(err)
			return
		}
		if head < after {
			// Every revision applied here came from the database.
			f.failed(fmt.Errorf("the database's head revision %d is behind this sidecar's %d: was it restored from an older backup?", head, after))
			return
		}
		f.seenHead(head)
		l.mu.Lock()
		err = l.applyChangesLocked(ctx, changes)
		l.mu.Unlock()
		if err != nil {
			f.failed(err)
			return
		}
		switch {
		case f.applied.Load() >= head:
			// Beyond it too when this sidecar wrote meanwhile.
			f.confirmed(start, head)
			l.checkStaleness()
			return
		case len(changes) == 0:
			return // a gap: the next notification or poll reads again
		}
	}
}

// applyChangesLocked applies a contiguous run of changes after the applied
// revision, in order, and stops at a gap. l.mu must be held.
func (l *Loader) applyChangesLocked(ctx context.Context, changes []pgstate.Change) error {
	f := l.fleet
	before := f.applied.Load()
	defer func() {
		if after := f.applied.Load(); after != before {
			l.installStateLocked()
			if dir := l.stateDir(); dir != nil {
				l.writeMarker(dir, after)
			}
			f.signalProgress()
		}
	}()
	for i := range changes {
		c := &changes[i]
		applied := f.applied.Load()
		if c.Revision <= applied {
			continue
		}
		if c.Revision != applied+1 {
			return nil
		}
		ev, err := l.replicatedEvent(c)
		if err == nil {
			_, err = l.runLocked(ctx, ev)
		}
		if err != nil {
			// Never skipped: the follower tries again, and the state goes
			// stale meanwhile.
			return fmt.Errorf("apply change %d (%s, written by %s): %w", c.Revision, c.Subject(), c.Origin, err)
		}
		f.applied.Store(c.Revision)
	}
	return nil
}

// replicatedEvent is the pipeline event of a change read from the log.
func (l *Loader) replicatedEvent(c *pgstate.Change) (*Event, error) {
	ev := &Event{Started: time.Now(), StateRevision: c.Revision, Replicated: true}
	r := l.reader()
	switch {
	case c.Service != nil:
		sf := &state.ServiceFile{Name: c.Service.Name, Document: c.Service.Document}
		doc, err := sf.DocumentMap()
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", c.Service.Name, err)
		}
		ev.Kind = KindCreate
		if prev, _ := r.Registration(c.Service.Name); prev != nil {
			ev.Kind = KindUpdate
		}
		ev.Subject = Subject{Type: SubjectService, Name: c.Service.Name}
		ev.Service = &ServiceChange{Name: c.Service.Name, Document: doc, At: c.Service.RegisteredAt}
	case c.Request != nil:
		q := c.Request
		ev.Kind = KindCreate
		if prev, _ := r.DelegationRequest(q.Tenant, q.Application, q.Group); prev != nil {
			ev.Kind = KindUpdate
		}
		ev.Subject = Subject{Type: SubjectDelegation, Name: q.Tenant + "/" + q.Application + "/" + q.Group}
		ev.Delegation = &DelegationChange{Tenant: q.Tenant, Application: q.Application, Group: q.Group, Operations: q.Operations, At: q.At}
	case c.Consent != nil:
		q := c.Consent
		ev.Kind = KindUpdate
		ev.Subject = Subject{Type: SubjectDelegation, Name: q.Tenant + "/" + q.Application + "/" + q.Group + "/" + q.Member}
		ev.Delegation = &DelegationChange{Tenant: q.Tenant, Application: q.Application, Group: q.Group, Consent: true,
			Member: q.Member, Enabled: q.Enabled, At: q.At}
	default:
		return nil, errors.New("the change holds nothing")
	}
	return ev, nil
}

// installStateLocked installs the current generation again when the state
// it should carry (revision, staleness) changed without its facts
// changing. l.mu must be held.
func (l *Loader) installStateLocked() {
	gen := l.engine.Current()
	if gen == nil || gen.State == l.genState {
		return
	}
	l.installGenerationLocked(gen.Facts, gen.Policy, gen.Revisions, gen.LoadedAt)
}

// checkStaleness marks the generation stale, or current again, when the
// time since the last confirmation crossed the limit.
func (l *Loader) checkStaleness() {
	f := l.fleet
	stale := f.isStale(time.Now())
	if f.stale.Load() == stale {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// Again under the lock: a confirmation may have come in meanwhile.
	if stale = f.isStale(time.Now()); f.stale.Load() == stale {
		return
	}
	f.stale.Store(stale)
	l.genState.Stale = stale
	l.installStateLocked()
	if stale {
		l.log.Error("run-time state is stale: consent-based allows are denied until the database confirms it is current",
			"max_staleness", f.opts.MaxStaleness, "applied_revision", f.applied.Load())
	} else {
		l.log.Info("run-time state is current again", "applied_revision", f.applied.Load())
	}
}

// WaitForState catches up with the database until the installed generation
// includes the revision, for at most ConsistencyWait (decision.StateWaiter).
// While the database cannot be reached no revision can arrive: it returns
// after the catch-up it asked for fails, rather than holding the decision
// for the whole wait.
func (l *Loader) WaitForState(ctx context.Context, revision uint64) {
	f := l.fleet
	if f == nil {
		return
	}
	timer := time.NewTimer(f.opts.ConsistencyWait)
	defer timer.Stop()
	for {
		ch := f.progressChan()
		if gen := l.engine.Current(); gen != nil && gen.State.Revision >= revision {
			return
		}
		f.poke()
		select {
		case <-ch:
			if gen := l.engine.Current(); gen != nil && gen.State.Revision < revision && !f.isConnected() {
				return
			}
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// lockRuntime serialises a run-time change: it takes the loader's lock
// and, in fleet mode, first begins the database write, which takes the
// fleet's write lock, and applies every change committed since this
// sidecar's last, so that the change is checked against the fleet's
// current state. The event then carries the write for the state-db-write
// processor. unlock rolls back what was not committed.
func (l *Loader) lockRuntime(ctx context.Context, ev *Event) (unlock func(), err error) {
	f := l.fleet
	if f == nil {
		l.mu.Lock()
		return l.mu.Unlock, nil
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.opts.WriteTimeout)
	start := time.Now()
	w, err := f.db.BeginWrite(wctx, f.opts.Origin)
	if err != nil {
		cancel()
		f.failed(err)
		return nil, &StateUnavailableError{Err: err}
	}
	l.mu.Lock()
	unlock = func() {
		w.Rollback(wctx)
		l.mu.Unlock()
		cancel()
	}
	changes, err := w.ChangesAfter(wctx, f.applied.Load())
	if err == nil {
		err = l.applyChangesLocked(ctx, changes)
	}
	if err != nil {
		unlock()
		f.failed(err)
		return nil, &StateUnavailableError{Err: err}
	}
	f.confirmed(start, f.applied.Load())
	ev.stateWrite = w
	ev.stateWriteCtx = wctx
	return unlock, nil
}

// writeStateDB (processor state-db-write) appends a run-time change to the
// fleet's change log and commits it, inside the store transaction: a change
// the database refused is rolled back here, and one that is answered is
// committed there.
func writeStateDB(_ context.Context, ev *Event, _ *store.WriteTxn) error {
	w := ev.stateWrite
	if w == nil {
		return nil
	}
	var c pgstate.Change
	switch {
	case ev.Service != nil && ev.Service.Stored:
		s := ev.Service
		c.Service = &pgstate.Service{Name: s.Name, Document: s.Canonical, RegisteredAt: s.At}
	case ev.Delegation != nil && ev.Delegation.Stored && ev.Delegation.Consent:
		d := ev.Delegation
		c.Consent = &pgstate.Consent{Tenant: d.Tenant, Application: d.Application, Group: d.Group, Member: d.Member, Enabled: d.Enabled, At: d.At}
	case ev.Delegation != nil && ev.Delegation.Stored:
		d := ev.Delegation
		c.Request = &pgstate.DelegationRequest{Tenant: d.Tenant, Application: d.Application, Group: d.Group, Operations: d.Operations, At: d.At}
	default:
		return nil
	}
	rev, err := w.Append(ev.stateWriteCtx, &c)
	if err == nil {
		err = w.Commit(ev.stateWriteCtx)
	}
	if err != nil {
		return &StateUnavailableError{Err: err}
	}
	ev.StateRevision = rev
	if ev.Service != nil {
		ev.Service.Persisted = true
	}
	if ev.Delegation != nil {
		ev.Delegation.Persisted = true
	}
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
