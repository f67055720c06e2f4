package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// A JWKS without --authz-jwt-audience warns once; with it, no warning and
// both claims reach the options; issuer or audience without a JWKS is an
// error rather than a check that never runs.
func TestAuthzJWTFlags(t *testing.T) {
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwks, []byte(`{"keys":[{"kty":"oct","kid":"k1","k":"c2VjcmV0"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		flags     authzFlags
		wantWarn  bool
		wantError bool
	}{
		{"no JWKS", authzFlags{}, false, false},
		{"JWKS without audience warns", authzFlags{jwksFile: jwks}, true, false},
		{"JWKS with issuer only warns", authzFlags{jwksFile: jwks, jwtIssuer: "https://id.example.com/"}, true, false},
		{"JWKS with audience", authzFlags{jwksFile: jwks, jwtIssuer: "https://id.example.com/", jwtAudience: "verdict"}, false, false},
		{"audience without JWKS", authzFlags{jwtAudience: "verdict"}, false, true},
		{"issuer without JWKS", authzFlags{jwtIssuer: "https://id.example.com/"}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			o, err := tt.flags.options(slog.New(slog.NewTextHandler(&logs, nil)))
			if (err != nil) != tt.wantError {
				t.Fatalf("error %v, want error %v", err, tt.wantError)
			}
			if warned := strings.Count(logs.String(), "level=WARN"); warned != map[bool]int{true: 1}[tt.wantWarn] {
				t.Errorf("%d warnings, want %v:\n%s", warned, tt.wantWarn, logs.String())
			}
			if err == nil && (o.Issuer != tt.flags.jwtIssuer || o.Audience != tt.flags.jwtAudience) {
				t.Errorf("options issuer %q audience %q, want %q %q", o.Issuer, o.Audience, tt.flags.jwtIssuer, tt.flags.jwtAudience)
			}
		})
	}
}

// The header flags reach the /v1/authz options: --authz-tenant (which wins
// over the tenant and key headers) and --authz-ip-header (context.ip, off
// by default).
func TestAuthzHeaderFlags(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	parse := func(args ...string) authzFlags {
		t.Helper()
		var a authzFlags
		f := pflag.NewFlagSet("run", pflag.ContinueOnError)
		a.register(f)
		if err := f.Parse(args); err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := parse()
	o, err := a.options(quiet)
	if err != nil {
		t.Fatal(err)
	}
	if o.Tenant != "" || o.TenantHeader != "X-Verdict-Tenant" || o.KeyHeader != "key" || o.IPHeader != "" {
		t.Errorf("defaults: %+v", o)
	}
	a = parse("--authz-tenant", "bank", "--authz-ip-header", "X-Real-IP")
	if o, err = a.options(quiet); err != nil {
		t.Fatal(err)
	}
	if o.Tenant != "bank" || o.IPHeader != "X-Real-IP" {
		t.Errorf("--authz-tenant bank --authz-ip-header X-Real-IP: %+v", o)
	}
}

// --authz-allow-member-header-without-jwt is the only way to let requests
// without a bearer JWT use the member header once a JWKS is configured:
// the member header with a JWKS but without it would never be read, and the
// opt-in without both flags would do nothing; both are errors naming the
// flags.
func TestAuthzMemberHeaderWithoutJWTFlag(t *testing.T) {
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwks, []byte(`{"keys":[{"kty":"oct","kid":"k1","k":"c2VjcmV0"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name      string
		args      []string
		wantError string
		wantOptIn bool
	}{
		{"member header alone", []string{"--authz-member-header", "X-User"}, "", false},
		{"JWKS alone", []string{"--authz-jwks-file", jwks}, "", false},
		{"JWKS and member header opted in", []string{"--authz-jwks-file", jwks, "--authz-member-header", "X-User", "--authz-allow-member-header-without-jwt"}, "", true},
		{"JWKS and member header without the opt-in", []string{"--authz-jwks-file", jwks, "--authz-member-header", "X-User"}, "--authz-allow-member-header-without-jwt", false},
		{"opt-in without a JWKS", []string{"--authz-member-header", "X-User", "--authz-allow-member-header-without-jwt"}, "--authz-jwks-file", false},
		{"opt-in without a member header", []string{"--authz-jwks-file", jwks, "--authz-allow-member-header-without-jwt"}, "--authz-member-header", false},
		{"a JWKS that cannot be read", []string{"--authz-jwks-file", jwks + ".missing"}, "--authz-jwks-file", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a authzFlags
			f := pflag.NewFlagSet("run", pflag.ContinueOnError)
			a.register(f)
			if err := f.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			o, err := a.options(quiet)
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("error %v, want one naming %s", err, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.AllowMemberHeaderWithoutJWT != tt.wantOptIn {
				t.Errorf("AllowMemberHeaderWithoutJWT = %v, want %v", o.AllowMemberHeaderWithoutJWT, tt.wantOptIn)
			}
		})
	}
}
