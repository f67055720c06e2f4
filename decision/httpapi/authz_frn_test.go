package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/verdict-authz/verdict/decision/httpapi"
)

// TestAuthzObjectFromFRNHeader: auth_request carries no object, so without
// --authz-frn-header object-level and resource-group rules cannot apply
// (user_b may read any portfolio through /v1/authz, though /v1/decide
// denies her bonds-portfolio). With it, the FRN the proxy sets becomes
// resource.frn: the same question gets /v1/decide's answer.
func TestAuthzObjectFromFRNHeader(t *testing.T) {
	withFRN := authzServer(t, httpapi.AuthzOptions{Tenant: "bank", MemberHeader: "X-User", FRNHeader: "X-Verdict-FRN"})
	withoutFRN := authzServer(t, httpapi.AuthzOptions{Tenant: "bank", MemberHeader: "X-User"})
	const (
		bonds  = "frn:finmars:portfolios:portfolio:bonds-portfolio"
		secret = "frn:finmars:portfolios:portfolio:secret-portfolio"
		detail = "/api/v1/portfolios/portfolio/7/"
	)
	ask := func(member string, frn ...string) http.Header {
		h := http.Header{"X-User": {member}}
		if len(frn) > 0 {
			h["X-Verdict-Frn"] = frn
		}
		return h
	}
	tests := []struct {
		name       string
		srv        *httptest.Server
		method     string
		headers    http.Header
		wantStatus int
		wantReason string
	}{
		{"user_b on an object outside her group is denied", withFRN, "GET", ask("user_b", bonds), 403, "resource.not_covered"},
		{"user_a on an object of her group is allowed", withFRN, "GET", ask("user_a", bonds), 200, "iam.allow"},
		{"an object-level Deny applies", withFRN, "DELETE", ask("head_of_banking", secret), 403, "iam.explicit_deny"},
		{"no header: no object, any Allow covers", withFRN, "GET", ask("user_b"), 200, "iam.allow"},
		{"an empty header: no object", withFRN, "GET", ask("user_b", ""), 200, "iam.allow"},
		{"given twice: 403 request.invalid", withFRN, "GET", ask("user_b", bonds, bonds), 403, "request.invalid"},
		{"not an FRN: a deny", withFRN, "GET", ask("user_b", "bonds-portfolio"), 403, httpapi.ReasonRequestInvalid},
		{"not configured: the header is not read", withoutFRN, "GET", ask("user_b", bonds), 200, "iam.allow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, reason, body := authzAsk(t, tt.srv, tt.method, detail, tt.headers)
			if status != tt.wantStatus || reason != tt.wantReason {
				t.Fatalf("status %d reason %q, want %d %q; body %v", status, reason, tt.wantStatus, tt.wantReason, body)
			}
			if status >= 400 && tt.wantReason == "" || tt.wantReason == httpapi.ReasonRequestInvalid {
				if body["field"] != "X-Verdict-FRN" {
					t.Errorf("body %v, want the field X-Verdict-FRN", body)
				}
			}
		})
	}
}

// TestAuthzObscuredPath: a path that percent-encodes a letter, digit or
// -._~ (which no client does) for which the proxy named no object is
// refused when an FRN header is configured: a proxy mapping the raw URI
// to the object's FRN would miss the object the service decodes
// (%62onds-portfolio is bonds-portfolio), and any Allow would cover the
// request.
func TestAuthzObscuredPath(t *testing.T) {
	withFRN := authzServer(t, httpapi.AuthzOptions{Tenant: "bank", MemberHeader: "X-User", FRNHeader: "X-Verdict-FRN"})
	withoutFRN := authzServer(t, httpapi.AuthzOptions{Tenant: "bank", MemberHeader: "X-User"})
	const bonds = "frn:finmars:portfolios:portfolio:bonds-portfolio"
	tests := []struct {
		name       string
		srv        *httptest.Server
		path       string
		frn        string
		wantStatus int
		wantReason string
	}{
		{"an encoded letter, no object: refused", withFRN, "/api/v1/portfolios/portfolio/%62onds-portfolio/", "", 403, httpapi.ReasonRequestInvalid},
		{"an encoded hyphen, no object: refused", withFRN, "/api/v1/portfolios/portfolio/bonds%2Dportfolio/?x=1", "", 403, httpapi.ReasonRequestInvalid},
		{"an encoded tilde, no object: refused", withFRN, "/api/v1/portfolios/portfolio/bonds%7eportfolio/", "", 403, httpapi.ReasonRequestInvalid},
		{"the object named: decided", withFRN, "/api/v1/portfolios/portfolio/%62onds-portfolio/", bonds, 403, "resource.not_covered"},
		{"an escaped space is not obscure", withFRN, "/api/v1/portfolios/portfolio/my%20portfolio/", "", 200, "iam.allow"},
		{"escapes in the query are not read", withFRN, "/api/v1/portfolios/portfolio/?q=%62onds", "", 200, "iam.allow"},
		{"no FRN header configured: decided", withoutFRN, "/api/v1/portfolios/portfolio/%62onds-portfolio/", "", 200, "iam.allow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"X-User": {"user_b"}}
			if tt.frn != "" {
				h.Set("X-Verdict-FRN", tt.frn)
			}
			status, reason, body := authzAsk(t, tt.srv, "GET", tt.path, h)
			if status != tt.wantStatus || reason != tt.wantReason {
				t.Fatalf("status %d reason %q, want %d %q; body %v", status, reason, tt.wantStatus, tt.wantReason, body)
			}
			if tt.wantReason == httpapi.ReasonRequestInvalid && body["field"] != "X-Original-URI" {
				t.Errorf("body %v, want the field X-Original-URI", body)
			}
		})
	}
}
