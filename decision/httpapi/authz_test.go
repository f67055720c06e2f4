package httpapi_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/verdict-authz/verdict/decision/httpapi"
	"github.com/verdict-authz/verdict/loader/loadertest"
)

// authzSigner holds a signing key whose public half is in jwks.
type authzSigner struct {
	priv jwk.Key
	jwks jwk.Set
}

func newAuthzSigner(t *testing.T) *authzSigner {
	t.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	priv.Set(jwk.KeyIDKey, "test")
	priv.Set(jwk.AlgorithmKey, jwa.ES256())
	pub, err := priv.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		t.Fatal(err)
	}
	return &authzSigner{priv: priv, jwks: set}
}

// sign makes a token for sub; claims adds (or, with a nil value, leaves
// out) registered and private claims.
func (s *authzSigner) sign(t *testing.T, sub string, exp time.Time, claims map[string]any) string {
	t.Helper()
	tok, err := jwt.NewBuilder().Subject(sub).Expiration(exp).Build()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range claims {
		if v == nil {
			continue
		}
		if err := tok.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), s.priv))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

// authzServer serves the demo bundle with /v1/authz verifying bearer JWTs.
func authzServer(t *testing.T, o httpapi.AuthzOptions) *httptest.Server {
	t.Helper()
	engine, _ := loadertest.Demo(t)
	srv := httptest.NewServer(httpapi.New(engine, httpapi.Options{Log: quiet, Authz: o}))
	t.Cleanup(srv.Close)
	return srv
}

func TestAuthzJWTIssuerAndAudience(t *testing.T) {
	signer := newAuthzSigner(t)
	const (
		issuer   = "https://id.example.com/"
		audience = "verdict"
	)
	checked := authzServer(t, httpapi.AuthzOptions{Tenant: "bank", JWKS: signer.jwks, Issuer: issuer, Audience: audience})
	unchecked := authzServer(t, httpapi.AuthzOptions{Tenant: "bank", JWKS: signer.jwks})
	issOnly := authzServer(t, httpapi.AuthzOptions{Tenant: "bank", JWKS: signer.jwks, Issuer: issuer})
	audOnly := authzServer(t, httpapi.AuthzOptions{Tenant: "bank", JWKS: signer.jwks, Audience: audience})

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
		{"right iss and aud", checked, signer.sign(t, "user_a", hour, claims(issuer, audience)), 200, "iam.allow", ""},
		{"aud as an array containing the value", checked, signer.sign(t, "user_a", hour, claims(issuer, []string{"other", audience})), 200, "iam.allow", ""},
		{"wrong iss", checked, signer.sign(t, "user_a", hour, claims("https://evil.example.com/", audience)), 401, "token.invalid", `issuer (claim "iss")`},
		{"missing iss", checked, signer.sign(t, "user_a", hour, claims(nil, audience)), 401, "token.invalid", `issuer (claim "iss")`},
		{"wrong aud", checked, signer.sign(t, "user_a", hour, claims(issuer, "billing")), 401, "token.invalid", `audience (claim "aud")`},
		{"aud array without the value", checked, signer.sign(t, "user_a", hour, claims(issuer, []string{"billing", "reports"})), 401, "token.invalid", `audience (claim "aud")`},
		{"missing aud", checked, signer.sign(t, "user_a", hour, claims(issuer, nil)), 401, "token.invalid", `audience (claim "aud")`},
		{"right iss and aud, expired", checked, signer.sign(t, "user_a", time.Now().Add(-time.Hour), claims(issuer, audience)), 401, "token.invalid", "not valid"},
		{"issuer only: any aud", issOnly, signer.sign(t, "user_a", hour, claims(issuer, "billing")), 200, "iam.allow", ""},
		{"issuer only: wrong iss", issOnly, signer.sign(t, "user_a", hour, claims("https://evil.example.com/", audience)), 401, "token.invalid", `issuer (claim "iss")`},
		{"audience only: any iss", audOnly, signer.sign(t, "user_a", hour, claims("https://evil.example.com/", audience)), 200, "iam.allow", ""},
		{"audience only: missing aud", audOnly, signer.sign(t, "user_a", hour, claims(issuer, nil)), 401, "token.invalid", `audience (claim "aud")`},
		{"unset: wrong iss and aud still accepted", unchecked, signer.sign(t, "user_a", hour, claims("https://evil.example.com/", "billing")), 200, "iam.allow", ""},
		{"unset: no iss or aud accepted", unchecked, signer.sign(t, "user_a", hour, nil), 200, "iam.allow", ""},
		{"unset: expired still refused", unchecked, signer.sign(t, "user_a", time.Now().Add(-time.Hour), nil), 401, "token.invalid", "not valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("GET", tt.srv.URL+"/v1/authz", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Original-Method", "GET")
			req.Header.Set("X-Original-URI", "/api/v1/portfolios/portfolio/")
			req.Header.Set("Authorization", "Bearer "+tt.token)
			resp, err := tt.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %v", resp.StatusCode, tt.wantStatus, body)
			}
			if got := resp.Header.Get(httpapi.HeaderReason); got != tt.wantReason {
				t.Errorf("%s %q, want %q", httpapi.HeaderReason, got, tt.wantReason)
			}
			if tt.wantStatus != 401 {
				if resp.Header.Get(httpapi.HeaderDecisionID) == "" {
					t.Errorf("no %s", httpapi.HeaderDecisionID)
				}
				return
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
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
