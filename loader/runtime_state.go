package loader

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/verdict-authz/verdict/loader/state"
)

func (l *Loader) stateDir() *state.Dir {
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	return l.state
}

// StateOptions are how OpenState treats entries of the state directory
// that cannot be used.
type StateOptions struct {
	// Quarantine moves entries that cannot be read or restored to the state
	// directory's quarantine/ and goes on without them. What they held is
	// lost: a withdrawn consent they recorded applies again. Without it,
	// OpenState refuses them with an *UnusableStateError.
	Quarantine bool
}

// UnusableStateError is a state directory holding entries that cannot be
// read or restored. Leaving an entry out could give back access it took
// away (a consent withdrawn, a registration replacing a bundle's service),
// so verdict does not start without them unless told to.
type UnusableStateError struct {
	Dir      string
	Problems []state.Problem
}

func (e *UnusableStateError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "state directory %s holds %d entr%s that cannot be used:", e.Dir, len(e.Problems), plural(len(e.Problems), "y", "ies"))
	for _, p := range e.Problems {
		b.WriteString("\n  " + p.String())
	}
	b.WriteString("\nleaving an entry out could give back access it withdrew, so none is skipped: restore the files from a backup, or fix or remove them")
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// OpenState opens (creating it when missing) the state directory, reads the
// registrations, delegation requests and consents kept there and stores them
// as one change. Files of an earlier verdict's naming are renamed first. An
// entry that cannot be read or restored is an *UnusableStateError, unless
// opts.Quarantine moves it aside (it is then logged and listed in GET
// /v1/status). From then on every run-time change is written there before
// it is acknowledged. Call it before the bundles are loaded, so that
// bundles may refer to registered services and permittable groups.
func (l *Loader) OpenState(ctx context.Context, path string, opts StateOptions) error {
	dir, err := state.Open(path)
	if err != nil {
		return err
	}
	contents, err := dir.Load()
	if err != nil {
		return err
	}
	for _, r := range contents.Renamed {
		l.log.Info("state file renamed to this version's file name", "state_dir", dir.Path(), "from", r.From, "to", r.To)
	}
	problems, err := l.RestoreState(ctx, dir.Path(), contents)
	if err != nil {
		return fmt.Errorf("restore state from %s: %w", dir.Path(), err)
	}
	if len(problems) > 0 && !opts.Quarantine {
		return &UnusableStateError{Dir: dir.Path(), Problems: problems}
	}
	now := time.Now()
	for i, p := range problems {
		to, err := dir.Quarantine(p.File, now)
		if err != nil {
			return err
		}
		problems[i].Message += " (moved to " + to + ")"
		l.log.Error("state entry quarantined: what it held is lost", "state_dir", dir.Path(), "file", p.File, "problem", p.Message, "moved_to", to)
	}
	l.stateMu.Lock()
	l.state = dir
	l.stateProblems = problems
	l.stateMu.Unlock()
	l.log.Info("state restored", "state_dir", dir.Path(), "services", len(contents.Services),
		"delegations", len(contents.Delegations), "quarantined", len(problems))
	return nil
}

// RestoreState stores the run-time changes read from the state directory
// at path — registrations, delegation requests and consents — through the
// change pipeline, as OpenState does at start, without making path the
// directory later changes are written to (verdict check and verdict test
// read a sidecar's state this way). It returns the entries it could not
// use (the files contents lists as problems, and the entries that no longer
// validate), and why; the others are stored.
func (l *Loader) RestoreState(ctx context.Context, path string, contents *state.Contents) ([]state.Problem, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.restoreLocked(ctx, path, contents)
}

// restoreLocked is RestoreState with l.mu held.
func (l *Loader) restoreLocked(ctx context.Context, path string, contents *state.Contents) ([]state.Problem, error) {
	ev := &Event{Kind: KindCreate, Subject: Subject{Type: SubjectState, Name: path}, Started: time.Now(),
		Restore: &RestoreChange{Contents: contents}}
	_, err := l.runLocked(ctx, ev)
	return append(append([]state.Problem(nil), contents.Problems...), ev.Restore.Problems...), err
}

// Persistent reports whether run-time changes outlive the process: they
// are written to a state directory or to the fleet's database.
func (l *Loader) Persistent() bool { return l.fleet != nil || l.StateDir() != "" }

// StateDir is the state directory's path ("" when changes are kept in
// memory only).
func (l *Loader) StateDir() string {
	if d := l.stateDir(); d != nil {
		return d.Path()
	}
	return ""
}
