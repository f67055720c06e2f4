package acl

import (
	"sort"
	"time"
)

// Catalog holds what verdict.catalog declares: the services whose routes
// translate requests into actions.
type Catalog struct {
	Services map[string]*Service
	// Products are SOAJS products; Packages indexes their packages by code
	// (package codes are unique across products).
	Products map[string]*Product
	Packages map[string]*Package
}

// Product is verdict.catalog.products.<code>.
type Product struct {
	Code     string
	Packages map[string]*Package
}

// Package is a SOAJS product package: an ACL over services.
type Package struct {
	Code    string
	Product string
	ACL     ACL
}

// ACL maps a service name to what a package, application or member
// override allows on it (SOAJS).
type ACL map[string]*ServiceACL

// ServiceACL is one service's entry in an ACL.
type ServiceACL struct {
	// Access is the service's access: false, true (a logged-in member is
	// needed) or a list of groups.
	Access Access
	// Restricted is apisPermission: restricted (only listed APIs).
	Restricted bool
	// APIs maps an API key (see APIKey) to its entry.
	APIs map[string]*APIACL
	// Methods holds per-method sections by lower-case method name.
	Methods map[string]*MethodACL
}

// MethodACL is a per-method section of a service ACL. Nil fields fall back
// to the service's.
type MethodACL struct {
	APIs       map[string]*APIACL
	Restricted *bool
}

// APIACL is one API's entry.
type APIACL struct {
	// Template is the route template as the bundle wrote it.
	Template string
	Access   Access
}

// Access is SOAJS's access value: false, true or a list of groups.
type Access struct {
	Required bool
	// Groups, when set, names the groups that may pass.
	Groups []string
}

// Service is verdict.catalog.services.<name>.
type Service struct {
	Name   string
	Routes []Route
	// PermittableGroups maps a group name (Fineract CN) to the endpoints it
	// covers.
	PermittableGroups map[string][]Endpoint
	// File is the bundle file the service came from.
	File string
}

// RouteKind tells how a route maps methods to actions.
type RouteKind int

const (
	// RouteCollection is a Finmars REST collection: GET/POST on its path and
	// GET/PUT/PATCH/DELETE on {id} below it.
	RouteCollection RouteKind = iota
	// RouteCustom is one method on one path with an explicit action.
	RouteCustom
)

// Route is one entry of a service's routes.
type Route struct {
	Kind RouteKind
	// Method is the upper-case HTTP method of a custom route.
	Method string
	// Path is the path template as written, e.g. /api/v1/portfolios/portfolio/.
	Path string
	// ViewSet is the Finmars view set (may be empty for a plain API).
	ViewSet string
	// Action is the full action of a custom route (finmars:<ViewSet>:<name>,
	// or the action given whole for a plain API).
	Action string
}

// Endpoint is a method and path template.
type Endpoint struct {
	Method string
	Path   string
}

// Tenant is verdict.tenants.<code>.
type Tenant struct {
	Code           string
	Name           string
	Checks         []string
	Members        map[string]*Member
	Roles          map[string]*Role
	Groups         map[string]*Group
	Policies       map[string]*Policy
	ResourceGroups map[string]*ResourceGroup
	Applications   map[string]*Application
	// Delegations are the delegation grants the bundle declares (Fineract
	// CN), by application and permittable group.
	Delegations map[string]map[string]*Delegation
	// File is the bundle file holding the tenant's root document.
	File string
}

// Application gives a tenant a package (SOAJS); its keys name it.
type Application struct {
	Name    string
	Package string
	// ACL, when set, overrides the package's ACL service by service.
	ACL  ACL
	Keys []*Key
}

// Key is an external key of an application.
type Key struct {
	Key string
	// Expires is when the key stops being valid (zero: never).
	Expires time.Time
	Config  any
}

// WithoutMembers returns a copy of the tenant without its members (Members
// is nil), sharing everything else: what is kept of a tenant once its
// members are indexed (see the store), the members being most of its size.
func (t *Tenant) WithoutMembers() *Tenant {
	slim := *t
	slim.Members = nil
	return &slim
}

// HasCheck reports whether the tenant applies the named layer.
func (t *Tenant) HasCheck(name string) bool {
	for _, c := range t.Checks {
		if c == name {
			return true
		}
	}
	return false
}

// Member is a tenant member.
type Member struct {
	Name     string
	IsAdmin  bool
	Roles    []string
	Groups   []string
	Policies []string
	// PackageACLs and KeyACLs are the member's own ACL overrides, by package
	// code and by key.
	PackageACLs map[string]ACL
	KeyACLs     map[string]ACL
}

// Role bundles policies.
type Role struct {
	Code     string
	Policies []string
}

// Group bundles roles and policies.
type Group struct {
	Code     string
	Roles    []string
	Policies []string
}

// Policy is a Finmars access policy.
type Policy struct {
	Code       string
	Version    string
	Statements []*Statement
}

// Effect is Allow or Deny.
type Effect string

const (
	Allow Effect = "allow"
	Deny  Effect = "deny"
)

// Statement is one statement of an access policy.
type Statement struct {
	// Policy and Index name the statement in reasons.
	Policy string
	Index  int
	Sid    string
	Effect Effect
	// Actions are the parsed Action patterns.
	Actions []ActionPattern
	// Resources are the parsed Resource patterns.
	Resources []ResourcePattern
	// Principals are the Principal entries as written ("*" when absent).
	Principals []string
	// Conditions name rules data.verdict.conditions.<name>.
	Conditions []string
}

// ResourceGroup is a Finmars resource group.
type ResourceGroup struct {
	Code        string
	Assignments []string // lower-cased object FRNs
}

// MemberPolicies returns the codes of every policy that applies to the
// member (direct, its roles', its groups' and its groups' roles'), each once,
// sorted.
func (t *Tenant) MemberPolicies(m *Member) []string {
	seen := make(map[string]struct{}, len(m.Policies)+4)
	add := func(codes []string) {
		for _, c := range codes {
			seen[c] = struct{}{}
		}
	}
	add(m.Policies)
	for _, r := range m.Roles {
		if role := t.Roles[r]; role != nil {
			add(role.Policies)
		}
	}
	for _, g := range m.Groups {
		group := t.Groups[g]
		if group == nil {
			continue
		}
		add(group.Policies)
		for _, r := range group.Roles {
			if role := t.Roles[r]; role != nil {
				add(role.Policies)
			}
		}
	}
	out := make([]string, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// Principals returns the principal names the member answers to: "*",
// "member:<name>" and "group:<code>" for each of its groups.
func (m *Member) Principals() []string {
	out := make([]string, 0, 2+len(m.Groups))
	out = append(out, "*", "member:"+m.Name)
	for _, g := range m.Groups {
		out = append(out, "group:"+g)
	}
	return out
}

// RefKind names what a cross-bundle reference points at.
type RefKind string

const (
	RefCondition RefKind = "condition"
	RefPackage   RefKind = "package"
	RefService   RefKind = "service"
	// RefPermittableGroup is a delegation naming a permittable group of
	// some catalog service.
	RefPermittableGroup RefKind = "permittable group"
)

// Ref is a reference that only the full set of loaded bundles can resolve
// (a tenant naming a catalog package, an ACL naming a service, a statement
// naming a condition rule), kept so that a dangling one is reported where
// it was written.
type Ref struct {
	Kind RefKind
	Name string
	Loc  Loc
}
