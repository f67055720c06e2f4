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
