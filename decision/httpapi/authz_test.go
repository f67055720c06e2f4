package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/verdict-authz/verdict/decision/httpapi"
	"github.com/verdict-authz/verdict/internal/testjwt"
	"github.com/verdict-authz/verdict/loader/loadertest"
)

// authzServer serves the demo bundle with /v1/authz verifying bearer JWTs.
func authzServer(t *testing.T, o httpapi.AuthzOptions) *httptest.Server {
	t.Helper()
	engine, _ := loadertest.Demo(t)
	srv := httptest.NewServer(httpapi.New(engine, httpapi.Options{Log: quiet, Authz: o}))
	t.Cleanup(srv.Close)
	return srv
}

func TestAuthzJWTIssuerAndAudience(t *testing.T) {
	signer := testjwt.NewSigner(t)
	const (
		issuer   = "https://id.example.com/"
		audience = "verdict"
	)
	checked := authzServer(t, httpapi.AuthzOptions{Tenant: "bank", JWKS: signer.JWKS, Issuer: issuer, Audience: audience})
	unchecked := authzServer(t, httpapi.AuthzOptions{Tenant: "bank", JWKS: signer.JWKS})
	issOnly := authzServer(t, httpapi.AuthzOptions{Tenant: "bank", JWKS: signer.JWKS, Issuer: issuer})
	audOnly := authzServer(t, httpapi.AuthzOptions{Tenant: "bank", JWKS: signer.JWKS, Audience: audience})

	hour := time.Now().Add(time.Hour)
	claims := func(iss, aud any) map[string]any {
		return map[string]any{jwt.IssuerKey: iss, jwt.AudienceKey: aud}
	}
	tests := []struct {
		name       string
		srv        *httptest.Server
		token      string
		wantStatus int
		wantReason string
		// wantMessage is part of the error message of a refused token.
		wantMessage string
	}{
		{"right iss and aud", checked, signer.Sign(t, "user_a", hour, claims(issuer, audience)), 200, "iam.allow", ""},
		{"aud as an array containing the value", checked, signer.Sign(t, "user_a", hour, claims(issuer, []string{"other", audience})), 200, "iam.allow", ""},
		{"wrong iss", checked, signer.Sign(t, "user_a", hour, claims("https://evil.example.com/", audience)), 401, "token.invalid", `issuer (claim "iss")`},
		{"missing iss", checked, signer.Sign(t, "user_a", hour, claims(nil, audience)), 401, "token.invalid", `issuer (claim "iss")`},
		{"wrong aud", checked, signer.Sign(t, "user_a", hour, claims(issuer, "billing")), 401, "token.invalid", `audience (claim "aud")`},
		{"aud array without the value", checked, signer.Sign(t, "user_a", hour, claims(issuer, []string{"billing", "reports"})), 401, "token.invalid", `audience (claim "aud")`},
		{"missing aud", checked, signer.Sign(t, "user_a", hour, claims(issuer, nil)), 401, "token.invalid", `audience (claim "aud")`},
		{"right iss and aud, expired", checked, signer.Sign(t, "user_a", time.Now().Add(-time.Hour), claims(issuer, audience)), 401, "token.invalid", "not valid"},
		{"issuer only: any aud", issOnly, signer.Sign(t, "user_a", hour, claims(issuer, "billing")), 200, "iam.allow", ""},
		{"issuer only: wrong iss", issOnly, signer.Sign(t, "user_a", hour, claims("https://evil.example.com/", audience)), 401, "token.invalid", `issuer (claim "iss")`},
		{"audience only: any iss", audOnly, signer.Sign(t, "user_a", hour, claims("https://evil.example.com/", audience)), 200, "iam.allow", ""},
		{"audience only: missing aud", audOnly, signer.Sign(t, "user_a", hour, claims(issuer, nil)), 401, "token.invalid", `audience (claim "aud")`},
		{"unset: wrong iss and aud still accepted", unchecked, signer.Sign(t, "user_a", hour, claims("https://evil.example.com/", "billing")), 200, "iam.allow", ""},
		{"unset: no iss or aud accepted", unchecked, signer.Sign(t, "user_a", hour, nil), 200, "iam.allow", ""},
		{"unset: expired still refused", unchecked, signer.Sign(t, "user_a", time.Now().Add(-time.Hour), nil), 401, "token.invalid", "not valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, header, body := authzGet(t, tt.srv, "GET", "/api/v1/portfolios/portfolio/",
				http.Header{"Authorization": {"Bearer " + tt.token}})
			if status != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %v", status, tt.wantStatus, body)
			}
			if got := header.Get(httpapi.HeaderReason); got != tt.wantReason {
				t.Errorf("%s %q, want %q", httpapi.HeaderReason, got, tt.wantReason)
			}
			if tt.wantStatus != 401 {
				if header.Get(httpapi.HeaderDecisionID) == "" {
					t.Errorf("no %s", httpapi.HeaderDecisionID)
				}
				return
			}
			if got := header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
				t.Errorf("WWW-Authenticate %q", got)
			}
			if body["code"] != "token_invalid" || body["field"] != "Authorization" {
				t.Errorf("body %v, want code token_invalid, field Authorization", body)
			}
			if msg, _ := body["message"].(string); !strings.Contains(msg, tt.wantMessage) {
				t.Errorf("message %q does not mention %s", msg, tt.wantMessage)
			}
		})
	}
}

