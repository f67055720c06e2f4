package loader

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/loader/state"
	"github.com/verdict-authz/verdict/loader/store"
)

// Run-time changes (README "Run-time registration and delegation") go through
// the same change pipeline as bundle reloads, so that status, logs and
// traces see them alike. Their synchronous processors, by order:
//
//	210 service-validate      parses the registered document like bundle data
//	220 service-unchanged     closes a registration identical to the current one
//	230 delegation-check      resolves the tenant, group, member and earlier request (404 otherwise)
//	240 delegation-unchanged  closes a request or consent identical to the current one
//	410 service-store         stores the registration; route tables are rebuilt in the same transaction
//	420 delegation-store      stores the request or consent; effective entries are rebuilt in the same transaction
//	430 state-restore         stores what was read from the state directory at start
//	890 state-db-write        with --state-db, appends the change to the fleet's change log and commits it (fleet.go)
//	900 state-write           writes the change durably to the state directory, inside the transaction:
//	                          a change that cannot be written is rolled back, and one that is acknowledged is on disk
const (
	orderServiceValidate      = 210
	orderServiceUnchanged     = 220
	orderDelegationCheck      = 230
	orderDelegationUnchanged  = 240
	orderServiceStore         = 410
	orderDelegationStore      = 420
	orderStateRestore         = 430
	orderStateDBWrite         = 890
	orderStateWrite           = 900
	maxRegisteredServiceBytes = 1 << 20
)

// ServiceChange is a service registered at run time (PUT /v1/services/{name}).
type ServiceChange struct {
	Name string
	// Document is the registration's body (routes and permittable groups,
	// as in a bundle's catalog), decoded with numbers as json.Number.
	Document map[string]any
	At       time.Time

	// Canonical is Document as canonical JSON, what is stored and persisted.
	Canonical json.RawMessage
	// Service is the parsed document; Warnings are its unknown fields.
	Service  *acl.Service
	Warnings []acl.Problem
	// Previous is the registration it replaces (nil when it is new).
	Previous *store.RegistrationRecord
	// OverridesBundle names the bundle whose service of the same name the
	// registration overrides.
	OverridesBundle string
	Stored          bool
	Persisted       bool
	// StateRevision: see DelegationChange.StateRevision.
	StateRevision uint64
}

// DelegationChange is an application's request for a permittable group or
// a member's consent or withdrawal, made at run time (README "Run-time registration and delegation").
type DelegationChange struct {
	Tenant      string
	Application string
	Group       string
	// Consent is set for a consent or withdrawal; otherwise the change is
	// the application's request for Operations.
	Consent    bool
	Operations []string
	Member     string
	Enabled    bool
	At         time.Time

	// Created reports a request the application had not made at run time
	// before.
	Created   bool
	Stored    bool
	Persisted bool
	// StateRevision is the fleet's state revision that includes the change
	// (fleet mode): the one it was written at, or for a change that
	// changed nothing, the revision applied when it was answered.
	StateRevision uint64
}

// RestoreChange carries the run-time changes read from the state directory
// at start.
type RestoreChange struct {
	Contents *state.Contents
	// Problems lists entries that were read but could not be restored.
	Problems []state.Problem
	Stored   bool
}

// NotFoundError is a run-time request naming something that does not exist
// (HTTP 404).
type NotFoundError struct {
	// What is "tenant", "permittable group", "member", "request" or
	// "service".
	What    string
	Message string
}

func (e *NotFoundError) Error() string { return e.Message }

// RequestError is a malformed run-time request (HTTP 400).
type RequestError struct {
	Field   string
	Message string
}

