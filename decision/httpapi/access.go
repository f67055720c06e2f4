package httpapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/access"
)

// registerAccess adds the access review endpoints (see package access):
//
//   - GET /v1/tenants/{tenant}/access?action=A[&frn=F][&key=K] — who can:
//     every member Rego allows A, with the reasons of each allow.
//   - GET /v1/tenants/{tenant}/members/{member}/access[?frn=F][&key=K] —
//     what can: every action of the tenant's vocabulary Rego allows the
//     member.
//
// Both take limit (1–1000, default 100) and cursor (the next_cursor of the
// previous page). A review enumerates a whole tenant, so the endpoints need
// the admin token when one is configured.
func (s *Server) registerAccess() {
	s.mux.HandleFunc("GET /v1/tenants/{tenant}/access", s.requireAdmin(func(w http.ResponseWriter, r *http.Request) {
		s.serveAccess(w, r, access.WhoCan, "action", "frn", "key", "limit", "cursor")
	}))
	s.mux.HandleFunc("GET /v1/tenants/{tenant}/members/{member}/access", s.requireAdmin(func(w http.ResponseWriter, r *http.Request) {
		s.serveAccess(w, r, access.WhatCan, "frn", "key", "limit", "cursor")
	}))
}

// review is access.WhoCan or access.WhatCan.
type review func(context.Context, *decision.Pinned, access.Query, access.Progress) (*access.Page, error)

// serveAccess reads a review's query (a parameter outside allowed, or given
// twice, is a 400 naming it), runs the review on the installed generation
// and answers its page: 404 naming an unknown tenant, member or action.
func (s *Server) serveAccess(w http.ResponseWriter, r *http.Request, run review, allowed ...string) {
	params := r.URL.Query()
	for name, values := range params {
		if !slices.Contains(allowed, name) {
			writeError(w, http.StatusBadRequest, "invalid_request", name, "unknown query parameter "+name)
			return
		}
		if len(values) > 1 {
			writeError(w, http.StatusBadRequest, "invalid_request", name, name+" is given more than once")
			return
		}
	}
	q := access.Query{
		Tenant: r.PathValue("tenant"),
		Member: r.PathValue("member"),
		Action: params.Get("action"),
		FRN:    params.Get("frn"),
		Key:    params.Get("key"),
		Cursor: params.Get("cursor"),
	}
	if v := params.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > access.MaxLimit {
			writeError(w, http.StatusBadRequest, "invalid_request", "limit", "limit must be a number from 1 to "+strconv.Itoa(access.MaxLimit))
			return
		}
		q.Limit = n
	}
	pinned, err := s.engine.Pin()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "not_ready", "", err.Error())
		return
	}
	page, err := run(r.Context(), pinned, q, nil)
	var notFound *access.NotFoundError
	var inErr *decision.InputError
	switch {
	case errors.As(err, &notFound):
		writeError(w, http.StatusNotFound, "not_found", notFound.Kind, notFound.Error())
	case errors.As(err, &inErr):
		writeError(w, http.StatusBadRequest, "invalid_request", inErr.Field, inErr.Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, "internal", "", err.Error())
	default:
		writeJSON(w, http.StatusOK, page)
	}
}
