package main

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/pflag"

	"github.com/verdict-authz/verdict/decision/httpapi"
)

// authzFlags configure GET /v1/authz, the nginx auth_request endpoint.
type authzFlags struct {
	tenant        string
	tenantHeader  string
	keyHeader     string
	serviceHeader string
	memberHeader  string
	ipHeader      string
	frnHeader     string
	jwksFile      string
	memberClaim   string
	jwtIssuer     string
	jwtAudience   string

	// memberHeaderWithoutJWT lets requests without a bearer JWT fall back
	// to memberHeader when a JWKS is configured.
	memberHeaderWithoutJWT bool
}

func (a *authzFlags) register(f *pflag.FlagSet) {
	f.StringVar(&a.tenant, "authz-tenant", "", "/v1/authz: the tenant of every request; the tenant header is then ignored and a key must belong to this tenant")
	f.StringVar(&a.tenantHeader, "authz-tenant-header", "X-Verdict-Tenant", "/v1/authz: header naming the tenant when --authz-tenant is not set (the proxy must set or clear it)")
	f.StringVar(&a.keyHeader, "authz-key-header", "key", "/v1/authz: header carrying the tenant key (names the tenant when neither --authz-tenant nor the tenant header does)")
	f.StringVar(&a.serviceHeader, "authz-service-header", "X-Verdict-Service", "/v1/authz: header naming the service whose routes apply")
	f.StringVar(&a.memberHeader, "authz-member-header", "", "/v1/authz: trusted header naming the member (only if the proxy strips it from clients); with --authz-jwks-file, read only with --authz-allow-member-header-without-jwt")
	f.BoolVar(&a.memberHeaderWithoutJWT, "authz-allow-member-header-without-jwt", false, "/v1/authz with --authz-jwks-file and --authz-member-header: a request carrying no bearer token names its member in the header (off: a valid bearer JWT is required, 401 token.missing without one)")
	f.StringVar(&a.ipHeader, "authz-ip-header", "", "/v1/authz: trusted header with the client's IP, passed as context.ip (e.g. X-Real-IP; only if the proxy overwrites it: proxy_set_header X-Real-IP $remote_addr)")
	f.StringVar(&a.frnHeader, "authz-frn-header", "", "/v1/authz: trusted header with the FRN of the object the request acts on, passed as resource.frn (e.g. X-Verdict-FRN, set by the proxy from the URL; only if the proxy sets or clears it on every request)")
	f.StringVar(&a.jwksFile, "authz-jwks-file", "", "/v1/authz: JWKS file verifying Authorization: Bearer JWTs, which every request must then carry (with an exp claim)")
	f.StringVar(&a.memberClaim, "authz-member-claim", "sub", "/v1/authz: JWT claim naming the member")
	f.StringVar(&a.jwtIssuer, "authz-jwt-issuer", "", "/v1/authz: refuse bearer JWTs whose iss is missing or not this value (needs --authz-jwks-file)")
	f.StringVar(&a.jwtAudience, "authz-jwt-audience", "", "/v1/authz: refuse bearer JWTs whose aud is missing or does not contain this value (needs --authz-jwks-file)")
}

// options builds the /v1/authz options; each error names the flags it is
// about. It warns on log when JWTs are verified without an audience check.
func (a *authzFlags) options(log *slog.Logger) (httpapi.AuthzOptions, error) {
	o := httpapi.AuthzOptions{
		Tenant:                      a.tenant,
		TenantHeader:                a.tenantHeader,
		KeyHeader:                   a.keyHeader,
		ServiceHeader:               a.serviceHeader,
		MemberHeader:                a.memberHeader,
		AllowMemberHeaderWithoutJWT: a.memberHeaderWithoutJWT,
		IPHeader:                    a.ipHeader,
		FRNHeader:                   a.frnHeader,
		MemberClaim:                 a.memberClaim,
		Issuer:                      a.jwtIssuer,
		Audience:                    a.jwtAudience,
	}
	switch {
	case a.memberHeaderWithoutJWT && (a.jwksFile == "" || a.memberHeader == ""):
		return o, errors.New("--authz-allow-member-header-without-jwt needs both --authz-jwks-file and --authz-member-header (it lets a request without a bearer JWT name its member in that header)")
	case a.jwksFile != "" && a.memberHeader != "" && !a.memberHeaderWithoutJWT:
		return o, errors.New("--authz-member-header is never read with --authz-jwks-file, which requires a bearer JWT on every request: drop it, or add --authz-allow-member-header-without-jwt to let a request without a bearer JWT name its member in that header")
	}
	if a.jwksFile == "" {
		if a.jwtIssuer != "" || a.jwtAudience != "" {
			return o, errors.New("--authz-jwks-file: required by --authz-jwt-issuer and --authz-jwt-audience (they check bearer JWTs, which are verified only against a JWKS)")
		}
		return o, nil
	}
	set, err := httpapi.LoadJWKS(a.jwksFile)
	if err != nil {
		return o, fmt.Errorf("--authz-jwks-file: %w", err)
	}
	o.JWKS = set
	if a.jwtAudience == "" {
		log.Warn("/v1/authz: --authz-jwks-file without --authz-jwt-audience: a bearer JWT signed by a key in the JWKS is accepted whatever its audience (OPA and Envoy jwt_authn setups usually check it); set --authz-jwt-audience",
			"jwks_file", a.jwksFile)
	}
	return o, nil
}
