package loader

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/verdict-authz/verdict/loader/state"
	"github.com/verdict-authz/verdict/loader/state/pgstate"
)

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
	gen := l.installed.Load()
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
// includes the revision, for at most ConsistencyWait (generation.StateWaiter).
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
		if gen := l.installed.Load(); gen != nil && gen.State.Revision >= revision {
			return
		}
		f.poke()
		select {
		case <-ch:
			if gen := l.installed.Load(); gen != nil && gen.State.Revision < revision && !f.isConnected() {
				return
			}
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}
