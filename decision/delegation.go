package decision

import (
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/verdict-authz/verdict/loader/store"
)

var (
	keyDelegation = ast.StringTerm("delegation")
	keyEntries    = ast.StringTerm("entries")
)

// delegationFacts gathers what layer 5 (delegation, Fineract CN) needs for
// a request made by an application on behalf of a member:
//
//	facts.delegation = {
//	  groups:  {group, …},   // the permittable groups that list the route
//	  entries: {group: {operations: {"READ", …}, enabled_by: {member, …}}},
//	}
//
// entries holds the tenant's effective delegation entries of the
// application (bundle and run-time, see loader/store/runtime.go) for those
// groups only.
func delegationFacts(r *store.Reader, tenant, application string, groups []string) (*ast.Term, error) {
	groupTerms := make([]*ast.Term, len(groups))
	entries := make([][2]*ast.Term, 0, len(groups))
	for i, g := range groups {
		groupTerms[i] = ast.StringTerm(g)
		rec, err := r.Delegation(tenant, application, g)
		if err != nil {
			return nil, err
		}
		if rec != nil {
			entries = append(entries, [2]*ast.Term{groupTerms[i], rec.Facts})
		}
	}
	return ast.ObjectTerm(
		[2]*ast.Term{keyGroups, ast.SetTerm(groupTerms...)},
		[2]*ast.Term{keyEntries, ast.ObjectTerm(entries...)},
	), nil
}
