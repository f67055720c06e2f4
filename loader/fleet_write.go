package loader

import (
	"context"
	"time"

	"github.com/verdict-authz/verdict/loader/state/pgstate"
	"github.com/verdict-authz/verdict/loader/store"
)

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
