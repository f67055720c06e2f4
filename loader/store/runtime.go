package store

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/verdict-authz/verdict/loader/acl"
)

// Run-time changes live in their own tables, beside the bundles' rows:
//
//   - registrations: services registered with PUT /v1/services/{name}. A
//     registration overrides the bundles' service of the same name in the
//     route tables; a bundle reload neither removes nor replaces it.
//   - delegation_requests and delegation_consents: what applications asked
//     and members consented to at run time.
//   - delegations: the effective entries decisions read, the tenant
//     bundle's delegations with the run-time rows layered on top: the
//     operations are the union of the bundle's and the run-time request's,
//     and a member's run-time consent (true) or withdrawal (false) decides
//     over the bundle's enabled_by for that member. They are rebuilt for a
//     tenant inside the write transaction whenever its bundle rows or its
//     run-time rows change, so a reload never erases run-time entries.

// RegistrationRecord is a service registered at run time.
type RegistrationRecord struct {
	Name    string
	Service *acl.Service
	// Document is the registered document, as canonical JSON.
	Document     json.RawMessage
	RegisteredAt time.Time
}

// DelegationRequestRecord is an application's run-time request for
// operations on a permittable group of a tenant.
type DelegationRequestRecord struct {
	Tenant      string
	Application string
	Group       string
	Operations  []string
	At          time.Time
}

// ConsentRecord is a member's run-time consent (Enabled) or withdrawal.
type ConsentRecord struct {
	Tenant      string
	Application string
	Group       string
	Member      string
	Enabled     bool
	At          time.Time
}

// DelegationRecord is an effective delegation entry.
type DelegationRecord struct {
	Tenant      string
	Application string
	Group       string
	// Operations are sorted, each once.
	Operations []string
	// EnabledBy are the members who enabled the application, sorted.
	EnabledBy []string
	// InBundle reports whether the tenant's bundle declares the entry.
	InBundle bool
	// RequestedAt is when the application asked at run time (nil: never).
	RequestedAt *time.Time
	// Facts is the entry as Rego sees it: {operations: set, enabled_by: set}.
	Facts *ast.Term
}

// Reader returns a reader over the transaction's current state, its own
// writes included.
func (w *WriteTxn) Reader() *Reader { return &Reader{txn: w.txn} }

func (w *WriteTxn) markTenant(code string) {
	if w.dirtyTenants == nil {
		w.dirtyTenants = map[string]bool{}
	}
	w.dirtyTenants[code] = true
}

// PutRegistration stores a service registration, replacing an earlier one
// of the same name; the route tables are rebuilt before the commit.
func (w *WriteTxn) PutRegistration(rec *RegistrationRecord) error {
	if err := w.txn.Insert(tableRegistrations, rec); err != nil {
		return fmt.Errorf("insert registration %s: %w", rec.Name, err)
	}
	w.servicesChanged = true
	return nil
}

// PutDelegationRequest stores an application's run-time request.
func (w *WriteTxn) PutDelegationRequest(rec *DelegationRequestRecord) error {
	if err := w.txn.Insert(tableDelegationRequests, rec); err != nil {
		return fmt.Errorf("insert delegation request %s/%s/%s: %w", rec.Tenant, rec.Application, rec.Group, err)
	}
	w.markTenant(rec.Tenant)
	return nil
}

// PutConsent stores a member's run-time consent or withdrawal.
func (w *WriteTxn) PutConsent(rec *ConsentRecord) error {
	if err := w.txn.Insert(tableConsents, rec); err != nil {
		return fmt.Errorf("insert consent %s/%s/%s/%s: %w", rec.Tenant, rec.Application, rec.Group, rec.Member, err)
	}
	w.markTenant(rec.Tenant)
	return nil
}

