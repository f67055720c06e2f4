package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/proxyauth"
)

// AuthzOptions configures GET /v1/authz, the endpoint for nginx's
// auth_request (and other proxies' forward-auth): which headers, or which
// bearer JWT, name the caller. They are package proxyauth's options, which
// the Envoy ext_authz door reads callers with too.
type AuthzOptions = proxyauth.Options

// Headers of an authz answer.
const (
	HeaderDecisionID = "X-Verdict-Decision-Id"
	HeaderReason     = "X-Verdict-Reason"
	HeaderStatus     = "X-Verdict-Status"
)

// ReasonRequestInvalid is the X-Verdict-Reason of a 403 for an original
// URI that verdict refuses to translate (route.CanonicalPath): an encoded
// separator or dot, a dot segment, a backslash, a control byte.
const ReasonRequestInvalid = "request.invalid"

// handleAuthz answers an auth_request subrequest: 200 to let the original
// request through, 401 or 403 to stop it, with the decision id and the
// deciding reason in headers. Other statuses (404 for an unknown route or
// tenant) become 403, since auth_request understands only these three.
func (s *Server) handleAuthz(w http.ResponseWriter, r *http.Request) {
	for _, name := range []string{"X-Original-Method", "X-Original-URI"} {
		if n := len(r.Header.Values(name)); n > 1 {
			refuseRepeatedHeader(w, &proxyauth.RepeatedHeaderError{Header: name, Count: n})
			return
		}
	}
	method := r.Header.Get("X-Original-Method")
	uri := r.Header.Get("X-Original-URI")
	if method == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "X-Original-Method", "the proxy must set X-Original-Method (nginx: proxy_set_header X-Original-Method $request_method)")
		return
	}
	if uri == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "X-Original-URI", "the proxy must set X-Original-URI (nginx: proxy_set_header X-Original-URI $request_uri)")
		return
	}
	caller, err := s.authz.Identify(r.Header, proxyauth.SeparateHeaders)
	var repeatedErr *proxyauth.RepeatedHeaderError
	var headerErr *proxyauth.HeaderError
	var tokenErr *proxyauth.TokenError
	switch {
	case errors.As(err, &repeatedErr):
		refuseRepeatedHeader(w, repeatedErr)
		return
	case errors.As(err, &headerErr):
		writeError(w, http.StatusBadRequest, "invalid_request", headerErr.Header, headerErr.Message)
		return
	case errors.As(err, &tokenErr):
		w.Header().Set(HeaderReason, tokenErr.Reason)
		w.Header().Set("WWW-Authenticate", tokenErr.Challenge())
		writeError(w, http.StatusUnauthorized, tokenErr.Reason, "Authorization", err.Error())
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, "internal", "", err.Error())
		return
	}
	if err := s.authz.CheckObscuredPath(caller, uri); err != nil {
		// The client wrote the path: a deny, as for a refused path.
		w.Header().Set(HeaderReason, ReasonRequestInvalid)
		writeError(w, http.StatusForbidden, "invalid_request", "X-Original-URI", err.Error())
		return
	}
	req := &decision.Request{
		Tenant:  caller.Tenant,
		Key:     caller.Key,
		Member:  caller.Member,
		Request: &decision.HTTPRequest{Method: method, Path: uri, Service: caller.Service},
	}
	if caller.IP != "" {
		req.Context = map[string]any{"ip": caller.IP}
	}
	if caller.FRN != "" {
		req.Resource = &decision.Resource{FRN: caller.FRN}
	}
	d, err := s.engine.Decide(r.Context(), req)
	if err != nil {
		var inErr *decision.InputError
		if errors.As(err, &inErr) {
			field := inErr.Field
			switch field {
			case "tenant":
				field = s.authz.Options().TenantHeader + " or " + s.authz.Options().KeyHeader
			case "request.method":
				field = "X-Original-Method"
			case "request.path", "resource.frn":
				// The client wrote the path, from which the proxy also
				// takes the object: refusing it is a deny (nginx fails
				// the request on any other status than 2xx, 401 and
				// 403), not a sign of a misconfigured proxy.
				header := "X-Original-URI"
				if field == "resource.frn" {
					header = s.authz.Options().FRNHeader
				}
				w.Header().Set(HeaderReason, ReasonRequestInvalid)
				writeError(w, http.StatusForbidden, "invalid_request", header, inErr.Message)
				return
			case "context.ip":
				field = s.authz.Options().IPHeader
			}
			writeError(w, http.StatusBadRequest, "invalid_request", field, inErr.Message)
			return
		}
		writeError(w, http.StatusInternalServerError, "internal", "", err.Error())
		return
	}
	status := http.StatusForbidden
	switch {
	case d.Allow:
		status = http.StatusOK
	case d.Status == http.StatusUnauthorized:
		status = http.StatusUnauthorized
	}
	w.Header().Set(HeaderDecisionID, d.DecisionID)
	w.Header().Set(HeaderStatus, strconv.Itoa(d.Status))
	if reason := d.DecidingReason(); reason != "" {
		w.Header().Set(HeaderReason, reason)
	}
	writeJSON(w, status, d)
}

// refuseRepeatedHeader denies a request that gives a header naming the
// caller (or the original request) more than once: 403 request.invalid, as
// for a refused path, since the client can send such a request through a
// proxy that passes its headers on, and nginx fails the request on any
// other status than 2xx, 401 and 403.
func refuseRepeatedHeader(w http.ResponseWriter, err *proxyauth.RepeatedHeaderError) {
	w.Header().Set(HeaderReason, ReasonRequestInvalid)
	writeError(w, http.StatusForbidden, "invalid_request", err.Header, err.Error())
}

// LoadJWKS reads a JSON Web Key Set file.
func LoadJWKS(path string) (jwk.Set, error) {
	set, err := jwk.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read JWKS %s: %w", path, err)
	}
	return set, nil
}
