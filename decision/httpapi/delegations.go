package httpapi

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"

	"github.com/verdict-authz/verdict/loader"
)

// DelegationRequestBody is the body of POST
// /v1/tenants/{t}/applications/{app}/permissions.
type DelegationRequestBody struct {
	Group      string   `json:"group"`
	Operations []string `json:"operations"`
}

// DelegationResponse answers a delegation request.
type DelegationResponse struct {
	loader.DelegationInfo
	// Created: the application had not asked for the group at run time
	// before (the answer is then 201). Changed: the request differs from
	// the one recorded.
	Created   bool `json:"created"`
	Changed   bool `json:"changed"`
	Persisted bool `json:"persisted"`
	// StateRevision: see RegistrationResponse.StateRevision.
	StateRevision uint64 `json:"state_revision,omitempty"`
}

// PermissionsResponse lists an application's permissions in a tenant.
type PermissionsResponse struct {
	Tenant      string                  `json:"tenant"`
	Application string                  `json:"application"`
	Permissions []loader.DelegationInfo `json:"permissions"`
}

// ConsentResponse answers a consent or withdrawal.
type ConsentResponse struct {
	Tenant      string `json:"tenant"`
	Application string `json:"application"`
	Group       string `json:"group"`
	Member      string `json:"member"`
	Enabled     bool   `json:"enabled"`
	Changed     bool   `json:"changed"`
	Persisted   bool   `json:"persisted"`
	// StateRevision: see RegistrationResponse.StateRevision.
	StateRevision uint64 `json:"state_revision,omitempty"`
}

func (s *Server) handleRequestDelegation(w http.ResponseWriter, r *http.Request) {
	rt := s.runtimeOrFail(w)
	if rt == nil {
		return
	}
	var body DelegationRequestBody
	if !s.decodeJSON(w, r, &body) {
		return
	}
	if body.Group == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "group", "group: is required (a permittable group, e.g. portfolio__v1__khepri)")
		return
	}
	tenant, app := r.PathValue("tenant"), r.PathValue("app")
	c, err := rt.RequestDelegation(r.Context(), tenant, app, body.Group, body.Operations)
	if err != nil {
		s.writeRuntimeError(w, err)
		return
	}
	info, err := rt.Delegation(tenant, app, body.Group)
	if err != nil {
		s.writeRuntimeError(w, err)
		return
	}
	status := http.StatusOK
	if c.Created {
		status = http.StatusCreated
	}
	writeJSON(w, status, DelegationResponse{DelegationInfo: *info, Created: c.Created, Changed: c.Stored,
		Persisted: c.Persisted || (!c.Stored && s.persistent()), StateRevision: c.StateRevision})
}

func (s *Server) handleDelegations(w http.ResponseWriter, r *http.Request) {
	rt := s.runtimeOrFail(w)
	if rt == nil {
		return
	}
	tenant, app := r.PathValue("tenant"), r.PathValue("app")
	list, err := rt.Delegations(tenant, app)
	if err != nil {
		s.writeRuntimeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, PermissionsResponse{Tenant: tenant, Application: app, Permissions: list})
}

func (s *Server) handleDelegation(w http.ResponseWriter, r *http.Request) {
	rt := s.runtimeOrFail(w)
	if rt == nil {
		return
	}
	info, err := rt.Delegation(r.PathValue("tenant"), r.PathValue("app"), r.PathValue("group"))
	if err != nil {
		s.writeRuntimeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func (s *Server) handleSetConsent(w http.ResponseWriter, r *http.Request) {
	rt := s.runtimeOrFail(w)
	if rt == nil {
		return
	}
	enabled, ok := s.consentBody(w, r)
	if !ok {
		return
	}
	tenant, app, group, member := r.PathValue("tenant"), r.PathValue("app"), r.PathValue("group"), r.PathValue("member")
	c, err := rt.SetConsent(r.Context(), tenant, app, group, member, enabled)
	if err != nil {
		s.writeRuntimeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ConsentResponse{Tenant: tenant, Application: app, Group: group, Member: member,
		Enabled: enabled, Changed: c.Stored, Persisted: c.Persisted || (!c.Stored && s.persistent()), StateRevision: c.StateRevision})
}

// handleConsent answers true or false: whether the member has enabled the
// application for the group (what decisions use).
func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	rt := s.runtimeOrFail(w)
	if rt == nil {
		return
	}
	enabled, err := rt.Consent(r.PathValue("tenant"), r.PathValue("app"), r.PathValue("group"), r.PathValue("member"))
	if err != nil {
		s.writeRuntimeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, enabled)
}

// consentBody reads a consent PUT's body, the JSON value true (consent) or
// false (withdraw). Anything else is a 400 that quotes what was sent and
// says what to send instead ("yes" is not a consent: true is).
func (s *Server) consentBody(w http.ResponseWriter, r *http.Request) (enabled, ok bool) {
	var buf bytes.Buffer
	if !s.readBody(w, r, &buf) {
		return false, false
	}
	switch body := strings.TrimSpace(buf.String()); body {
	case "true":
		return true, true
	case "false":
		return false, true
	default:
		shown := body
		if len(shown) > 40 {
			shown = shown[:40] + "…"
		}
		writeError(w, http.StatusBadRequest, "invalid_request", "", fmt.Sprintf(
			"the body must be the JSON value true (consent) or false (withdraw), not %q", shown))
		return false, false
	}
}
