package loader

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/loader/generation"
	"github.com/verdict-authz/verdict/loader/state"
	"github.com/verdict-authz/verdict/loader/store"
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

// Registered lists the services registered at run time, as parsed.
func (l *Loader) Registered() ([]*acl.Service, error) { return registeredServices(l.reader()) }

// runLocked runs a run-time change through the pipeline and, when it stored
// something, installs a generation with the new facts (the policy does not
// change). l.mu must be held.
func (l *Loader) runLocked(ctx context.Context, ev *Event) (*generation.Generation, error) {
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
	gen := l.installed.Load()
	if stored && gen != nil {
		gen = l.installGenerationLocked(snap, gen.Policy, gen.Revisions, time.Now())
		ev.Generation = gen.Number
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