// authzAsk sends GET /v1/authz for method and uri with extra headers and
// returns the status, the X-Verdict-Reason and the body.
func authzAsk(t *testing.T, srv *httptest.Server, method, uri string, h http.Header) (int, string, map[string]any) {
	t.Helper()
	status, header, body := authzGet(t, srv, method, uri, h)
	return status, header.Get(httpapi.HeaderReason), body
}

// authzGet sends GET /v1/authz for method and uri with extra headers and
// returns the status, the response headers and the body.
func authzGet(t *testing.T, srv *httptest.Server, method, uri string, h http.Header) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL+"/v1/authz", nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range h {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("X-Original-Method", method)
	req.Header.Set("X-Original-URI", uri)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// tnt3Key is a SOAJS key of the demo tenant tnt3.
const tnt3Key = "7bc1e66d003a3b2acfce1557cbda7320ec45057be0505fd7e9dec19e9fe74c194b109a48568f53449c1cc607a3cb23d70de86831a2ac4b87f1c0c5d57d19702a74ac22a64531185af11f75967f9ba54cb930149ed8a1384f924be9baa4ed5b0b"

// TestAuthzConfiguredTenantWinsOverHeaders is a regression test: with
// --authz-tenant bank, a client whose X-Verdict-Tenant reached verdict
// (nginx passes client headers to the subrequest) picked the tenant:
// antony, not a member of bank, is the administrator of fineract, so
// "X-Verdict-Tenant: fineract" let him delete a portfolio. The operator's
// tenant now wins; a key must belong to it. Headers name the tenant only
// when none is configured.
func TestAuthzConfiguredTenantWinsOverHeaders(t *testing.T) {
	const deleteURI = "/api/v1/portfolios/portfolio/3/"
	fixed := authzServer(t, httpapi.AuthzOptions{Tenant: "bank", MemberHeader: "X-User"})
	open := authzServer(t, httpapi.AuthzOptions{MemberHeader: "X-User"})
	tests := []struct {
		name       string
		srv        *httptest.Server
		method     string
		uri        string
		headers    http.Header
		wantStatus int
		wantReason string
		wantTenant string
	}{
		{"configured tenant", fixed, "DELETE", deleteURI, http.Header{"X-User": {"antony"}}, 403, "iam.unknown_member", "bank"},
		{"configured tenant: a tenant header does not change it", fixed, "DELETE", deleteURI,
			http.Header{"X-User": {"antony"}, "X-Verdict-Tenant": {"fineract"}}, 403, "iam.unknown_member", "bank"},
		{"configured tenant: a key of another tenant is invalid", fixed, "GET", "/buildName",
			http.Header{"Key": {tnt3Key}}, 403, "key.invalid", "bank"},
		{"configured tenant: a key and a tenant header of another tenant", fixed, "GET", "/buildName",
			http.Header{"Key": {tnt3Key}, "X-Verdict-Tenant": {"tnt3"}}, 403, "key.invalid", "bank"},
		{"no configured tenant: the tenant header names it", open, "DELETE", deleteURI,
			http.Header{"X-User": {"antony"}, "X-Verdict-Tenant": {"fineract"}}, 200, "iam.admin", "fineract"},
		{"no configured tenant: the key names it", open, "GET", "/buildName",
			http.Header{"Key": {tnt3Key}}, 200, "package.allow", "tnt3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, reason, body := authzAsk(t, tt.srv, tt.method, tt.uri, tt.headers)
			if status != tt.wantStatus || reason != tt.wantReason {
				t.Fatalf("status %d reason %q, want %d %q; body %v", status, reason, tt.wantStatus, tt.wantReason, body)
			}
			if body["tenant"] != tt.wantTenant {
				t.Errorf("decided for tenant %v, want %s", body["tenant"], tt.wantTenant)
			}
		})
	}
	// Neither a configured tenant, a tenant header nor a key: 400 naming
	// both headers.
	status, _, body := authzAsk(t, open, "GET", "/api/v1/portfolios/portfolio/", nil)
	if status != http.StatusBadRequest || body["field"] != "X-Verdict-Tenant or key" {
		t.Errorf("no tenant: %d %v", status, body)
	}
}

