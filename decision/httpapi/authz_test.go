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
			if body["code"] != "token.invalid" || body["field"] != "Authorization" {
				t.Errorf("body %v, want code token.invalid (as X-Verdict-Reason), field Authorization", body)
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

// authzGet sends GET /v1/authz for method and uri (as X-Original-Method and
// X-Original-URI, unless h gives them) with extra headers and returns the
// status, the response headers and the body.
func authzGet(t *testing.T, srv *httptest.Server, method, uri string, h http.Header) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL+"/v1/authz", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Original-Method", method)
	req.Header.Set("X-Original-URI", uri)
	for k, vs := range h {
		req.Header.Del(k)
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
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
		{"given twice: 403 request.invalid", withIP, admin("10.0.0.1", "203.0.113.66"), 403, "request.invalid"},
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

// With --authz-jwks-file, a bearer JWT is required: a request without one
// (no Authorization, a Basic credential, an empty or repeated bearer) is
// 401 before any decision, whatever the member header says. Only with
// AllowMemberHeaderWithoutJWT does a request that carries no bearer token
// at all name its member in the header; a token, when sent, always wins
// and must be valid. Regression: a missing, Basic or empty bearer token
// fell back to X-User and was allowed.
func TestAuthzJWTRequiredUnlessTheHeaderFallbackIsOptedIn(t *testing.T) {
	signer := testjwt.NewSigner(t)
	required := authzServer(t, httpapi.AuthzOptions{Tenant: "bank", JWKS: signer.JWKS, MemberHeader: "X-User"})
	optedIn := authzServer(t, httpapi.AuthzOptions{Tenant: "bank", JWKS: signer.JWKS, MemberHeader: "X-User", AllowMemberHeaderWithoutJWT: true})
	// Without a member header, a JWKS requires a token just the same.
	jwtOnly := authzServer(t, httpapi.AuthzOptions{Tenant: "bank", JWKS: signer.JWKS})

	hour := time.Now().Add(time.Hour)
	userA := "Bearer " + signer.Sign(t, "user_a", hour, nil)
	admin := "Bearer " + signer.Sign(t, "admin", hour, nil)
	const (
		list   = "/api/v1/portfolios/portfolio/"
		delete = "/api/v1/portfolios/portfolio/7/"
	)
	tests := []struct {
		name          string
		srv           *httptest.Server
		method, uri   string
		authorization []string
		user          string
		wantStatus    int
		wantReason    string
	}{
		{"required: no Authorization", required, "GET", list, nil, "user_a", 401, "token.missing"},
		{"required: a Basic credential", required, "GET", list, []string{"Basic dXNlcl9hOng="}, "user_a", 401, "token.missing"},
		{"required: an empty bearer", required, "GET", list, []string{"Bearer "}, "user_a", 401, "token.invalid"},
		{"required: a bare Bearer", required, "GET", list, []string{"Bearer"}, "user_a", 401, "token.invalid"},
		{"required: two Authorization headers", required, "GET", list, []string{userA, "Basic eDp5"}, "user_a", 403, "request.invalid"},
		{"required: a valid token", required, "GET", list, []string{userA}, "", 200, "iam.allow"},
		{"required: the token wins over the header", required, "DELETE", delete, []string{userA}, "admin", 403, "iam.no_allow"},
		{"required: the admin's token", required, "DELETE", delete, []string{admin}, "user_a", 200, "iam.admin"},
		{"no member header: no Authorization", jwtOnly, "GET", list, nil, "", 401, "token.missing"},
		{"no member header: a valid token", jwtOnly, "GET", list, []string{userA}, "", 200, "iam.allow"},
		{"opted in: no Authorization reads the header", optedIn, "GET", list, nil, "user_a", 200, "iam.allow"},
		{"opted in: a Basic credential reads the header", optedIn, "DELETE", delete, []string{"Basic dXNlcl9hOng="}, "admin", 200, "iam.admin"},
		{"opted in: no Authorization and no header is anonymous", optedIn, "GET", list, nil, "", 401, "iam.anonymous"},
		{"opted in: an empty bearer is refused", optedIn, "GET", list, []string{"Bearer "}, "user_a", 401, "token.invalid"},
		{"opted in: a forged token is refused", optedIn, "DELETE", delete, []string{admin[:len(admin)-4] + "AAAA"}, "admin", 401, "token.invalid"},
		{"opted in: the token wins over the header", optedIn, "DELETE", delete, []string{userA}, "admin", 403, "iam.no_allow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, a := range tt.authorization {
				h.Add("Authorization", a)
			}
			if tt.user != "" {
				h.Set("X-User", tt.user)
			}
			status, header, body := authzGet(t, tt.srv, tt.method, tt.uri, h)
			if status != tt.wantStatus || header.Get(httpapi.HeaderReason) != tt.wantReason {
				t.Fatalf("status %d reason %q, want %d %q; body %v", status, header.Get(httpapi.HeaderReason), tt.wantStatus, tt.wantReason, body)
			}
			if !strings.HasPrefix(tt.wantReason, "token.") {
				return
			}
			wantChallenge := map[string]string{"token.missing": "Bearer", "token.invalid": `Bearer error="invalid_token"`}[tt.wantReason]
			if got := header.Get("WWW-Authenticate"); got != wantChallenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, wantChallenge)
			}
			if header.Get(httpapi.HeaderDecisionID) != "" {
				t.Error("a refused token was decided on")
			}
			msg, _ := body["message"].(string)
			if body["code"] != tt.wantReason || body["field"] != "Authorization" || msg == "" {
				t.Errorf("body %v, want code %s naming Authorization with a message", body, tt.wantReason)
			}
		})
	}
}

