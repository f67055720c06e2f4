package loader

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/verdict-authz/verdict/loader/state"
)

type marker struct {
	Version  int       `json:"version"`
	Revision uint64    `json:"revision"`
	SyncedAt time.Time `json:"synced_at"`
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
