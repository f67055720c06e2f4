package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/loader/acl"
)

// Runtime is the run-time registration and delegation API (README
// "Run-time registration and delegation"); the loader implements it.
type Runtime interface {
	RegisterService(ctx context.Context, name string, doc map[string]any) (*loader.ServiceChange, uint64, error)
	Services() ([]loader.ServiceInfo, error)
	Service(name string) (*loader.ServiceInfo, error)
	RequestDelegation(ctx context.Context, tenant, app, group string, operations []string) (*loader.DelegationChange, error)
	SetConsent(ctx context.Context, tenant, app, group, member string, enabled bool) (*loader.DelegationChange, error)
	Delegations(tenant, app string) ([]loader.DelegationInfo, error)
	Delegation(tenant, app, group string) (*loader.DelegationInfo, error)
	Consent(tenant, app, group, member string) (bool, error)
	// Persistent reports whether changes outlive the process (a state
	// directory or the fleet's database).
	Persistent() bool
}

// registerRuntime adds the registration and delegation endpoints. Write
// endpoints need the admin token when one is configured.
func (s *Server) registerRuntime() {
	s.mux.HandleFunc("GET /v1/services", s.handleServices)
	s.mux.HandleFunc("GET /v1/services/{name}", s.handleService)
	s.mux.HandleFunc("PUT /v1/services/{name}", s.requireAdmin(s.handleRegisterService))
	s.mux.HandleFunc("/v1/services/{name}", s.handleServiceMethodNotAllowed)

	const perms = "/v1/tenants/{tenant}/applications/{app}/permissions"
	s.mux.HandleFunc("POST "+perms, s.requireAdmin(s.handleRequestDelegation))
	s.mux.HandleFunc("GET "+perms, s.handleDelegations)
	s.mux.HandleFunc("GET "+perms+"/{group}", s.handleDelegation)
	s.mux.HandleFunc("PUT "+perms+"/{group}/users/{member}/enabled", s.requireAdmin(s.handleSetConsent))
	s.mux.HandleFunc("GET "+perms+"/{group}/users/{member}/enabled", s.handleConsent)
}

// runtimeOrFail answers 404 when the server has no run-time API.
func (s *Server) runtimeOrFail(w http.ResponseWriter) Runtime {
	if s.opts.Runtime == nil {
		writeError(w, http.StatusNotFound, "not_found", "", "this server takes no run-time registrations or delegations")
	}
	return s.opts.Runtime
}

// RegistrationResponse answers PUT /v1/services/{name}.
type RegistrationResponse struct {
	loader.ServiceInfo
	// Created: no registration of the name existed; Changed: the document
	// differs from the registered one (false for an idempotent repeat).
	Created bool `json:"created"`
	Changed bool `json:"changed"`
	// Persisted: the registration is in the state directory (false without
	// --state-dir: it lasts until the process ends).
	Persisted bool `json:"persisted"`
	// Generation is the decision generation that includes it.
	Generation uint64 `json:"generation,omitempty"`
	// StateRevision is the fleet's state revision that includes it
	// (--state-db): a decision request may ask for it with
	// "consistency": {"at_least": N}.
	StateRevision uint64        `json:"state_revision,omitempty"`
	Warnings      []acl.Problem `json:"warnings"`
}

func (s *Server) handleRegisterService(w http.ResponseWriter, r *http.Request) {
	rt := s.runtimeOrFail(w)
	if rt == nil {
		return
	}
	name := r.PathValue("name")
	var doc map[string]any
	if !s.decodeJSON(w, r, &doc) {
		return
	}
	if doc == nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "", "the body must be a service document: a JSON object with routes and permittable_groups")
		return
	}
	c, gen, err := rt.RegisterService(r.Context(), name, doc)
	if err != nil {
		s.writeRuntimeError(w, err)
		return
	}
	resp := RegistrationResponse{
		ServiceInfo:   loader.ServiceInfo{Name: name, Source: "registration", Bundle: c.OverridesBundle, Document: c.Canonical},
		Created:       c.Previous == nil,
		Changed:       c.Stored,
		Persisted:     c.Persisted,
		Generation:    gen,
		StateRevision: c.StateRevision,
		Warnings:      c.Warnings,
	}
	at := c.At
	if !c.Stored && c.Previous != nil {
		at = c.Previous.RegisteredAt
		resp.Persisted = s.persistent()
	}
	resp.RegisteredAt = &at
	if resp.Warnings == nil {
		resp.Warnings = []acl.Problem{}
	}
	writeJSON(w, http.StatusOK, resp)
}

// persistent reports whether run-time changes go to a state directory.
func (s *Server) persistent() bool {
	return s.opts.Runtime != nil && s.opts.Runtime.Persistent()
}

func (s *Server) handleServices(w http.ResponseWriter, _ *http.Request) {
	rt := s.runtimeOrFail(w)
	if rt == nil {
		return
	}
	all, err := rt.Services()
	if err != nil {
		s.writeRuntimeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"services": all})
}

func (s *Server) handleService(w http.ResponseWriter, r *http.Request) {
	rt := s.runtimeOrFail(w)
	if rt == nil {
		return
	}
	info, err := rt.Service(r.PathValue("name"))
	if err != nil {
		s.writeRuntimeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// handleServiceMethodNotAllowed answers every other method on a service,
// DELETE included: registrations are not deleted (OpenLMIS), only replaced.
func (s *Server) handleServiceMethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "GET, HEAD, PUT")
	writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "",
		fmt.Sprintf("%s is not allowed on a service: registrations are replaced with PUT, never deleted", r.Method))
}

// writeRuntimeError answers a run-time change or look-up that failed: 404
// for something unknown, 400 for a malformed request or an invalid service
// document (with every problem), 500 otherwise (nothing was changed).
func (s *Server) writeRuntimeError(w http.ResponseWriter, err error) {
	var nf *loader.NotFoundError
	var re *loader.RequestError
	var ve *acl.ValidationError
	var su *loader.StateUnavailableError
	switch {
	case errors.As(err, &su):
		s.opts.Log.Error("run-time change refused: the state database is unavailable", "error", err)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "state.unavailable", "", su.Error())
	case errors.As(err, &nf):
		writeError(w, http.StatusNotFound, "not_found", "", nf.Message)
	case errors.As(err, &re):
		writeError(w, http.StatusBadRequest, "invalid_request", re.Field, re.Error())
	case errors.As(err, &ve):
		writeJSON(w, http.StatusBadRequest, map[string]any{
			"code":     "invalid_service",
			"message":  ve.Error(),
			"problems": ve.Problems,
		})
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "canceled", "", "the change was not applied: "+err.Error())
	default:
		s.opts.Log.Error("run-time change failed", "error", err)
		writeError(w, http.StatusInternalServerError, "internal", "", "the change was not applied: "+err.Error())
	}
}