// TestAuthzClientIP: with IPHeader set, the proxy's client address is the
// decision's context.ip, so extension rules such as the demo's
// ext.ip_blocked apply behind nginx; a missing, repeated or non-IP value is
// a 400 (nginx then fails the request) rather than a decision without it.
// Without IPHeader the header is not read and the decision has no context.
func TestAuthzClientIP(t *testing.T) {
	withIP := authzServer(t, httpapi.AuthzOptions{Tenant: "bank", MemberHeader: "X-User", IPHeader: "X-Real-IP"})
	withoutIP := authzServer(t, httpapi.AuthzOptions{Tenant: "bank", MemberHeader: "X-User"})
	const list = "/api/v1/portfolios/portfolio/"
	admin := func(ip ...string) http.Header {
		h := http.Header{"X-User": {"admin"}}
		if len(ip) > 0 {
			h["X-Real-Ip"] = ip
		}
		return h
	}
	tests := []struct {
		name       string
		srv        *httptest.Server
		headers    http.Header
		wantStatus int
		wantReason string
	}{
		{"an address that is not blocked", withIP, admin("10.0.0.1"), 200, "iam.admin"},
		{"a blocked address denies", withIP, admin("203.0.113.66"), 403, "ext.ip_blocked"},
		{"a blocked address, IPv4-mapped", withIP, admin("::ffff:203.0.113.66"), 403, "ext.ip_blocked"},
		{"an IPv6 address", withIP, admin("2001:db8::1"), 200, "iam.admin"},
		{"missing: 400", withIP, admin(), 400, ""},
		{"empty: 400", withIP, admin(""), 400, ""},
		{"a list: 400", withIP, admin("10.0.0.1, 203.0.113.66"), 400, ""},
		{"given twice: 400", withIP, admin("10.0.0.1", "203.0.113.66"), 400, ""},
		{"not an address: 400", withIP, admin("unknown"), 400, ""},
		{"not configured: the header is not read", withoutIP, admin("203.0.113.66"), 200, "iam.admin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, reason, body := authzAsk(t, tt.srv, "GET", list, tt.headers)
			if status != tt.wantStatus || reason != tt.wantReason {
				t.Fatalf("status %d reason %q, want %d %q; body %v", status, reason, tt.wantStatus, tt.wantReason, body)
			}
			if status == http.StatusBadRequest && (body["code"] != "invalid_request" || body["field"] != "X-Real-IP") {
				t.Errorf("400 body %v, want invalid_request on X-Real-IP", body)
			}
		})
	}
}