func (w *WriteTxn) rebuildDirtyDelegations() error {
	codes := make([]string, 0, len(w.dirtyTenants))
	for c := range w.dirtyTenants {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	for _, c := range codes {
		if err := w.rebuildDelegations(c); err != nil {
			return err
		}
	}
	w.dirtyTenants = nil
	return nil
}

type delegationKey struct{ app, group string }

// rebuildDelegations recomputes a tenant's effective delegation entries.
func (w *WriteTxn) rebuildDelegations(code string) error {
	if _, err := w.txn.DeleteAll(tableDelegations, indexTenant, code); err != nil {
		return fmt.Errorf("delete delegations of %s: %w", code, err)
	}
	r := w.Reader()
	tenant, err := r.Tenant(code)
	if err != nil || tenant == nil {
		return err // no tenant: run-time rows wait for it to come back
	}
	type entry struct {
		rec     *DelegationRecord
		ops     map[string]bool
		enabled map[string]bool
	}
	entries := map[delegationKey]*entry{}
	get := func(app, group string) *entry {
		k := delegationKey{app, group}
		e := entries[k]
		if e == nil {
			e = &entry{rec: &DelegationRecord{Tenant: code, Application: app, Group: group}, ops: map[string]bool{}, enabled: map[string]bool{}}
			entries[k] = e
		}
		return e
	}
	for app, groups := range tenant.Tenant.Delegations {
		for group, d := range groups {
			e := get(app, group)
			e.rec.InBundle = true
			for _, op := range d.Operations {
				e.ops[op] = true
			}
			for _, m := range d.EnabledBy {
				e.enabled[m] = true
			}
		}
	}
	it, err := w.txn.Get(tableDelegationRequests, indexTenant, code)
	if err != nil {
		return fmt.Errorf("list delegation requests of %s: %w", code, err)
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		req := obj.(*DelegationRequestRecord)
		e := get(req.Application, req.Group)
		at := req.At
		e.rec.RequestedAt = &at
		for _, op := range req.Operations {
			e.ops[op] = true
		}
	}
	it, err = w.txn.Get(tableConsents, indexTenant, code)
	if err != nil {
		return fmt.Errorf("list consents of %s: %w", code, err)
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		c := obj.(*ConsentRecord)
		e := entries[delegationKey{c.Application, c.Group}]
		if e == nil {
			continue // the entry is gone from the bundle and was never requested at run time
		}
		if c.Enabled {
			e.enabled[c.Member] = true
		} else {
			delete(e.enabled, c.Member)
		}
	}
	for _, e := range entries {
		e.rec.Operations = sortedSet(e.ops)
		e.rec.EnabledBy = sortedSet(e.enabled)
		e.rec.Facts = ast.ObjectTerm(
			ast.Item(ast.StringTerm("operations"), StringSet(e.rec.Operations)),
			ast.Item(ast.StringTerm("enabled_by"), StringSet(e.rec.EnabledBy)),
		)
		if err := w.txn.Insert(tableDelegations, e.rec); err != nil {
			return fmt.Errorf("insert delegation %s/%s/%s: %w", code, e.rec.Application, e.rec.Group, err)
		}
	}
	return nil
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Registration returns the run-time registration of a service, or nil.
func (r *Reader) Registration(name string) (*RegistrationRecord, error) {
	obj, err := r.tx().First(tableRegistrations, indexID, name)
	if err != nil || obj == nil {
		return nil, wrap(err, "registration", name)
	}
	return obj.(*RegistrationRecord), nil
}

// Registrations lists every run-time registration, by name.
func (r *Reader) Registrations() ([]*RegistrationRecord, error) {
	it, err := r.tx().Get(tableRegistrations, indexID)
	if err != nil {
		return nil, fmt.Errorf("list registrations: %w", err)
	}
	var out []*RegistrationRecord
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out = append(out, obj.(*RegistrationRecord))
	}
	return out, nil
}

// Service returns the service decisions use under the name: the run-time
// registration when there is one, else the bundles' service; nil when
// neither exists.
func (r *Reader) Service(name string) (*acl.Service, error) {
	reg, err := r.Registration(name)
	if err != nil {
		return nil, err
	}
	if reg != nil {
		return reg.Service, nil
	}
	rec, err := r.BundleService(name)
	if err != nil || rec == nil {
		return nil, err
	}
	return rec.Service, nil
}

// HasPermittableGroup reports whether some service decisions use declares
// the permittable group.
func (r *Reader) HasPermittableGroup(group string) (bool, error) {
	regs, err := r.Registrations()
	if err != nil {
		return false, err
	}
	overridden := map[string]bool{}
	for _, reg := range regs {
		overridden[reg.Name] = true
		if _, ok := reg.Service.PermittableGroups[group]; ok {
			return true, nil
		}
	}
	svcs, err := r.Services()
	if err != nil {
		return false, err
	}
	for _, s := range svcs {
		if overridden[s.Name] {
			continue
		}
		if _, ok := s.Service.PermittableGroups[group]; ok {
			return true, nil
		}
	}
	return false, nil
}

// DelegationRequest returns an application's run-time request for a group,
// or nil.
func (r *Reader) DelegationRequest(tenant, app, group string) (*DelegationRequestRecord, error) {
	obj, err := r.tx().First(tableDelegationRequests, indexID, tenant, app, group)
	if err != nil || obj == nil {
		return nil, wrap(err, "delegation request", tenant+"/"+app+"/"+group)
	}
	return obj.(*DelegationRequestRecord), nil
}

// Consents lists the run-time consents and withdrawals for an
// application's group, by member.
func (r *Reader) Consents(tenant, app, group string) ([]*ConsentRecord, error) {
	// The trailing "" makes the prefix end at the group's terminator:
	// "rhy" must not list the consents of "rhythm".
	it, err := r.tx().Get(tableConsents, indexIDPrefix, tenant, app, group, "")
	if err != nil {
		return nil, fmt.Errorf("list consents of %s/%s/%s: %w", tenant, app, group, err)
	}
	var out []*ConsentRecord
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out = append(out, obj.(*ConsentRecord))
	}
	return out, nil
}

