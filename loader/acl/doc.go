// Package acl is verdict's typed model of the bundle documents it understands
// (verdict.catalog and verdict.tenants) and their validation.
//
// Parsing turns the generic data tree that OPA's bundle reader produces into
// Tenant, Member, Policy, Statement, Service and Route values; every problem
// found is reported with the bundle file and the entry it came from, e.g.
//
//	verdict/tenants/acme/data.yaml: members.bob.roles[1]: unknown role "viwer"
//
// Action patterns and FRNs are parsed here, once, at load time, into forms the
// decision engine can index and hand to Rego without further work.
package acl
