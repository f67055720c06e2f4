package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/decision/httpapi"
	"github.com/verdict-authz/verdict/internal/testjwt"
)

// TestAuthzRefusesRepeatedHeaders is a regression test: a header naming the
// caller, given twice, was read with Header.Get (the first copy), so a
// front end reading the last copy disagreed with verdict about who asked:
// "X-User: admin" then "X-User: user_a" was judged for admin and allowed a
// delete. Every header verdict reads the caller (or the original request)
// from must now be given once; a repeated one is a 403 request.invalid,
// as for a refused path, naming the header.
func TestAuthzRefusesRepeatedHeaders(t *testing.T) {
	signer := testjwt.NewSigner(t)
	token := signer.Sign(t, "admin", time.Now().Add(time.Hour), nil)
	byHeader := authzServer(t, httpapi.AuthzOptions{MemberHeader: "X-User", IPHeader: "X-Real-IP", FRNHeader: "X-Verdict-FRN"})
	byToken := authzServer(t, httpapi.AuthzOptions{Tenant: "bank", JWKS: signer.JWKS})
	const detail = "/api/v1/portfolios/portfolio/7/"
	once := func() http.Header {
		return http.Header{"X-Verdict-Tenant": {"bank"}, "X-User": {"admin"}, "X-Real-Ip": {"10.0.0.1"}}
	}
	tests := []struct {
		name   string
		ask    func() (int, http.Header, map[string]any)
		header string
	}{
		{"member", askRepeated(t, byHeader, once(), "X-User", "admin", "user_a"), "X-User"},
		{"tenant", askRepeated(t, byHeader, once(), "X-Verdict-Tenant", "bank", "fineract"), "X-Verdict-Tenant"},
		{"key", askRepeated(t, byHeader, once(), "key", tnt3Key, "other"), "key"},
		{"service", askRepeated(t, byHeader, once(), "X-Verdict-Service", "portfolios", "other"), "X-Verdict-Service"},
		{"IP", askRepeated(t, byHeader, once(), "X-Real-IP", "10.0.0.1", "203.0.113.66"), "X-Real-IP"},
		{"FRN", askRepeated(t, byHeader, once(), "X-Verdict-FRN", "frn:finmars:portfolios:portfolio:a", "frn:finmars:portfolios:portfolio:b"), "X-Verdict-FRN"},
		{"Authorization", askRepeated(t, byToken, http.Header{}, "Authorization", "Bearer "+token, "Bearer "+token), "Authorization"},
		{"original method", askRepeated(t, byHeader, once(), "X-Original-Method", "GET", "DELETE"), "X-Original-Method"},
		{"original URI", askRepeated(t, byHeader, once(), "X-Original-URI", detail, "/api/v1/portfolios/portfolio/"), "X-Original-URI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, header, body := tt.ask()
			if status != http.StatusForbidden || header.Get(httpapi.HeaderReason) != httpapi.ReasonRequestInvalid {
				t.Fatalf("status %d, %s %q, body %v; want 403 %s", status, httpapi.HeaderReason, header.Get(httpapi.HeaderReason), body, httpapi.ReasonRequestInvalid)
			}
			if body["code"] != "invalid_request" || body["field"] != tt.header {
				t.Errorf("body %v, want code invalid_request naming %s", body, tt.header)
			}
		})
	}
	// The same request with each header once is decided.
	status, header, body := askRepeated(t, byHeader, once(), "X-User", "admin")()
	if status != http.StatusOK || header.Get(httpapi.HeaderReason) != "iam.admin" {
		t.Fatalf("each header once: %d %q %v", status, header.Get(httpapi.HeaderReason), body)
	}
}

// askRepeated returns a call of GET /v1/authz for DELETE of a portfolio,
// with h and the values of header name (added in order, replacing h's).
func askRepeated(t *testing.T, srv *httptest.Server, h http.Header, name string, values ...string) func() (int, http.Header, map[string]any) {
	return func() (int, http.Header, map[string]any) {
		t.Helper()
		h := h.Clone()
		h[http.CanonicalHeaderKey(name)] = values
		return authzGet(t, srv, "DELETE", "/api/v1/portfolios/portfolio/7/", h)
	}
}
