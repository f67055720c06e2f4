package extauthz_test

import (
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/verdict-authz/verdict/decision/extauthz"
	"github.com/verdict-authz/verdict/decision/proxyauth"
)

// TestCheckObjectFromFRNHeader: with an FRN header configured, the object's
// FRN the proxy sets is the decision's resource.frn, as for /v1/authz.
func TestCheckObjectFromFRNHeader(t *testing.T) {
	c := demoClient(t, proxyauth.Options{Tenant: "bank", MemberHeader: "X-User", FRNHeader: "X-Verdict-FRN"})
	const detail = "/api/v1/portfolios/portfolio/7/"
	tests := []struct {
		name       string
		path       string // detail when empty
		headers    map[string]string
		wantStatus int // 0: allowed
		wantReason string
	}{
		{"another group's object", "", map[string]string{"x-user": "user_b", "x-verdict-frn": "frn:finmars:portfolios:portfolio:bonds-portfolio"}, 403, "resource.not_covered"},
		{"her group's object", "", map[string]string{"x-user": "user_b", "x-verdict-frn": "frn:finmars:portfolios:portfolio:fx-portfolio"}, 0, ""},
		{"no object", "", map[string]string{"x-user": "user_b"}, 0, ""},
		{"not an FRN", "", map[string]string{"x-user": "user_b", "x-verdict-frn": "bonds"}, 400, extauthz.ReasonRequestInvalid},
		// A code percent-encoded where nothing needs it, and no object
		// named: the proxy may have missed the object the service decodes.
		{"an obscured code and no object", "/api/v1/portfolios/portfolio/%62onds-portfolio/", map[string]string{"x-user": "user_b"}, 400, extauthz.ReasonRequestInvalid},
		{"an obscured code with its object", "/api/v1/portfolios/portfolio/%62onds-portfolio/", map[string]string{"x-user": "user_b", "x-verdict-frn": "frn:finmars:portfolios:portfolio:bonds-portfolio"}, 403, "resource.not_covered"},
		{"an escaped space and no object", "/api/v1/portfolios/portfolio/my%20portfolio/", map[string]string{"x-user": "user_b"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path
			if path == "" {
				path = detail
			}
			a := check(t, c, checkRequest("GET", path, tt.headers, nil))
			if tt.wantStatus == 0 {
				if a.code != codes.OK {
					t.Fatalf("code %v status %d body %v, want an allow", a.code, a.httpStatus, a.body)
				}
				return
			}
			if a.httpStatus != tt.wantStatus || a.headers[extauthz.HeaderReason] != tt.wantReason {
				t.Fatalf("status %d reason %q body %v, want %d %q", a.httpStatus, a.headers[extauthz.HeaderReason], a.body, tt.wantStatus, tt.wantReason)
			}
		})
	}
}