// Delegation returns the effective entry of an application for a group, or
// nil.
func (r *Reader) Delegation(tenant, app, group string) (*DelegationRecord, error) {
	obj, err := r.tx().First(tableDelegations, indexID, tenant, app, group)
	if err != nil || obj == nil {
		return nil, wrap(err, "delegation", tenant+"/"+app+"/"+group)
	}
	return obj.(*DelegationRecord), nil
}

// Delegations lists an application's effective entries in a tenant, by
// group.
func (r *Reader) Delegations(tenant, app string) ([]*DelegationRecord, error) {
	it, err := r.tx().Get(tableDelegations, indexIDPrefix, tenant, app, "")
	if err != nil {
		return nil, fmt.Errorf("list delegations of %s/%s: %w", tenant, app, err)
	}
	var out []*DelegationRecord
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out = append(out, obj.(*DelegationRecord))
	}
	return out, nil
}

// BundleService returns the bundles' service of the name (whether or not a
// registration overrides it), or nil.
func (r *Reader) BundleService(name string) (*ServiceRecord, error) {
	obj, err := r.tx().First(tableServices, indexID, name)
	if err != nil || obj == nil {
		return nil, wrap(err, "service", name)
	}
	return obj.(*ServiceRecord), nil
}

// RuntimeCounts counts the run-time rows: registrations, delegation
// requests and consents.
func (r *Reader) RuntimeCounts() (registrations, requests, consents int, err error) {
	count := func(table string) (int, error) {
		it, err := r.tx().Get(table, indexID)
		if err != nil {
			return 0, fmt.Errorf("count %s: %w", table, err)
		}
		n := 0
		for obj := it.Next(); obj != nil; obj = it.Next() {
			n++
		}
		return n, nil
	}
	if registrations, err = count(tableRegistrations); err != nil {
		return
	}
	if requests, err = count(tableDelegationRequests); err != nil {
		return
	}
	consents, err = count(tableConsents)
	return
}
