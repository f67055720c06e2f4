package store

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/verdict-authz/verdict/decision/route"
	"github.com/verdict-authz/verdict/loader/acl"
)

// TenantRecord is a loaded tenant.
type TenantRecord struct {
	Code   string
	Bundle string
	Tenant *acl.Tenant
	// Facts is the tenant as Rego sees it: {code, name, checks}.
	Facts *ast.Term
	// ApplicationACLs holds each application's ACL override, by application
	// and service, as Rego terms.
	ApplicationACLs map[string]ACLTerms
}

// ACLTerms maps a service name to its ACL entry as a Rego term.
type ACLTerms map[string]*ast.Term

// KeyRecord is an application key.
type KeyRecord struct {
	Key         string
	Tenant      string
	Application string
	Package     string
	// Facts is the key as Rego sees it: {known, tenant, application,
	// package, expires_ns?}.
	Facts *ast.Term
}

// PackageRecord is a SOAJS product package.
type PackageRecord struct {
	Code    string
	Product string
	Bundle  string
	ACL     ACLTerms
}

// MemberRecord is a loaded member with its statements pre-indexed.
type MemberRecord struct {
	Tenant string
	Name   string
	Member *acl.Member
	// Facts is the member as Rego sees it: {name, is_admin, groups,
	// principals}.
	Facts *ast.Term
	// statements holds the member's deduplicated statements by the index
	// key of their action patterns (see acl.ActionPattern.IndexKey). Members
	// with the same policies share one index.
	statements *statementIndex
	// PackageACLs and KeyACLs are the member's ACL overrides by package code
	// and by key.
	PackageACLs map[string]ACLTerms
	KeyACLs     map[string]ACLTerms
}

// StatementFact is one statement of a tenant, prepared for Rego.
type StatementFact struct {
	// Ordinal orders statements by policy code, then index, within a tenant.
	Ordinal   int
	Statement *acl.Statement
	Term      *ast.Term
}

// StatementList is an ordered list of statements and its Rego array.
type StatementList struct {
	Facts []*StatementFact
	Array *ast.Term
}

// ObjectGroupsRecord lists the resource groups an object is assigned to.
type ObjectGroupsRecord struct {
	Tenant string
	FRN    string // lower case
	Groups []string
}

// ServiceRecord is a loaded catalog service.
type ServiceRecord struct {
	Name    string
	Bundle  string
	Service *acl.Service
}

// RouteTableRecord is a compiled route table for one service or, under the
// scope "*", for all services.
type RouteTableRecord struct {
	Scope string
	Table *route.Table
}

// AllServices is the route-table scope that searches every service.
const AllServices = "*"

func tenantFacts(t *acl.Tenant) *ast.Term {
	checks := make([]*ast.Term, len(t.Checks))
	for i, c := range t.Checks {
		checks[i] = ast.StringTerm(c)
	}
	return ast.ObjectTerm(
		ast.Item(ast.StringTerm("code"), ast.StringTerm(t.Code)),
		ast.Item(ast.StringTerm("name"), ast.StringTerm(t.Name)),
		ast.Item(ast.StringTerm("checks"), ast.SetTerm(checks...)),
	)
}

func memberFacts(m *acl.Member) *ast.Term {
	groups := make([]*ast.Term, len(m.Groups))
	for i, g := range m.Groups {
		groups[i] = ast.StringTerm(g)
	}
	principals := m.Principals()
	pterms := make([]*ast.Term, len(principals))
	for i, p := range principals {
		pterms[i] = ast.StringTerm(p)
	}
	return ast.ObjectTerm(
		ast.Item(ast.StringTerm("name"), ast.StringTerm(m.Name)),
		ast.Item(ast.StringTerm("is_admin"), ast.BooleanTerm(m.IsAdmin)),
		ast.Item(ast.StringTerm("groups"), ast.SetTerm(groups...)),
		ast.Item(ast.StringTerm("principals"), ast.SetTerm(pterms...)),
	)
}

func statementTerm(s *acl.Statement) *ast.Term {
	actions := make([]*ast.Term, len(s.Actions))
	for i, a := range s.Actions {
		actions[i] = ast.StringTerm(a.Glob)
	}
	resources := make([]*ast.Term, len(s.Resources))
	for i, r := range s.Resources {
		resources[i] = ast.ObjectTerm(
			ast.Item(ast.StringTerm("kind"), ast.StringTerm(string(r.Kind))),
			ast.Item(ast.StringTerm("pattern"), ast.StringTerm(r.Pattern)),
			ast.Item(ast.StringTerm("literal"), ast.BooleanTerm(r.Literal)),
		)
	}
	strs := func(list []string) *ast.Term {
		terms := make([]*ast.Term, len(list))
		for i, v := range list {
			terms[i] = ast.StringTerm(v)
		}
		return ast.ArrayTerm(terms...)
	}
	return ast.ObjectTerm(
		ast.Item(ast.StringTerm("policy"), ast.StringTerm(s.Policy)),
		ast.Item(ast.StringTerm("statement"), ast.IntNumberTerm(s.Index)),
		ast.Item(ast.StringTerm("effect"), ast.StringTerm(string(s.Effect))),
		ast.Item(ast.StringTerm("actions"), ast.ArrayTerm(actions...)),
		ast.Item(ast.StringTerm("resources"), ast.ArrayTerm(resources...)),
		ast.Item(ast.StringTerm("principals"), strs(s.Principals)),
		ast.Item(ast.StringTerm("conditions"), strs(s.Conditions)),
	)
}

