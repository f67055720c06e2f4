package decision

import (
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/verdict-authz/verdict/loader/store"
)

// aclCandidates are the ACLs that may govern the route's service for a
// request with a key, in the order the package layer takes the first
// present: the member's ACL for the key, the member's ACL for the package,
// the application's, the package's (nil: absent).
type aclCandidates [len(aclSources)]*ast.Term

// aclSources names each candidate: its key in input.facts.acl, the
// definition's input, and its acl_source.
var aclSources = [...]struct{ key, source *ast.Term }{
	{ast.StringTerm("member_key"), ast.StringTerm("member key")},
	{ast.StringTerm("member_package"), ast.StringTerm("member package")},
	{ast.StringTerm("application"), ast.StringTerm("application")},
	{ast.StringTerm("package"), ast.StringTerm("package")},
}

// Pre-built keys of ACL entries and of input.facts.package_acl.
var (
	keyPackageACL = ast.StringTerm("package_acl")
	keySource     = ast.StringTerm("source")
	keyAccess     = ast.StringTerm("access")
	keyRestricted = ast.StringTerm("restricted")
	keyAPI        = ast.StringTerm("api")
	keyAPIs       = ast.StringTerm("apis")
	keyMethods    = ast.StringTerm("methods")
)

// candidateACLs gathers every ACL that may govern the service, by where it
// comes from (see aclCandidates).
func candidateACLs(r *store.Reader, tenant *store.TenantRecord, member *store.MemberRecord, key *store.KeyRecord, rawKey, service string) (aclCandidates, error) {
	var c aclCandidates
	if member != nil {
		c[0] = member.KeyACLs[rawKey][service]
		c[1] = member.PackageACLs[key.Package][service]
	}
	c[2] = tenant.ApplicationACLs[key.Application][service]
	pkg, err := r.Package(key.Package)
	if err != nil {
		return c, err
	}
	if pkg != nil {
		c[3] = pkg.ACL[service]
	}
	return c, nil
}

// term is the candidates as the package layer's definition reads them,
// input.facts.acl: {member_key, member_package, application, package},
// the absent left out.
func (c *aclCandidates) term() *ast.Term {
	items := make([][2]*ast.Term, 0, len(c))
	for i, t := range c {
		if t != nil {
			items = append(items, [2]*ast.Term{aclSources[i].key, t})
		}
	}
	return ast.ObjectTerm(items...)
}

// narrow is what the package layer's checks read of the governing ACL for
// the route (routeFacts, input.facts.package_route), input.facts.package_acl:
//
//	{source, access?, restricted?, api?}
//
// the governing ACL's source (its acl_source), its service access, its
// restriction (the method section's when it is a boolean) and the route's
// API entry (from the method section's APIs when it has them), each left
// out when the ACL has none; nil when no candidate is present. It is the
// engine's Rego rules service_acl, acl_source, method_section, acl_apis,
// acl_restricted and api evaluated in Go, terms handed on as they are, as
// DESIGN.md lets Go narrow; TestNarrowedACLAgreesWithRego holds the two
// equal.
func (c *aclCandidates) narrow(routeFacts *ast.Term) *ast.Term {
	acl, source := (*ast.Term)(nil), (*ast.Term)(nil)
	for i, t := range c {
		if present(t) {
			acl, source = t, aclSources[i].source
			break
		}
	}
	if acl == nil {
		return nil
	}
	var section *ast.Term
	if methods := acl.Get(keyMethods); methods != nil {
		if m := routeFacts.Get(keyMethod); m != nil {
			if name, ok := m.Value.(ast.String); ok {
				section = methods.Get(ast.StringTerm(strings.ToLower(string(name))))
			}
		}
	}
	items := make([][2]*ast.Term, 1, 4)
	items[0] = [2]*ast.Term{keySource, source}
	if access := acl.Get(keyAccess); access != nil {
		items = append(items, [2]*ast.Term{keyAccess, access})
	}
	restricted := (*ast.Term)(nil)
	if section != nil {
		if r := section.Get(keyRestricted); r != nil {
			if _, ok := r.Value.(ast.Boolean); ok {
				restricted = r
			}
		}
	}
	if restricted == nil {
		restricted = acl.Get(keyRestricted)
	}
	if restricted != nil {
		items = append(items, [2]*ast.Term{keyRestricted, restricted})
	}
	var apis *ast.Term
	if section != nil {
		if a := section.Get(keyAPIs); present(a) {
			apis = a
		}
	}
	if apis == nil {
		apis = acl.Get(keyAPIs)
	}
	if apis != nil {
		if k := routeFacts.Get(keyAPI); k != nil {
			if api := apis.Get(k); api != nil {
				items = append(items, [2]*ast.Term{keyAPI, api})
			}
		}
	}
	return ast.ObjectTerm(items...)
}

// present says whether a bare reference to t holds in Rego: t is defined
// and not false.
func present(t *ast.Term) bool {
	if t == nil {
		return false
	}
	b, ok := t.Value.(ast.Boolean)
	return !ok || bool(b)
}