func (e *RequestError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// --- processors ----------------------------------------------------------------

type serviceValidateProcessor struct{}

func (serviceValidateProcessor) Name() string   { return "service-validate" }
func (serviceValidateProcessor) Order() int     { return orderServiceValidate }
func (serviceValidateProcessor) Required() bool { return true }
func (serviceValidateProcessor) Description() string {
	return "parses a service registered at run time with the bundle rules (routes, permittable groups); unknown fields are warnings"
}

func (serviceValidateProcessor) Process(_ context.Context, ev *Event, txn *store.WriteTxn) error {
	c := ev.Service
	if c == nil {
		return nil
	}
	var ps acl.Problems
	svc := acl.ParseService(c.Name, c.Document, acl.NewLoc(nil), &ps)
	c.Warnings = ps.Warnings()
	if err := ps.Err(); err != nil {
		return err
	}
	canonical, err := json.Marshal(c.Document)
	if err != nil {
		return &RequestError{Message: "the document cannot be encoded: " + err.Error()}
	}
	if len(canonical) > maxRegisteredServiceBytes {
		return &RequestError{Message: fmt.Sprintf("the document is larger than %d bytes", maxRegisteredServiceBytes)}
	}
	c.Service, c.Canonical = svc, canonical
	r := txn.Reader()
	if c.Previous, err = r.Registration(c.Name); err != nil {
		return err
	}
	bundled, err := r.BundleService(c.Name)
	if err != nil {
		return err
	}
	if bundled != nil {
		c.OverridesBundle = bundled.Bundle
	}
	return nil
}

type serviceUnchangedProcessor struct{}

func (serviceUnchangedProcessor) Name() string { return "service-unchanged" }
func (serviceUnchangedProcessor) Order() int   { return orderServiceUnchanged }
func (serviceUnchangedProcessor) Description() string {
	return "closes a registration whose document is the one already registered (PUT is idempotent)"
}

func (serviceUnchangedProcessor) Process(_ context.Context, ev *Event, _ *store.WriteTxn) error {
	c := ev.Service
	if c != nil && c.Previous != nil && bytes.Equal(c.Previous.Document, c.Canonical) {
		ev.Close()
	}
	return nil
}

type serviceStoreProcessor struct{}

func (serviceStoreProcessor) Name() string   { return "service-store" }
func (serviceStoreProcessor) Order() int     { return orderServiceStore }
func (serviceStoreProcessor) Required() bool { return true }
func (serviceStoreProcessor) Description() string {
	return "stores a registration, which overrides the bundles' service of the same name; route tables are rebuilt in the same transaction"
}

func (serviceStoreProcessor) Process(_ context.Context, ev *Event, txn *store.WriteTxn) error {
	c := ev.Service
	if c == nil {
		return nil
	}
	if c.Service == nil {
		return errors.New("no parsed service to store: the service-validate processor did not run")
	}
	if err := txn.PutRegistration(&store.RegistrationRecord{Name: c.Name, Service: c.Service, Document: c.Canonical, RegisteredAt: c.At}); err != nil {
		return err
	}
	c.Stored = true
	return nil
}

type delegationCheckProcessor struct{}

func (delegationCheckProcessor) Name() string   { return "delegation-check" }
func (delegationCheckProcessor) Order() int     { return orderDelegationCheck }
func (delegationCheckProcessor) Required() bool { return true }
func (delegationCheckProcessor) Description() string {
	return "resolves a delegation request's or consent's tenant, permittable group, member and earlier request; unknown ones are refused (404)"
}

func (delegationCheckProcessor) Process(_ context.Context, ev *Event, txn *store.WriteTxn) error {
	c := ev.Delegation
	if c == nil {
		return nil
	}
	r := txn.Reader()
	if !c.Consent {
		ops, err := acl.NormalizeOperations(c.Operations)
		if err != nil {
			return &RequestError{Field: "operations", Message: err.Error()}
		}
		c.Operations = ops
		if ev.Replicated {
			return nil
		}
		return checkDelegationRefs(r, c.Tenant, c.Application, c.Group, "", false)
	}
	if ev.Replicated {
		// Checked by the sidecar that wrote it; stored like a restored
		// consent even if this sidecar's bundles lack the tenant yet.
		return nil
	}
	return checkDelegationRefs(r, c.Tenant, c.Application, c.Group, c.Member, true)
}

// checkDelegationRefs resolves what a delegation request or consent names:
// the tenant, the permittable group, and for a consent (or a look-up of
// one) the member and the application's earlier request for the group.
func checkDelegationRefs(r *store.Reader, tenant, app, group, member string, asked bool) error {
	t, err := r.Tenant(tenant)
	if err != nil {
		return err
	}
	if t == nil {
		return &NotFoundError{What: "tenant", Message: fmt.Sprintf("unknown tenant %q", tenant)}
	}
	ok, err := r.HasPermittableGroup(group)
	if err != nil {
		return err
	}
	if !ok {
		return &NotFoundError{What: "permittable group", Message: fmt.Sprintf("unknown permittable group %q: no catalog or registered service declares it", group)}
	}
	if member != "" && t.Tenant.Members[member] == nil {
		return &NotFoundError{What: "member", Message: fmt.Sprintf("tenant %q has no member %q", tenant, member)}
	}
	if asked {
		entry, err := r.Delegation(tenant, app, group)
		if err != nil {
			return err
		}
		if entry == nil {
			return &NotFoundError{What: "request", Message: fmt.Sprintf("application %q never asked for permittable group %q in tenant %q (POST /v1/tenants/%s/applications/%s/permissions first)", app, group, tenant, tenant, app)}
		}
	}
	return nil
}

type delegationUnchangedProcessor struct{}

func (delegationUnchangedProcessor) Name() string { return "delegation-unchanged" }
func (delegationUnchangedProcessor) Order() int   { return orderDelegationUnchanged }
func (delegationUnchangedProcessor) Description() string {
	return "closes a delegation request or consent identical to the one already recorded at run time"
}

func (delegationUnchangedProcessor) Process(_ context.Context, ev *Event, txn *store.WriteTxn) error {
	c := ev.Delegation
	if c == nil {
		return nil
	}
	r := txn.Reader()
	if c.Consent {
		consents, err := r.Consents(c.Tenant, c.Application, c.Group)
		if err != nil {
			return err
		}
		for _, old := range consents {
			if old.Member == c.Member && old.Enabled == c.Enabled {
				ev.Close()
			}
		}
		return nil
	}
	old, err := r.DelegationRequest(c.Tenant, c.Application, c.Group)
	if err != nil {
		return err
	}
	if old != nil && slices.Equal(old.Operations, c.Operations) {
		ev.Close()
	}
	return nil
}

type delegationStoreProcessor struct{}

func (delegationStoreProcessor) Name() string   { return "delegation-store" }
func (delegationStoreProcessor) Order() int     { return orderDelegationStore }
func (delegationStoreProcessor) Required() bool { return true }
func (delegationStoreProcessor) Description() string {
	return "stores a delegation request or consent beside the bundles' delegations; the tenant's effective entries are rebuilt in the same transaction"
}

func (delegationStoreProcessor) Process(_ context.Context, ev *Event, txn *store.WriteTxn) error {
	c := ev.Delegation
	if c == nil {
		return nil
	}
	if c.Consent {
		if err := txn.PutConsent(&store.ConsentRecord{Tenant: c.Tenant, Application: c.Application, Group: c.Group,
			Member: c.Member, Enabled: c.Enabled, At: c.At}); err != nil {
			return err
		}
		c.Stored = true
		return nil
	}
	old, err := txn.Reader().DelegationRequest(c.Tenant, c.Application, c.Group)
	if err != nil {
		return err
	}
	c.Created = old == nil
	if err := txn.PutDelegationRequest(&store.DelegationRequestRecord{Tenant: c.Tenant, Application: c.Application,
		Group: c.Group, Operations: c.Operations, At: c.At}); err != nil {
		return err
	}
	c.Stored = true
	return nil
}

type stateRestoreProcessor struct{}

func (stateRestoreProcessor) Name() string   { return "state-restore" }
func (stateRestoreProcessor) Order() int     { return orderStateRestore }
func (stateRestoreProcessor) Required() bool { return true }
func (stateRestoreProcessor) Description() string {
	return "stores the registrations, delegation requests and consents read from the state directory at start; an entry that no longer validates is reported (and verdict run refuses to start with it)"
}

func (stateRestoreProcessor) Process(_ context.Context, ev *Event, txn *store.WriteTxn) error {
	c := ev.Restore
	if c == nil || c.Contents == nil {
		return nil
	}
	for _, f := range c.Contents.Services {
		unusable := func(msg string) {
			c.Problems = append(c.Problems, state.Problem{File: f.Path, Message: fmt.Sprintf("service %s: %s", f.Name, msg)})
		}
		doc, err := f.DocumentMap()
		if err != nil {
			unusable(err.Error())
			continue
		}
		var ps acl.Problems
		svc := acl.ParseService(f.Name, doc, acl.NewLoc(nil), &ps)
		if err := ps.Err(); err != nil {
			unusable("the registered document no longer validates: " + err.Error())
			continue
		}
		canonical, err := json.Marshal(doc)
		if err != nil {
			unusable(err.Error())
			continue
		}
		if err := txn.PutRegistration(&store.RegistrationRecord{Name: f.Name, Service: svc, Document: canonical, RegisteredAt: f.RegisteredAt}); err != nil {
			return err
		}
		c.Stored = true
	}
	for _, f := range c.Contents.Delegations {
		if f.Request != nil {
			ops, err := acl.NormalizeOperations(f.Request.Operations)
			if err != nil {
				c.Problems = append(c.Problems, state.Problem{File: f.Path,
					Message: fmt.Sprintf("delegation %s/%s/%s: request.operations: %v", f.Tenant, f.Application, f.Group, err)})
				continue
			}
			if err := txn.PutDelegationRequest(&store.DelegationRequestRecord{Tenant: f.Tenant, Application: f.Application,
				Group: f.Group, Operations: ops, At: f.Request.At}); err != nil {
				return err
			}
		}
		for _, m := range slices.Sorted(maps.Keys(f.Consents)) {
			cs := f.Consents[m]
			if err := txn.PutConsent(&store.ConsentRecord{Tenant: f.Tenant, Application: f.Application, Group: f.Group,
				Member: m, Enabled: cs.Enabled, At: cs.At}); err != nil {
				return err
			}
		}
		c.Stored = true
	}
	return nil
}

// stateWriteProcessor writes a run-time change to the state directory
// before the transaction commits (and so before the change is
// acknowledged); without a state directory changes are kept in memory.
type stateWriteProcessor struct{ l *Loader }

func (stateWriteProcessor) Name() string   { return "state-write" }
func (stateWriteProcessor) Order() int     { return orderStateWrite }
func (stateWriteProcessor) Required() bool { return true }
func (stateWriteProcessor) Description() string {
	return "writes a registration, delegation request or consent durably to --state-dir (temporary file, fsync, rename, fsync of the directory) before the change commits and is answered"
}

func (p stateWriteProcessor) Process(_ context.Context, ev *Event, txn *store.WriteTxn) error {
	dir := p.l.stateDir()
	if dir == nil {
		return nil
	}
	if p.l.fleet != nil {
		// The directory holds the local copy of the fleet's state: the
		// database has the change, so a copy that cannot be written is
		// given up (and not served at a start), not the change.
		if err := p.write(dir, ev, txn); err != nil {
			p.l.localCopyFailed(dir, err)
		}
		return nil
	}
	return p.write(dir, ev, txn)
}

func (p stateWriteProcessor) write(dir *state.Dir, ev *Event, txn *store.WriteTxn) error {
	if c := ev.Service; c != nil && c.Stored {
		if err := dir.PutService(&state.ServiceFile{Name: c.Name, RegisteredAt: c.At, Document: c.Canonical}); err != nil {
			return err
		}
		c.Persisted = true
	}
	if c := ev.Delegation; c != nil && c.Stored {
		r := txn.Reader()
		f := &state.DelegationFile{Tenant: c.Tenant, Application: c.Application, Group: c.Group}
		req, err := r.DelegationRequest(c.Tenant, c.Application, c.Group)
		if err != nil {
			return err
		}
		if req != nil {
			f.Request = &state.Request{Operations: req.Operations, At: req.At}
		}
		consents, err := r.Consents(c.Tenant, c.Application, c.Group)
		if err != nil {
			return err
		}
		if len(consents) > 0 {
			f.Consents = make(map[string]state.Consent, len(consents))
			for _, cs := range consents {
				f.Consents[cs.Member] = state.Consent{Enabled: cs.Enabled, At: cs.At}
			}
		}
		if err := dir.PutDelegation(f); err != nil {
			return err
		}
		c.Persisted = true
	}
	return nil
}

func (l *Loader) registerRuntimeProcessors() {
	l.pipeline.Register(
		serviceValidateProcessor{}, serviceUnchangedProcessor{}, serviceStoreProcessor{},
		delegationCheckProcessor{}, delegationUnchangedProcessor{}, delegationStoreProcessor{},
		stateRestoreProcessor{}, stateDBWriteProcessor{}, stateWriteProcessor{l: l},
	)
}

// --- the loader's run-time API ------------------------------------------------

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

// Registered lists the services registered at run time, as parsed.
func (l *Loader) Registered() ([]*acl.Service, error) { return registeredServices(l.reader()) }

// runLocked runs a run-time change through the pipeline and, when it stored
// something, installs a generation with the new facts (the policy does not
// change). l.mu must be held.
func (l *Loader) runLocked(ctx context.Context, ev *Event) (*decision.Generation, error) {
	snap, err := l.pipeline.Process(ctx, ev)
	ev.Change = ev.Kind
	if err != nil {
		ev.Err = err
		ev.Duration = time.Since(ev.Started)
		l.notify(ev)
		return nil, err
	}
	stored := (ev.Service != nil && ev.Service.Stored) || (ev.Delegation != nil && ev.Delegation.Stored) ||
		(ev.Restore != nil && ev.Restore.Stored)
	if ev.StateRevision > l.genState.Revision {
		l.genState.Revision = ev.StateRevision
	}
	gen := l.engine.Current()
	if stored && gen != nil {
		l.number++
		gen = &decision.Generation{
			Number:    l.number,
			Facts:     snap,
			Policy:    gen.Policy,
			LoadedAt:  time.Now(),
			Revisions: gen.Revisions,
			State:     l.genState,
		}
		l.engine.Install(gen)
		ev.Generation = gen.Number
		l.status.setGeneration(gen.Number)
	}
	if stored && (ev.Service != nil || ev.Restore != nil) {
		// The services changed: so may the actions statements can name.
		l.publishWarningsLocked()
	}
	ev.Duration = time.Since(ev.Started)
	l.notify(ev)
	return gen, nil
}

// RegisterService registers a service at run time, or replaces its earlier
// registration (PUT /v1/services/{name}). The document is validated like a
// bundle's catalog service; the registration overrides the bundles' service
// of the same name, takes effect for the next decision and, with a state
// directory, is on disk before this returns. Registering the same document
// again changes nothing.
func (l *Loader) RegisterService(ctx context.Context, name string, doc map[string]any) (*ServiceChange, uint64, error) {
	c := &ServiceChange{Name: name, Document: doc, At: time.Now().UTC()}
	if err := checkServiceName(name); err != nil {
		return c, 0, err
	}
	ev := &Event{Kind: KindCreate, Subject: Subject{Type: SubjectService, Name: name}, Started: time.Now(), Service: c,
		Origin: context.WithoutCancel(ctx)}
	unlock, err := l.lockRuntime(ctx, ev)
	if err != nil {
		return c, 0, err
	}
	defer unlock()
	if prev, _ := l.store.Snapshot().Read().Registration(name); prev != nil {
		ev.Kind = KindUpdate
	}
	gen, err := l.runLocked(ctx, ev)
	if err != nil {
		return c, 0, err
	}
	c.StateRevision = l.recordWriteLocked(ev)
	if c.Stored {
		// A new service or permittable group may make a rejected bundle fit.
		l.retryFailedLocked(ctx, "")
	}
	var number uint64
	if gen != nil {
		number = gen.Number
	}
	return c, number, nil
}

// RequestDelegation records an application's request for operations on a
// permittable group of a tenant (POST
// /v1/tenants/{t}/applications/{app}/permissions). The application needs no
// earlier entry; the tenant and the group must exist. A new request for the
// same group replaces the application's earlier run-time request.
func (l *Loader) RequestDelegation(ctx context.Context, tenant, app, group string, operations []string) (*DelegationChange, error) {
	c := &DelegationChange{Tenant: tenant, Application: app, Group: group, Operations: operations, At: time.Now().UTC()}
	return c, l.delegationChange(ctx, c)
}

// SetConsent records a member's consent (enabled) or withdrawal for an
// application's permittable group (PUT
// …/permissions/{group}/users/{member}/enabled). The application must have
// asked for the group, at run time or in the tenant's bundle.
func (l *Loader) SetConsent(ctx context.Context, tenant, app, group, member string, enabled bool) (*DelegationChange, error) {
	c := &DelegationChange{Tenant: tenant, Application: app, Group: group, Consent: true, Member: member, Enabled: enabled, At: time.Now().UTC()}
	return c, l.delegationChange(ctx, c)
}

// checkNames checks the tenant, application, group and member names of a
// run-time request or look-up (pairs of field and name): a name that is
// not acl.ValidName is a *RequestError naming the field.
func checkNames(names ...[2]string) error {
	for _, n := range names {
		if !acl.ValidName(n[1]) {
			return &RequestError{Field: n[0], Message: fmt.Sprintf("%q is not a valid name (1 to %d bytes of UTF-8, no control characters or /)", n[1], acl.MaxNameBytes)}
		}
	}
	return nil
}

// checkServiceName checks the name of a service in a run-time request or
// look-up.
func checkServiceName(name string) error {
	if !acl.ValidServiceName(name) {
		return &RequestError{Field: "name", Message: fmt.Sprintf("%q is not a valid service name (1 to %d bytes of UTF-8, no control characters, /, * or space)", name, acl.MaxNameBytes)}
	}
	return nil
}

func (l *Loader) delegationChange(ctx context.Context, c *DelegationChange) error {
	names := [][2]string{{"tenant", c.Tenant}, {"application", c.Application}, {"group", c.Group}}
	if c.Consent {
		names = append(names, [2]string{"member", c.Member})
	}
	if err := checkNames(names...); err != nil {
		return err
	}
	name := c.Tenant + "/" + c.Application + "/" + c.Group
	if c.Consent {
		name += "/" + c.Member
	}
	ev := &Event{Kind: KindUpdate, Subject: Subject{Type: SubjectDelegation, Name: name}, Started: time.Now(), Delegation: c,
		Origin: context.WithoutCancel(ctx)}
	unlock, err := l.lockRuntime(ctx, ev)
	if err != nil {
		return err
	}
	defer unlock()
	if !c.Consent {
		if prev, _ := l.store.Snapshot().Read().DelegationRequest(c.Tenant, c.Application, c.Group); prev == nil {
			ev.Kind = KindCreate
		}
	}
	if _, err := l.runLocked(ctx, ev); err != nil {
		return err
	}
	c.StateRevision = l.recordWriteLocked(ev)
	return nil
}

// recordWriteLocked records that this sidecar applied the change it wrote to
// the fleet's log (applied revision, local copy's marker, waiters) and
// returns the revision the change answers: the one it was written at or,
// when it changed nothing, the one applied. l.mu must be held.
func (l *Loader) recordWriteLocked(ev *Event) uint64 {
	if l.fleet == nil {
		return 0
	}
	if ev.StateRevision > 0 {
		l.fleet.applied.Store(ev.StateRevision)
		l.fleet.seenHead(ev.StateRevision)
		if dir := l.stateDir(); dir != nil {
			l.writeMarker(dir, ev.StateRevision)
		}
		l.fleet.signalProgress()
		return ev.StateRevision
	}
	return l.fleet.applied.Load()
}

// ServiceInfo describes a service decisions use (GET /v1/services).
type ServiceInfo struct {
	Name string `json:"name"`
	// Source is "registration" (registered at run time) or "bundle".
	Source string `json:"source"`
	// Bundle names the bundle that declares the service; for a registration,
	// the bundle whose service of the same name it overrides.
	Bundle       string     `json:"bundle,omitempty"`
	RegisteredAt *time.Time `json:"registered_at,omitempty"`
	// Document is the service document: as registered, or as the bundle
	// declares it (routes and permittable groups).
	Document json.RawMessage `json:"document"`
}

func (l *Loader) reader() *store.Reader { return l.store.Snapshot().Read() }

// Services lists every service decisions use, by name: registrations
// override the bundles' services of the same name.
func (l *Loader) Services() ([]ServiceInfo, error) {
	r := l.reader()
	regs, err := r.Registrations()
	if err != nil {
		return nil, err
	}
	bundled, err := r.Services()
	if err != nil {
		return nil, err
	}
	byName := map[string]ServiceInfo{}
	for _, s := range bundled {
		doc, err := json.Marshal(acl.ServiceDocument(s.Service))
		if err != nil {
			return nil, fmt.Errorf("encode service %s: %w", s.Name, err)
		}
		byName[s.Name] = ServiceInfo{Name: s.Name, Source: "bundle", Bundle: s.Bundle, Document: doc}
	}
	for _, reg := range regs {
		at := reg.RegisteredAt
		byName[reg.Name] = ServiceInfo{Name: reg.Name, Source: "registration", Bundle: byName[reg.Name].Bundle, RegisteredAt: &at, Document: reg.Document}
	}
	out := make([]ServiceInfo, 0, len(byName))
	for _, s := range byName {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Service describes the service decisions use under the name, or returns
// a *NotFoundError.
func (l *Loader) Service(name string) (*ServiceInfo, error) {
	if err := checkServiceName(name); err != nil {
		return nil, err
	}
	all, err := l.Services()
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].Name == name {
			return &all[i], nil
		}
	}
	return nil, &NotFoundError{What: "service", Message: fmt.Sprintf("no bundle declares service %q and none was registered under that name", name)}
}

// DelegationInfo is an application's effective entry for a permittable
// group: the tenant bundle's delegation with the run-time request and
// consents layered on top.
type DelegationInfo struct {
	Tenant      string `json:"tenant"`
	Application string `json:"application"`
	Group       string `json:"group"`
	// Operations is the union of the bundle's and the run-time request's.
	Operations []string `json:"operations"`
	// EnabledBy are the members who enabled the application: the bundle's
	// enabled_by, with run-time consents added and withdrawals removed.
	EnabledBy []string `json:"enabled_by"`
	// InBundle reports whether the tenant's bundle declares the entry.
	InBundle bool `json:"in_bundle"`
	// RequestedAt is when the application asked at run time.
	RequestedAt *time.Time `json:"requested_at,omitempty"`
	// Consents are the run-time consents and withdrawals, by member.
	Consents map[string]state.Consent `json:"consents,omitempty"`
}

func delegationInfo(r *store.Reader, rec *store.DelegationRecord) (DelegationInfo, error) {
	d := DelegationInfo{Tenant: rec.Tenant, Application: rec.Application, Group: rec.Group,
		Operations: rec.Operations, EnabledBy: rec.EnabledBy, InBundle: rec.InBundle, RequestedAt: rec.RequestedAt}
	consents, err := r.Consents(rec.Tenant, rec.Application, rec.Group)
	if err != nil {
		return d, err
	}
	if len(consents) > 0 {
		d.Consents = make(map[string]state.Consent, len(consents))
		for _, c := range consents {
			d.Consents[c.Member] = state.Consent{Enabled: c.Enabled, At: c.At}
		}
	}
	return d, nil
}

// Delegations lists an application's entries in a tenant, by group. An
// unknown tenant is a *NotFoundError; an application that asked nothing has
// an empty list.
func (l *Loader) Delegations(tenant, app string) ([]DelegationInfo, error) {
	if err := checkNames([2]string{"tenant", tenant}, [2]string{"application", app}); err != nil {
		return nil, err
	}
	r := l.reader()
	t, err := r.Tenant(tenant)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, &NotFoundError{What: "tenant", Message: fmt.Sprintf("unknown tenant %q", tenant)}
	}
	recs, err := r.Delegations(tenant, app)
	if err != nil {
		return nil, err
	}
	out := make([]DelegationInfo, 0, len(recs))
	for _, rec := range recs {
		d, err := delegationInfo(r, rec)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// Delegation returns an application's entry for a group; a
// *NotFoundError when the tenant, the group or the request is unknown.
func (l *Loader) Delegation(tenant, app, group string) (*DelegationInfo, error) {
	if err := checkNames([2]string{"tenant", tenant}, [2]string{"application", app}, [2]string{"group", group}); err != nil {
		return nil, err
	}
	r := l.reader()
	if err := checkDelegationRefs(r, tenant, app, group, "", true); err != nil {
		return nil, err
	}
	rec, err := r.Delegation(tenant, app, group)
	if err != nil {
		return nil, err
	}
	d, err := delegationInfo(r, rec)
	return &d, err
}

// Consent reports whether the member has enabled the application for the
// group (the effective answer decisions use); a *NotFoundError when the
// tenant, group, member or request is unknown.
func (l *Loader) Consent(tenant, app, group, member string) (bool, error) {
	if err := checkNames([2]string{"tenant", tenant}, [2]string{"application", app}, [2]string{"group", group}, [2]string{"member", member}); err != nil {
		return false, err
	}
	r := l.reader()
	if err := checkDelegationRefs(r, tenant, app, group, member, true); err != nil {
		return false, err
	}
	rec, err := r.Delegation(tenant, app, group)
	if err != nil {
		return false, err
	}
	i := sort.SearchStrings(rec.EnabledBy, member)
	return i < len(rec.EnabledBy) && rec.EnabledBy[i] == member, nil
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
