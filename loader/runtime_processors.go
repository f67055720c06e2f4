package loader

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

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
//	890 state-db-write        with --state-db, appends the change to the fleet's change log and commits it (fleet_write.go)
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

func validateService(_ context.Context, ev *Event, txn *store.WriteTxn) error {
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

func closeUnchangedService(_ context.Context, ev *Event, _ *store.WriteTxn) error {
	c := ev.Service
	if c != nil && c.Previous != nil && bytes.Equal(c.Previous.Document, c.Canonical) {
		ev.Close()
	}
	return nil
}

func storeService(_ context.Context, ev *Event, txn *store.WriteTxn) error {
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

func checkDelegation(_ context.Context, ev *Event, txn *store.WriteTxn) error {
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
	if member != "" {
		m, err := r.Member(tenant, member)
		if err != nil {
			return err
		}
		if m == nil {
			return &NotFoundError{What: "member", Message: fmt.Sprintf("tenant %q has no member %q", tenant, member)}
		}
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

func closeUnchangedDelegation(_ context.Context, ev *Event, txn *store.WriteTxn) error {
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

func storeDelegation(_ context.Context, ev *Event, txn *store.WriteTxn) error {
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

func storeRestoredState(_ context.Context, ev *Event, txn *store.WriteTxn) error {
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

// writeState (processor state-write) writes a run-time change to the state
// directory before the transaction commits (and so before the change is
// acknowledged); without a state directory changes are kept in memory.
func (l *Loader) writeState(_ context.Context, ev *Event, txn *store.WriteTxn) error {
	dir := l.stateDir()
	if dir == nil {
		return nil
	}
	if l.fleet != nil {
		// The directory holds the local copy of the fleet's state: the
		// database has the change, so a copy that cannot be written is
		// given up (and not served at a start), not the change.
		if err := l.writeStateDir(dir, ev, txn); err != nil {
			l.localCopyFailed(dir, err)
		}
		return nil
	}
	return l.writeStateDir(dir, ev, txn)
}

func (l *Loader) writeStateDir(dir *state.Dir, ev *Event, txn *store.WriteTxn) error {
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

// registerRuntimeProcessors registers the run-time changes' processors,
// one row each; the functions are above, in the same order.
func (l *Loader) registerRuntimeProcessors() {
	l.pipeline.RegisterSteps(
		Step{Name: "service-validate", Order: orderServiceValidate, Required: true, Process: validateService,
			Description: "parses a service registered at run time with the bundle rules (routes, permittable groups); unknown fields are warnings"},
		Step{Name: "service-unchanged", Order: orderServiceUnchanged, Process: closeUnchangedService,
			Description: "closes a registration whose document is the one already registered (PUT is idempotent)"},
		Step{Name: "service-store", Order: orderServiceStore, Required: true, Process: storeService,
			Description: "stores a registration, which overrides the bundles' service of the same name; route tables are rebuilt in the same transaction"},
		Step{Name: "delegation-check", Order: orderDelegationCheck, Required: true, Process: checkDelegation,
			Description: "resolves a delegation request's or consent's tenant, permittable group, member and earlier request; unknown ones are refused (404)"},
		Step{Name: "delegation-unchanged", Order: orderDelegationUnchanged, Process: closeUnchangedDelegation,
			Description: "closes a delegation request or consent identical to the one already recorded at run time"},
		Step{Name: "delegation-store", Order: orderDelegationStore, Required: true, Process: storeDelegation,
			Description: "stores a delegation request or consent beside the bundles' delegations; the tenant's effective entries are rebuilt in the same transaction"},
		Step{Name: "state-restore", Order: orderStateRestore, Required: true, Process: storeRestoredState,
			Description: "stores the registrations, delegation requests and consents read from the state directory at start; an entry that no longer validates is reported (and verdict run refuses to start with it)"},
		Step{Name: "state-db-write", Order: orderStateDBWrite, Required: true, Process: writeStateDB,
			Description: "with --state-db, appends a registration, delegation request or consent to the fleet's change log and commits it before the change commits here and is answered; every sidecar then applies it"},
		Step{Name: "state-write", Order: orderStateWrite, Required: true, Process: l.writeState,
			Description: "writes a registration, delegation request or consent durably to --state-dir (temporary file, fsync, rename, fsync of the directory) before the change commits and is answered"},
	)
}

// --- the loader's run-time API ------------------------------------------------
