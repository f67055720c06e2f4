package loader

import (
	"time"

	"github.com/verdict-authz/verdict/loader/state"
)

// RuntimeStatus is what GET /v1/status says about run-time changes.
type RuntimeStatus struct {
	// StateDir is where run-time changes are written; empty when they are
	// kept in memory only (no --state-dir) and lost at a restart.
	StateDir   string `json:"state_dir,omitempty"`
	Persistent bool   `json:"persistent"`
	// Registrations, DelegationRequests and Consents count what is held.
	Registrations      int `json:"registrations"`
	DelegationRequests int `json:"delegation_requests"`
	Consents           int `json:"consents"`
	// Applied and Rejected count the run-time changes since start.
	Applied  int `json:"applied"`
	Rejected int `json:"rejected"`
	// LastChange is when the last run-time change was applied.
	LastChange *time.Time `json:"last_change,omitempty"`
	// LastRejection is the last run-time change that was refused.
	LastRejection *RuntimeRejection `json:"last_rejection,omitempty"`
	// StateProblems lists the state files that were ignored at start.
	StateProblems []state.Problem `json:"state_problems"`
	// Digest is a SHA-256 of every run-time row: sidecars that hold the
	// same run-time state show the same digest.
	Digest string `json:"digest"`
	// Fleet describes the shared state database (--state-db).
	Fleet *FleetStatus `json:"fleet,omitempty"`
}

// RuntimeRejection is a refused run-time change.
type RuntimeRejection struct {
	At      time.Time `json:"at"`
	Subject Subject   `json:"subject"`
	Message string    `json:"message"`
}

// recordRuntime applies a NOTIFY event of a run-time change.
func (b *StatusBoard) recordRuntime(ev *Event) {
	if ev.Service == nil && ev.Delegation == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if ev.Generation > b.generation {
		b.generation = ev.Generation
	}
	at := ev.Started.Add(ev.Duration)
	if ev.Err != nil {
		b.runtime.Rejected++
		b.runtime.LastRejection = &RuntimeRejection{At: at, Subject: ev.Subject, Message: ev.Err.Error()}
		return
	}
	if ev.ClosedBy == "" {
		b.runtime.Applied++
		b.runtime.LastChange = &at
	}
}

// runtimeStatus completes the board's counters with the store's counts and
// the state directory.
func (l *Loader) runtimeStatus(rt *RuntimeStatus) *RuntimeStatus {
	if rt == nil {
		rt = &RuntimeStatus{}
	}
	r := l.reader()
	if regs, reqs, consents, err := r.RuntimeCounts(); err == nil {
		rt.Registrations, rt.DelegationRequests, rt.Consents = regs, reqs, consents
	}
	if digest, err := r.RuntimeDigest(); err == nil {
		rt.Digest = digest
	}
	rt.Fleet = l.FleetStatus()
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	if l.state != nil {
		rt.StateDir = l.state.Path()
		rt.Persistent = true
	}
	rt.StateProblems = append([]state.Problem{}, l.stateProblems...)
	return rt
}
