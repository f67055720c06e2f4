package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/internal/testjwt"
)

// With --authz-jwks-file, GET /v1/authz needs a bearer JWT: a request
// without one is 401 token.missing before any decision, and the member
// header is read, for requests without a bearer token only, when
// --authz-allow-member-header-without-jwt says so. Both flags without the
// opt-in are refused at start, naming it.
func TestAuthzJWTRequiredAndTheHeaderFallbackOptIn(t *testing.T) {
	signer := testjwt.NewSigner(t)
	b, err := json.Marshal(signer.JWKS)
	if err != nil {
		t.Fatal(err)
	}
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwks, b, 0o600); err != nil {
		t.Fatal(err)
	}

	res := verdict(t, "", "run", "--addr", "127.0.0.1:0", "--bundle", demoBundle, "--authz-tenant", "bank",
		"--authz-jwks-file", jwks, "--authz-member-header", "X-User")
	if res.code == 0 || !strings.Contains(res.stderr, "--authz-allow-member-header-without-jwt") {
		t.Errorf("a JWKS and a member header without the opt-in: exit %d, stderr %q", res.code, res.stderr)
	}

	required := startServer(t, "--bundle", demoBundle, "--authz-tenant", "bank", "--authz-jwks-file", jwks)
	optedIn := startServer(t, "--bundle", demoBundle, "--authz-tenant", "bank", "--authz-jwks-file", jwks,
		"--authz-member-header", "X-User", "--authz-allow-member-header-without-jwt")
	userA := "Bearer " + signer.Sign(t, "user_a", time.Now().Add(time.Hour), nil)
	tests := []struct {
		name          string
		srv           *server
		authorization string
		user          string
		wantStatus    int
		wantReason    string
	}{
		{"required: no token", required, "", "user_a", 401, "token.missing"},
		{"required: a Basic credential", required, "Basic dXNlcl9hOng=", "user_a", 401, "token.missing"},
		{"required: a token without exp", required, "Bearer " + signer.Sign(t, "user_a", time.Time{}, nil), "", 401, "token.invalid"},
		{"required: a valid token", required, userA, "", 200, "iam.allow"},
		{"opted in: no token reads the header", optedIn, "", "user_a", 200, "iam.allow"},
		{"opted in: an empty bearer is refused", optedIn, "Bearer ", "user_a", 401, "token.invalid"},
		{"opted in: a valid token", optedIn, userA, "", 200, "iam.allow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", tt.srv.URL+"/v1/authz", nil)
			req.Header.Set("X-Original-Method", "GET")
			req.Header.Set("X-Original-URI", "/api/v1/portfolios/portfolio/")
			if tt.authorization != "" {
				req.Header.Set("Authorization", tt.authorization)
			}
			if tt.user != "" {
				req.Header.Set("X-User", tt.user)
			}
			resp, err := httpClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus || resp.Header.Get("X-Verdict-Reason") != tt.wantReason {
				t.Fatalf("status %d reason %q, want %d %q", resp.StatusCode, resp.Header.Get("X-Verdict-Reason"), tt.wantStatus, tt.wantReason)
			}
		})
	}
}