// A bearer JWT must carry exp: one without it would be valid for ever. nbf
// and iat are checked when present.
func TestAuthzJWTTimeClaims(t *testing.T) {
	signer := testjwt.NewSigner(t)
	srv := authzServer(t, httpapi.AuthzOptions{Tenant: "bank", JWKS: signer.JWKS})
	now := time.Now()
	tests := []struct {
		name        string
		token       string
		wantStatus  int
		wantMessage string
	}{
		{"exp in an hour", signer.Sign(t, "user_a", now.Add(time.Hour), nil), 200, ""},
		{"no exp", signer.Sign(t, "user_a", time.Time{}, nil), 401, `claim "exp"`},
		{"no exp, with nbf and iat in the past", signer.Sign(t, "user_a", time.Time{}, map[string]any{jwt.NotBeforeKey: now.Add(-time.Hour), jwt.IssuedAtKey: now.Add(-time.Hour)}), 401, `claim "exp"`},
		{"expired a second ago", signer.Sign(t, "user_a", now.Add(-time.Second), nil), 401, "not valid"},
		{"nbf in a minute", signer.Sign(t, "user_a", now.Add(time.Hour), map[string]any{jwt.NotBeforeKey: now.Add(time.Minute)}), 401, "not valid"},
		{"iat in a minute", signer.Sign(t, "user_a", now.Add(time.Hour), map[string]any{jwt.IssuedAtKey: now.Add(time.Minute)}), 401, "not valid"},
		{"nbf and iat in the past", signer.Sign(t, "user_a", now.Add(time.Hour), map[string]any{jwt.NotBeforeKey: now.Add(-time.Minute), jwt.IssuedAtKey: now.Add(-time.Minute)}), 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, header, body := authzGet(t, srv, "GET", "/api/v1/portfolios/portfolio/", http.Header{"Authorization": {"Bearer " + tt.token}})
			if status != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %v", status, tt.wantStatus, body)
			}
			if status == 200 {
				return
			}
			if header.Get(httpapi.HeaderReason) != "token.invalid" {
				t.Errorf("reason %q, want token.invalid", header.Get(httpapi.HeaderReason))
			}
			if msg, _ := body["message"].(string); !strings.Contains(msg, tt.wantMessage) {
				t.Errorf("message %q does not mention %s", msg, tt.wantMessage)
			}
		})
	}
}
