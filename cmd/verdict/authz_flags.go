package main

import (
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
	jwksFile      string
	memberClaim   string
}

func (a *authzFlags) register(f *pflag.FlagSet) {
	f.StringVar(&a.tenant, "authz-tenant", "", "/v1/authz: tenant when the request names neither tenant nor key")
	f.StringVar(&a.tenantHeader, "authz-tenant-header", "X-Verdict-Tenant", "/v1/authz: header naming the tenant")
	f.StringVar(&a.keyHeader, "authz-key-header", "key", "/v1/authz: header carrying the tenant key")
	f.StringVar(&a.serviceHeader, "authz-service-header", "X-Verdict-Service", "/v1/authz: header naming the service whose routes apply")
	f.StringVar(&a.memberHeader, "authz-member-header", "", "/v1/authz: trusted header naming the member (only if the proxy strips it from clients)")
	f.StringVar(&a.jwksFile, "authz-jwks-file", "", "/v1/authz: JWKS file verifying Authorization: Bearer JWTs")
	f.StringVar(&a.memberClaim, "authz-member-claim", "sub", "/v1/authz: JWT claim naming the member")
}

func (a *authzFlags) options() (httpapi.AuthzOptions, error) {
	o := httpapi.AuthzOptions{
		Tenant:        a.tenant,
		TenantHeader:  a.tenantHeader,
		KeyHeader:     a.keyHeader,
		ServiceHeader: a.serviceHeader,
		MemberHeader:  a.memberHeader,
		MemberClaim:   a.memberClaim,
	}
	if a.jwksFile != "" {
		set, err := httpapi.LoadJWKS(a.jwksFile)
		if err != nil {
			return o, err
		}
		o.JWKS = set
	}
	return o, nil
}