// tenantStatements prepares every statement of the tenant, ordered by policy
// code and index.
func tenantStatements(t *acl.Tenant) map[string][]*StatementFact {
	codes := make([]string, 0, len(t.Policies))
	for c := range t.Policies {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	out := make(map[string][]*StatementFact, len(codes))
	ordinal := 0
	for _, c := range codes {
		for _, s := range t.Policies[c].Statements {
			out[c] = append(out[c], &StatementFact{Ordinal: ordinal, Statement: s, Term: statementTerm(s)})
			ordinal++
		}
	}
	return out
}

// statementIndex maps action index keys to statement lists, sorted by key
// for binary search. It is immutable once built and shared.
type statementIndex struct {
	keys  []string
	lists []*StatementList
}

func (ix *statementIndex) lookup(key string) *StatementList {
	lo, hi := 0, len(ix.keys)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if ix.keys[mid] < key {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(ix.keys) && ix.keys[lo] == key {
		return ix.lists[lo]
	}
	return nil
}

// indexBuilder builds members' statement indexes for one tenant, sharing
// identical lists and identical indexes between members: with thousands of
// members the same few statements make up most lists.
type indexBuilder struct {
	tenant   *acl.Tenant
	byPolicy map[string][]*StatementFact
	lists    map[string]*StatementList
	indexes  map[string]*statementIndex
}

func newIndexBuilder(t *acl.Tenant) *indexBuilder {
	return &indexBuilder{
		tenant:   t,
		byPolicy: tenantStatements(t),
		lists:    map[string]*StatementList{},
		indexes:  map[string]*statementIndex{},
	}
}

// memberIndex indexes the member's statements (each policy counted once).
func (b *indexBuilder) memberIndex(m *acl.Member) *statementIndex {
	policies := b.tenant.MemberPolicies(m)
	sig := strings.Join(policies, "\x00")
	if ix, ok := b.indexes[sig]; ok {
		return ix
	}
	var facts []*StatementFact
	for _, code := range policies {
		facts = append(facts, b.byPolicy[code]...)
	}
	sort.Slice(facts, func(i, j int) bool { return facts[i].Ordinal < facts[j].Ordinal })
	buckets := map[string][]*StatementFact{}
	for _, f := range facts {
		for _, a := range f.Statement.Actions {
			list := buckets[a.IndexKey]
			if n := len(list); n > 0 && list[n-1] == f {
				continue
			}
			buckets[a.IndexKey] = append(list, f)
		}
	}
	ix := &statementIndex{keys: make([]string, 0, len(buckets))}
	for k := range buckets {
		ix.keys = append(ix.keys, k)
	}
	sort.Strings(ix.keys)
	ix.lists = make([]*StatementList, len(ix.keys))
	for i, k := range ix.keys {
		ix.lists[i] = b.sharedList(buckets[k])
	}
	b.indexes[sig] = ix
	return ix
}

// sharedList returns the one StatementList with exactly these statements.
func (b *indexBuilder) sharedList(facts []*StatementFact) *StatementList {
	var sig strings.Builder
	for _, f := range facts {
		sig.WriteString(strconv.Itoa(f.Ordinal))
		sig.WriteByte(',')
	}
	if l, ok := b.lists[sig.String()]; ok {
		return l
	}
	l := newStatementList(facts)
	b.lists[sig.String()] = l
	return l
}

func newStatementList(facts []*StatementFact) *StatementList {
	terms := make([]*ast.Term, len(facts))
	for i, f := range facts {
		terms[i] = f.Term
	}
	return &StatementList{Facts: facts, Array: ast.ArrayTerm(terms...)}
}

var emptyStatements = newStatementList(nil)

// StatementsFor returns the member's statements whose action patterns could
// match the action (lower case), in policy order, each once. Keys is scratch
// space for the index keys and may be nil.
func (m *MemberRecord) StatementsFor(actionLower string, keys []string) *StatementList {
	keys = acl.ActionIndexKeys(actionLower, keys)
	var found [4]*StatementList
	n := 0
	for _, k := range keys {
		if l := m.statements.lookup(k); l != nil {
			if n == len(found) {
				break
			}
			found[n] = l
			n++
		}
	}
	switch n {
	case 0:
		return emptyStatements
	case 1:
		return found[0]
	}
	return mergeStatementLists(found[:n])
}

// mergeStatementLists merges ordered lists by ordinal, dropping duplicates.
func mergeStatementLists(lists []*StatementList) *StatementList {
	total := 0
	for _, l := range lists {
		total += len(l.Facts)
	}
	merged := make([]*StatementFact, 0, total)
	pos := make([]int, len(lists))
	for {
		best := -1
		for i, l := range lists {
			if pos[i] < len(l.Facts) && (best < 0 || l.Facts[pos[i]].Ordinal < lists[best].Facts[pos[best]].Ordinal) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		f := lists[best].Facts[pos[best]]
		pos[best]++
		if n := len(merged); n > 0 && merged[n-1] == f {
			continue
		}
		merged = append(merged, f)
	}
	return newStatementList(merged)
}

// objectAssignments inverts the tenant's resource groups: lower-cased object
// FRN → sorted group codes.
func objectAssignments(t *acl.Tenant) map[string][]string {
	out := map[string][]string{}
	for code, rg := range t.ResourceGroups {
		for _, frn := range rg.Assignments {
			out[frn] = append(out[frn], strings.ToLower(code))
		}
	}
	for frn, groups := range out {
		sort.Strings(groups)
		out[frn] = dedupSorted(groups)
	}
	return out
}

func dedupSorted(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// UnknownKeyFacts is what Rego sees for a key the store does not know.
var UnknownKeyFacts = ast.ObjectTerm(ast.Item(ast.StringTerm("known"), ast.BooleanTerm(false)))

func keyFacts(tenant string, app *acl.Application, k *acl.Key) *ast.Term {
	items := [][2]*ast.Term{
		ast.Item(ast.StringTerm("known"), ast.BooleanTerm(true)),
		ast.Item(ast.StringTerm("tenant"), ast.StringTerm(tenant)),
		ast.Item(ast.StringTerm("application"), ast.StringTerm(app.Name)),
		ast.Item(ast.StringTerm("package"), ast.StringTerm(app.Package)),
	}
	if !k.Expires.IsZero() {
		items = append(items, ast.Item(ast.StringTerm("expires_ns"), ast.NumberTerm(json.Number(strconv.FormatInt(k.Expires.UnixNano(), 10)))))
	}
	return ast.ObjectTerm(items...)
}

// aclTerms prepares an ACL for Rego: per service
//
//	{access: false|true|[groups], restricted: bool, apis: {API key: {template, access}},
//	 methods: {get: {apis?, restricted?}, ...}}
func aclTerms(a acl.ACL) ACLTerms {
	if a == nil {
		return nil
	}
	out := make(ACLTerms, len(a))
	for svc, entry := range a {
		methods := make([][2]*ast.Term, 0, len(entry.Methods))
		for m, section := range entry.Methods {
			items := [][2]*ast.Term{}
			if section.APIs != nil {
				items = append(items, ast.Item(ast.StringTerm("apis"), apisTerm(section.APIs)))
			}
			if section.Restricted != nil {
				items = append(items, ast.Item(ast.StringTerm("restricted"), ast.BooleanTerm(*section.Restricted)))
			}
			methods = append(methods, ast.Item(ast.StringTerm(m), ast.ObjectTerm(items...)))
		}
		out[svc] = ast.ObjectTerm(
			ast.Item(ast.StringTerm("access"), accessTerm(entry.Access)),
			ast.Item(ast.StringTerm("restricted"), ast.BooleanTerm(entry.Restricted)),
			ast.Item(ast.StringTerm("apis"), apisTerm(entry.APIs)),
			ast.Item(ast.StringTerm("methods"), ast.ObjectTerm(methods...)),
		)
	}
	return out
}

func apisTerm(apis map[string]*acl.APIACL) *ast.Term {
	items := make([][2]*ast.Term, 0, len(apis))
	for key, api := range apis {
		items = append(items, ast.Item(ast.StringTerm(key), ast.ObjectTerm(
			ast.Item(ast.StringTerm("template"), ast.StringTerm(api.Template)),
			ast.Item(ast.StringTerm("access"), accessTerm(api.Access)),
		)))
	}
	return ast.ObjectTerm(items...)
}

func accessTerm(a acl.Access) *ast.Term {
	if a.Groups != nil {
		groups := make([]*ast.Term, len(a.Groups))
		for i, g := range a.Groups {
			groups[i] = ast.StringTerm(g)
		}
		return ast.ArrayTerm(groups...)
	}
	return ast.BooleanTerm(a.Required)
}

func aclTermsByName(m map[string]acl.ACL) map[string]ACLTerms {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]ACLTerms, len(m))
	for name, a := range m {
		out[name] = aclTerms(a)
	}
	return out
}
