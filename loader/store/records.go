package store

import (
	"encoding/binary"
	"encoding/json"
	"slices"
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

// indexBuilder builds members' statement indexes for one tenant. Work that
// does not depend on the member is done once: every policy's statements
// paired with their action index keys, and each role's and group's policy
// set. Identical lists and identical indexes are shared between members:
// with thousands of members the same few statements make up most lists.
//
// A (key, statement) pair is packed into a uint64: the key's ID in the
// upper half (IDs follow the keys' lexical order) and the statement's
// ordinal in the lower, so that a member's pairs sort as plain integers.
type indexBuilder struct {
	policyID      map[string]int // policy code → position in code order
	policyPairs   [][]uint64     // by policy ID, sorted
	keys          []string       // by key ID, in lexical order
	facts         []*StatementFact
	rolePolicies  map[string][]int
	groupPolicies map[string][]int
	lists         map[string]*StatementList  // by binary ordinal signature
	indexes       map[string]*statementIndex // by binary policy-set signature
	scratchIDs    []int
	scratchPairs  []uint64
	scratchSig    []byte
}

func pack(keyID, ordinal int) uint64 { return uint64(keyID)<<32 | uint64(ordinal) }

func unpack(p uint64) (keyID, ordinal int) { return int(p >> 32), int(p & 0xffffffff) }

func newIndexBuilder(t *acl.Tenant) *indexBuilder {
	byPolicy := tenantStatements(t)
	codes := make([]string, 0, len(t.Policies))
	for c := range t.Policies {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	b := &indexBuilder{
		policyID:      make(map[string]int, len(codes)),
		policyPairs:   make([][]uint64, len(codes)),
		rolePolicies:  make(map[string][]int, len(t.Roles)),
		groupPolicies: make(map[string][]int, len(t.Groups)),
		lists:         map[string]*StatementList{},
		indexes:       map[string]*statementIndex{},
	}
	keySet := map[string]struct{}{}
	for _, code := range codes {
		for _, f := range byPolicy[code] {
			b.facts = append(b.facts, f) // ordinals follow code order
			for _, a := range f.Statement.Actions {
				keySet[a.IndexKey] = struct{}{}
			}
		}
	}
	for k := range keySet {
		b.keys = append(b.keys, k)
	}
	sort.Strings(b.keys)
	keyID := make(map[string]int, len(b.keys))
	for i, k := range b.keys {
		keyID[k] = i
	}
	for id, code := range codes {
		b.policyID[code] = id
		var pairs []uint64
		for _, f := range byPolicy[code] {
			for _, a := range f.Statement.Actions {
				pairs = append(pairs, pack(keyID[a.IndexKey], f.Ordinal))
			}
		}
		slices.Sort(pairs)
		b.policyPairs[id] = slices.Compact(pairs)
	}
	ids := func(codes []string) []int {
		out := make([]int, 0, len(codes))
		for _, c := range codes {
			if id, ok := b.policyID[c]; ok {
				out = append(out, id)
			}
		}
		return out
	}
	for code, r := range t.Roles {
		b.rolePolicies[code] = ids(r.Policies)
	}
	for code, g := range t.Groups {
		set := ids(g.Policies)
		for _, r := range g.Roles {
			set = append(set, b.rolePolicies[r]...)
		}
		b.groupPolicies[code] = set
	}
	return b
}

// memberIndex indexes the member's statements: those of its direct
// policies, its roles', its groups' and its groups' roles', each policy
// counted once.
func (b *indexBuilder) memberIndex(m *acl.Member) *statementIndex {
	ids := b.scratchIDs[:0]
	for _, c := range m.Policies {
		if id, ok := b.policyID[c]; ok {
			ids = append(ids, id)
		}
	}
	for _, r := range m.Roles {
		ids = append(ids, b.rolePolicies[r]...)
	}
	for _, g := range m.Groups {
		ids = append(ids, b.groupPolicies[g]...)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	b.scratchIDs = ids
	sig := b.scratchSig[:0]
	for _, id := range ids {
		sig = binary.AppendUvarint(sig, uint64(id))
	}
	b.scratchSig = sig
	if ix, ok := b.indexes[string(sig)]; ok {
		return ix
	}
	pairs := b.scratchPairs[:0]
	for _, id := range ids {
		pairs = append(pairs, b.policyPairs[id]...)
	}
	slices.Sort(pairs)
	pairs = slices.Compact(pairs)
	b.scratchPairs = pairs
	ix := &statementIndex{}
	for i := 0; i < len(pairs); {
		key, _ := unpack(pairs[i])
		j := i
		for j < len(pairs) && pairs[j]>>32 == pairs[i]>>32 {
			j++
		}
		ix.keys = append(ix.keys, b.keys[key])
		ix.lists = append(ix.lists, b.sharedList(pairs[i:j]))
		i = j
	}
	b.indexes[string(sig)] = ix
	return ix
}

// sharedList returns the one StatementList with exactly these statements
// (pairs of one key, in statement order).
func (b *indexBuilder) sharedList(pairs []uint64) *StatementList {
	sig := b.scratchSig[len(b.scratchSig):]
	for _, p := range pairs {
		sig = binary.AppendUvarint(sig, p&0xffffffff)
	}
	if l, ok := b.lists[string(sig)]; ok {
		return l
	}
	facts := make([]*StatementFact, len(pairs))
	for i, p := range pairs {
		_, ordinal := unpack(p)
		facts[i] = b.facts[ordinal]
	}
	l := newStatementList(facts)
	b.lists[string(sig)] = l
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
