package store

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/loader/route"
)

// TenantRecord is a loaded tenant.
type TenantRecord struct {
	Code   string
	Bundle string
	// Tenant is the tenant as parsed without its members (Members is nil):
	// they are in the members table (Reader.Member, Reader.MemberNames).
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
	// Expires is when the key stops being valid (zero: never); Facts
	// carries it as expires_ns.
	Expires time.Time
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

// MembersRecord holds a tenant's members, sorted by name, and what they
// share. It is immutable once stored.
//
// Members are a sorted table of small records rather than a map of
// pointers to records that point at the parsed member: a tenant has tens
// of thousands of members, and after indexing a member is its name, its
// group list, its own roles and policies and its (rare) ACL overrides.
type MembersRecord struct {
	Tenant  string
	members []MemberRecord // sorted by Name
}

// member returns the member with the name, or nil.
func (r *MembersRecord) member(name string) *MemberRecord {
	// A binary search over the names in place (BinarySearchFunc would
	// copy each record it compares).
	lo, hi := 0, len(r.members)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if r.members[mid].Name < name {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == len(r.members) || r.members[lo].Name != name {
		return nil
	}
	return &r.members[lo]
}

// memberTable is what a tenant's members share: the tenant's statements by
// action, its roles' and groups' policies, and the distinct grant lists and
// group lists of its members, each kind one after another in one slice.
type memberTable struct {
	index *actionIndex
	// grants holds every distinct list of a member's own roles and
	// policies: role numbers in rolePolicies, and policy positions with
	// grantPolicy set. List i is grants[grantStarts[i]:grantStarts[i+1]].
	grants      []uint32
	grantStarts []uint32
	// rolePolicies are each role's policies, by role number;
	// groupPolicies each group's and its roles', by group number (see
	// groupCodes); positions in code order (StatementFact.policy), sorted.
	rolePolicies  [][]uint32
	groupPolicies [][]uint32
	// groupLists holds every distinct list of groups, as numbers in
	// groupCodes, each group's code as a term in member facts; list i is
	// groupLists[groupStarts[i]:groupStarts[i+1]].
	groupCodes  []*ast.Term
	groupLists  []uint32
	groupStarts []uint32
}

// grantPolicy marks a grant that is a policy's position, not a role's
// number.
const grantPolicy = 1 << 31

// MemberRecord is a loaded member: its name, its facts and its statements
// by action (through the tenant's shared table).
type MemberRecord struct {
	Name string
	// table is the tenant's, shared by its members.
	table *memberTable
	// PackageACLs and KeyACLs are the member's ACL overrides by package code
	// and by key (nil for most members).
	PackageACLs map[string]ACLTerms
	KeyACLs     map[string]ACLTerms
	// grants is the member's list of its own roles and policies and groups
	// its list of groups in the table (each shared by the members with the
	// same).
	grants  uint32
	groups  uint32
	isAdmin bool
}

// StatementFact is one statement of a tenant, prepared for Rego.
type StatementFact struct {
	// Ordinal orders statements by policy code, then index, within a tenant.
	Ordinal   int
	Statement *acl.Statement
	// policy is the position of the statement's policy in code order.
	policy int
	// policyTerm is the policy's code as a Rego string, shared by its
	// statements.
	policyTerm *ast.Term
}

// StatementList is an ordered list of statements and its Rego array.
type StatementList struct {
	Facts []*StatementFact
	Array *ast.Term
}

// ObjectGroupsRecord lists, for each object of a tenant (lower-cased FRN),
// the resource groups (lower case, sorted) it is assigned to. It is
// immutable once stored.
//
// It is a sorted table rather than a map: a tenant has tens of thousands of
// objects and a few distinct group lists (objects are assigned a group at a
// time), so each object costs its FRN's string header and the index of its
// list, and each distinct list is stored once.
type ObjectGroupsRecord struct {
	Tenant string
	// objects are the FRNs, sorted; lists[i] indexes groupLists for
	// objects[i].
	objects    []string
	lists      []uint32
	groupLists [][]string
}

// Groups returns the resource groups of the object (lower-cased FRN), nil
// when the bundle assigns it to none.
func (r *ObjectGroupsRecord) Groups(frnLower string) []string {
	i, found := slices.BinarySearch(r.objects, frnLower)
	if !found {
		return nil
	}
	return r.groupLists[r.lists[i]]
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
		// The package layer as a boolean, so that the engine's rules can
		// guard a branch with an equality OPA's rule index reads
		// (input.facts.tenant.package == false).
		ast.Item(ast.StringTerm("package"), ast.BooleanTerm(t.HasCheck("package"))),
	)
}

// groupListInterner numbers the distinct group lists of a tenant's members
// into its memberTable, and each group once.
type groupListInterner struct {
	table  *memberTable
	byCode map[string]uint32 // group code → number in table.groupCodes
	byList map[string]uint32 // list key → list number
	key    []byte
}

func newGroupListInterner(table *memberTable) *groupListInterner {
	table.groupStarts = []uint32{0}
	return &groupListInterner{table: table, byCode: map[string]uint32{}, byList: map[string]uint32{}}
}

// list returns the number in the table of the list of groups.
func (in *groupListInterner) list(groups []string) (uint32, error) {
	key := in.key[:0]
	for _, g := range groups { // length-prefixed: no two lists share a key
		key = append(binary.AppendUvarint(key, uint64(len(g))), g...)
	}
	in.key = key
	if id, ok := in.byList[string(key)]; ok {
		return id, nil
	}
	t := in.table
	if len(t.groupLists)+len(groups) > math.MaxUint32 {
		return 0, fmt.Errorf("the members' group lists exceed %d entries", uint32(math.MaxUint32))
	}
	for _, g := range groups {
		n, ok := in.byCode[g]
		if !ok {
			n = uint32(len(t.groupCodes))
			t.groupCodes = append(t.groupCodes, ast.StringTerm(g))
			in.byCode[g] = n
		}
		t.groupLists = append(t.groupLists, n)
	}
	id := uint32(len(t.groupStarts) - 1)
	t.groupStarts = append(t.groupStarts, uint32(len(t.groupLists)))
	in.byList[string(key)] = id
	return id, nil
}

// Pre-built keys and values of member facts.
var (
	keyName       = ast.StringTerm("name")
	keyIsAdmin    = ast.StringTerm("is_admin")
	keyGroups     = ast.StringTerm("groups")
	keyPrincipals = ast.StringTerm("principals")
	trueTerm      = ast.BooleanTerm(true)
	falseTerm     = ast.BooleanTerm(false)
	// emptySet is the groups of a member of none, and every empty
	// StringSet.
	emptySet = ast.SetTerm()
)

// StringSet is a set of strings as a Rego term; every empty set is the
// one shared term (Rego never changes a term it reads).
func StringSet(list []string) *ast.Term {
	if len(list) == 0 {
		return emptySet
	}
	terms := make([]*ast.Term, len(list))
	for i, s := range list {
		terms[i] = ast.StringTerm(s)
	}
	return ast.SetTerm(terms...)
}

// groupList is the member's groups, as numbers in its table's groupCodes.
func (m *MemberRecord) groupList() []uint32 {
	t := m.table
	return t.groupLists[t.groupStarts[m.groups]:t.groupStarts[m.groups+1]]
}

// Facts returns the member as the rules read it once its statements are
// matched (see MatchingStatements):
//
//	{name, is_admin, groups: {group, …}}
//
// Its principals ("*", "member:<name>", "group:<code>"), which only the
// Rego rule "matching" reads, are not among them: the match has read them,
// and an input built by hand for that rule gives them itself.
//
// It is built on each call from the member and its tenant's shared group
// terms rather than kept for every member (or every distinct group list)
// of the store.
func (m *MemberRecord) Facts() *ast.Term {
	t := m.table
	list := m.groupList()
	// One allocation for the three terms made here.
	terms := make([]ast.Term, 3)
	name, groups, facts := &terms[0], &terms[1], &terms[2]
	name.Value = ast.String(m.Name)
	if len(list) > 0 {
		elems := make([]*ast.Term, len(list))
		for i, g := range list {
			elems[i] = t.groupCodes[g]
		}
		groups.Value = ast.NewSet(elems...)
	} else {
		groups = emptySet
	}
	isAdmin := falseTerm
	if m.isAdmin {
		isAdmin = trueTerm
	}
	facts.Value = ast.NewObject(
		[2]*ast.Term{keyName, name},
		[2]*ast.Term{keyIsAdmin, isAdmin},
		[2]*ast.Term{keyGroups, groups},
	)
	return facts
}

// Pre-built keys and values of statement terms, shared by every statement.
var (
	keyPolicy     = ast.StringTerm("policy")
	keyStatement  = ast.StringTerm("statement")
	keyEffect     = ast.StringTerm("effect")
	keyActions    = ast.StringTerm("actions")
	keyResources  = ast.StringTerm("resources")
	keyConditions = ast.StringTerm("conditions")
	keyKind       = ast.StringTerm("kind")
	keyPattern    = ast.StringTerm("pattern")
	keyLiteral    = ast.StringTerm("literal")
	sharedValues  = map[string]*ast.Term{}
)

func init() {
	for _, v := range []string{string(acl.Allow), string(acl.Deny), string(acl.ResourceKindAny), string(acl.ResourceKindObject), string(acl.ResourceKindGroup), "*"} {
		sharedValues[v] = ast.StringTerm(v)
	}
}

// sharedString is a string term, one per value for the common ones.
func sharedString(s string) *ast.Term {
	if t, ok := sharedValues[s]; ok {
		return t
	}
	return ast.StringTerm(s)
}

// anyPrincipal is the Principal of a statement that names none: ["*"].
var anyPrincipal = ast.ArrayTerm(ast.StringTerm("*"))

// statementTerm is the statement as Rego sees it. policy is the term of the
// statement's policy code (nil: built here), shared by its statements.
// Parts that are the same for many statements (an empty list, the Principal
// ["*"], small numbers, common strings) are shared terms: a decision builds
// the terms of the statements it gathered, and Rego never changes its input.
func statementTerm(s *acl.Statement, policy *ast.Term) *ast.Term {
	if policy == nil {
		policy = ast.StringTerm(s.Policy)
	}
	actions := make([]*ast.Term, len(s.Actions))
	for i, a := range s.Actions {
		actions[i] = ast.StringTerm(a.Glob)
	}
	return ast.ObjectTerm(
		ast.Item(keyPolicy, policy),
		ast.Item(keyStatement, ast.InternedTerm(s.Index)),
		ast.Item(keyEffect, sharedString(string(s.Effect))),
		ast.Item(keyActions, ast.ArrayTerm(actions...)),
		ast.Item(keyResources, resourcesTerm(s.Resources, nil)),
		ast.Item(keyPrincipals, stringList(s.Principals)),
		ast.Item(keyConditions, stringList(s.Conditions)),
	)
}

// matchedStatementTerm is a statement that matches the member and the
// action as the rules read it once it is matched (input.facts.statements
// with statements_matched): {policy, statement, effect, resources,
// conditions}, without the actions and principals the match has read.
// With an object (obj not nil), resources are only those that cover it
// (see Object).
func (ix *actionIndex) matchedStatementTerm(f *StatementFact, obj *Object) *ast.Term {
	s := f.Statement
	var covering func(acl.ResourcePattern) bool
	if obj != nil {
		covering = func(r acl.ResourcePattern) bool { return ix.covers(r, obj) }
	}
	return ast.ObjectTerm(
		ast.Item(keyPolicy, f.policyTerm),
		ast.Item(keyStatement, ast.InternedTerm(s.Index)),
		ast.Item(keyEffect, sharedString(string(s.Effect))),
		ast.Item(keyResources, resourcesTerm(s.Resources, covering)),
		ast.Item(keyConditions, stringList(s.Conditions)),
	)
}

// resourcesTerm is a statement's resources as a Rego array of their
// resourceTerms: those keep accepts, or all of them when keep is nil.
func resourcesTerm(resources []acl.ResourcePattern, keep func(acl.ResourcePattern) bool) *ast.Term {
	var terms []*ast.Term
	for _, r := range resources {
		if keep == nil || keep(r) {
			if terms == nil {
				terms = make([]*ast.Term, 0, len(resources))
			}
			terms = append(terms, resourceTerm(r))
		}
	}
	if len(terms) == 0 {
		return ast.InternedEmptyArray
	}
	return ast.ArrayTerm(terms...)
}

// resourceTerm is a statement resource as Rego sees it: {kind, pattern,
// literal}, literal a boolean.
func resourceTerm(r acl.ResourcePattern) *ast.Term {
	literal := falseTerm
	if r.Literal {
		literal = trueTerm
	}
	return ast.ObjectTerm(
		ast.Item(keyKind, sharedString(string(r.Kind))),
		ast.Item(keyPattern, sharedString(r.Pattern)),
		ast.Item(keyLiteral, literal),
	)
}

// stringList is a list of strings as a Rego array; the empty list and
// ["*"] are shared terms.
func stringList(list []string) *ast.Term {
	switch {
	case len(list) == 0:
		return ast.InternedEmptyArray
	case len(list) == 1 && list[0] == "*":
		return anyPrincipal
	}
	terms := make([]*ast.Term, len(list))
	for i, v := range list {
		terms[i] = sharedString(v)
	}
	return ast.ArrayTerm(terms...)
}

// Object is the object a request names, as the IAM layer's resources cover
// it: its FRN and its resource groups (those the bundle assigns and those
// the request names), all lower case. FRN is empty when the request names
// groups only.
type Object struct {
	FRN    string
	Groups []string
}

// covers says whether the resource covers the object: the engine's Rego
// function "covers" evaluated in Go, with OPA's glob library and options
// for patterns (glob.match(pattern, null, ...)); a property test
// (decision's TestGoMatchingAgreesWithRego) holds the two equal.
func (ix *actionIndex) covers(r acl.ResourcePattern, obj *Object) bool {
	switch r.Kind {
	case acl.ResourceKindAny:
		return true
	case acl.ResourceKindObject:
		if obj.FRN == "" {
			return false
		}
		if r.Literal {
			return r.Pattern == obj.FRN
		}
		match, ok := ix.resourceGlobs[r.Pattern]
		return ok && match(obj.FRN)
	case acl.ResourceKindGroup:
		if r.Literal {
			return slices.Contains(obj.Groups, r.Pattern)
		}
		match, ok := ix.resourceGlobs[r.Pattern]
		return ok && slices.ContainsFunc(obj.Groups, match)
	}
	return false
}

// actionIndex is a tenant's statements by the index keys of their action
// patterns (see acl.ActionPattern.IndexKey): every statement of every
// policy, each list in statement order (policy code, then index). It is
// built once per tenant, immutable and shared by the tenant's members; a
// member's policies (see policyIDs) pick the member's statements out of a
// list.
type actionIndex struct {
	lists map[string][]*StatementFact // by key, in ordinal order, each statement once
	// wildcards are the compiled matchers of the tenant's action patterns
	// that hold a "*", by glob (see acl.ActionPattern.Matcher); a pattern
	// without one matches only itself.
	wildcards map[string]func(actionLower string) bool
	// resourceGlobs are the compiled matchers of the tenant's resource
	// patterns that hold a "*", by pattern (see acl.ResourcePattern.Matcher).
	resourceGlobs map[string]func(string) bool
}

func (ix *actionIndex) lookup(key string) []*StatementFact { return ix.lists[key] }

// tenantIndexer builds a tenant's action index and its members' grant
// lists. Work that does not depend on the member is done once: each role's
// and group's policies.
type tenantIndexer struct {
	// table is the members' shared table being built; groups numbers
	// their group lists in it.
	table         *memberTable
	groups        *groupListInterner
	index         *actionIndex
	policyID      map[string]int    // policy code → position in code order
	roleNumber    map[string]uint32 // role code → number in table.rolePolicies
	groupPolicies map[string][]uint32
	grantLists    map[string]uint32 // list number in table by the list's bytes
	scratch       []uint32
	scratchKey    []byte
}

func newTenantIndexer(t *acl.Tenant) *tenantIndexer {
	codes := make([]string, 0, len(t.Policies))
	for c := range t.Policies {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	b := &tenantIndexer{
		index:         &actionIndex{},
		policyID:      make(map[string]int, len(codes)),
		roleNumber:    make(map[string]uint32, len(t.Roles)),
		groupPolicies: make(map[string][]uint32, len(t.Groups)),
		grantLists:    map[string]uint32{},
	}
	b.table = &memberTable{index: b.index, grantStarts: []uint32{0}}
	b.groups = newGroupListInterner(b.table)
	byKey := map[string][]*StatementFact{}
	count := 0
	for _, p := range t.Policies {
		count += len(p.Statements)
	}
	facts := make([]StatementFact, count) // one allocation for the tenant's
	ordinal := 0
	for id, code := range codes {
		b.policyID[code] = id
		policyTerm := ast.StringTerm(code)
		for _, s := range t.Policies[code].Statements {
			f := &facts[ordinal]
			*f = StatementFact{Ordinal: ordinal, Statement: s, policy: id, policyTerm: policyTerm}
			ordinal++
			for _, r := range s.Resources {
				if _, ok := b.index.resourceGlobs[r.Pattern]; !ok && !r.Literal && r.Kind != acl.ResourceKindAny {
					if b.index.resourceGlobs == nil {
						b.index.resourceGlobs = map[string]func(string) bool{}
					}
					b.index.resourceGlobs[r.Pattern] = r.Matcher()
				}
			}
			for i, a := range s.Actions {
				if _, ok := b.index.wildcards[a.Glob]; !ok && strings.Contains(a.Glob, "*") {
					if b.index.wildcards == nil {
						b.index.wildcards = map[string]func(string) bool{}
					}
					b.index.wildcards[a.Glob] = a.Matcher()
				}
				// A statement is listed once under each of its keys.
				if !slices.ContainsFunc(s.Actions[:i], func(p acl.ActionPattern) bool { return p.IndexKey == a.IndexKey }) {
					byKey[a.IndexKey] = append(byKey[a.IndexKey], f)
				}
			}
		}
	}
	ix := b.index
	for k, list := range byKey {
		byKey[k] = slices.Clip(list)
	}
	ix.lists = byKey
	ids := func(codes []string) []uint32 {
		out := make([]uint32, 0, len(codes))
		for _, c := range codes {
			if id, ok := b.policyID[c]; ok {
				out = append(out, uint32(id))
			}
		}
		return out
	}
	sorted := func(ids []uint32) []uint32 {
		slices.Sort(ids)
		return slices.Clip(slices.Compact(ids))
	}
	roles := slices.Sorted(maps.Keys(t.Roles))
	b.table.rolePolicies = make([][]uint32, len(roles))
	for n, code := range roles {
		b.roleNumber[code] = uint32(n)
		b.table.rolePolicies[n] = sorted(ids(t.Roles[code].Policies))
	}
	for code, g := range t.Groups {
		set := ids(g.Policies)
		for _, r := range g.Roles {
			if n, ok := b.roleNumber[r]; ok {
				set = append(set, b.table.rolePolicies[n]...)
			}
		}
		b.groupPolicies[code] = sorted(set)
	}
	return b
}

// memberGrants returns the number in the table of the list of the
// member's own roles and policies (those the tenant defines). Members with
// the same share a list.
func (b *tenantIndexer) memberGrants(m *acl.Member) (uint32, error) {
	list := b.scratch[:0]
	for _, r := range m.Roles {
		if n, ok := b.roleNumber[r]; ok {
			list = append(list, n)
		}
	}
	for _, c := range m.Policies {
		if id, ok := b.policyID[c]; ok {
			list = append(list, uint32(id)|grantPolicy)
		}
	}
	b.scratch = list
	key := b.scratchKey[:0]
	for _, v := range list {
		key = binary.LittleEndian.AppendUint32(key, v)
	}
	b.scratchKey = key
	if n, ok := b.grantLists[string(key)]; ok {
		return n, nil
	}
	t := b.table
	if len(t.grants)+len(list) > math.MaxUint32 || len(b.policyID) >= grantPolicy || len(b.roleNumber) >= grantPolicy {
		return 0, fmt.Errorf("the members' grants exceed %d entries", uint32(math.MaxUint32))
	}
	n := uint32(len(t.grantStarts) - 1)
	t.grants = append(t.grants, list...)
	t.grantStarts = append(t.grantStarts, uint32(len(t.grants)))
	b.grantLists[string(key)] = n
	return n, nil
}

// finish returns the members' shared table, its lists copied to their size.
func (b *tenantIndexer) finish() *memberTable {
	t := b.table
	// Copies drop the room append left.
	t.grants, t.grantStarts = slices.Clone(t.grants), slices.Clone(t.grantStarts)
	t.groupCodes, t.groupLists, t.groupStarts = slices.Clone(t.groupCodes), slices.Clone(t.groupLists), slices.Clone(t.groupStarts)
	// The members' groups by the numbers of their group lists.
	t.groupPolicies = make([][]uint32, len(t.groupCodes))
	for code, n := range b.groups.byCode {
		t.groupPolicies[n] = b.groupPolicies[code]
	}
	return t
}

// newStatementList builds the Rego terms of the statements a request
// gathered. They are built per request rather than kept per statement: a
// request hands Rego a few statements of a tenant's thousands, and kept terms
// were a fifth of the loaded store.
func newStatementList(facts []*StatementFact) *StatementList {
	terms := make([]*ast.Term, len(facts))
	for i, f := range facts {
		terms[i] = statementTerm(f.Statement, f.policyTerm)
	}
	return &StatementList{Facts: facts, Array: ast.ArrayTerm(terms...)}
}

var emptyStatements = newStatementList(nil)

// maxIndexLists bounds the index lists a lookup merges: an action has at
// most three parts, hence four keys (see acl.ActionIndexKeys).
const maxIndexLists = 4

// StatementsFor returns the member's statements whose action patterns could
// match the action (lower case), in policy order, each once, as whole
// statement terms (principals and actions included). Keys is scratch space
// for the index keys and may be nil. Decisions use MatchingStatements;
// this is the index's candidate set as an input built by hand would hold
// it, which the property tests hand to the Rego definitions.
func (m *MemberRecord) StatementsFor(actionLower string, keys []string) *StatementList {
	facts := m.candidates(actionLower, keys)
	if facts == nil {
		return emptyStatements
	}
	return newStatementList(facts)
}

// MatchingStatements returns the member's statements that apply to it and
// the action (lower case) before their conditions: a Principal that names
// the member ("*", "member:<name>" or "group:<code>" of one of its groups)
// and an Action pattern that matches, with OPA's glob library and options.
// It is the engine's Rego rule "matching" evaluated in Go, as DESIGN.md
// lets Go match; a property test (decision's TestGoMatchingAgreesWithRego)
// holds the two equal. The terms are matched statements (see
// matchedStatementTerm): when the request names an object (obj not nil),
// each keeps only the resources that cover it, as the Rego function
// "covers" would.
func (m *MemberRecord) MatchingStatements(actionLower string, obj *Object) *StatementList {
	// An action has at most three parts, so four index keys: they stay on
	// the stack.
	var keys [maxIndexLists]string
	ix := m.table.index
	facts := m.candidates(actionLower, keys[:0])
	kept := facts[:0]
	for _, f := range facts {
		if m.principalMatches(f.Statement) && ix.actionMatches(f.Statement, actionLower) {
			kept = append(kept, f)
		}
	}
	if len(kept) == 0 {
		return emptyStatements
	}
	terms := make([]*ast.Term, len(kept))
	for i, f := range kept {
		terms[i] = ix.matchedStatementTerm(f, obj)
	}
	return &StatementList{Facts: kept, Array: ast.ArrayTerm(terms...)}
}

// principalMatches says whether one of the statement's principals is one
// of the member's: "*", "member:<name>" or "group:<code>" of its groups.
func (m *MemberRecord) principalMatches(s *acl.Statement) bool {
	for _, p := range s.Principals {
		if p == "*" || strings.HasPrefix(p, "member:") && p[len("member:"):] == m.Name {
			return true
		}
		if code, ok := strings.CutPrefix(p, "group:"); ok {
			for _, g := range m.groupList() {
				if string(m.table.groupCodes[g].Value.(ast.String)) == code {
					return true
				}
			}
		}
	}
	return false
}

// actionMatches says whether one of the statement's action patterns
// matches the action, as glob.match(pattern, [":"], action) does.
func (ix *actionIndex) actionMatches(s *acl.Statement, actionLower string) bool {
	for _, a := range s.Actions {
		if match, ok := ix.wildcards[a.Glob]; ok {
			if match(actionLower) {
				return true
			}
		} else if a.Glob == actionLower {
			return true
		}
	}
	return false
}

// policyIDs appends to ids the positions of the member's policies (its
// own, its roles', its groups' and their roles'), sorted, some perhaps
// repeated. They are gathered per request rather than kept per member: a
// member has tens of them, from a role or two and a group or two.
func (m *MemberRecord) policyIDs(ids []uint32) []uint32 {
	t := m.table
	for _, g := range t.grants[t.grantStarts[m.grants]:t.grantStarts[m.grants+1]] {
		if g&grantPolicy != 0 {
			ids = append(ids, g&^grantPolicy)
		} else {
			ids = append(ids, t.rolePolicies[g]...)
		}
	}
	for _, g := range m.groupList() {
		ids = append(ids, t.groupPolicies[g]...)
	}
	slices.Sort(ids)
	return ids
}

// candidates are the member's statements under the action's index keys,
// in policy order, each once (nil for none); the slice is the caller's.
func (m *MemberRecord) candidates(actionLower string, keys []string) []*StatementFact {
	keys = acl.ActionIndexKeys(actionLower, keys)
	var buf [64]uint32
	policies := m.policyIDs(buf[:0])
	var facts []*StatementFact
	lists := 0
	for _, k := range keys {
		n := len(facts)
		facts = appendPolicyFacts(facts, m.table.index.lookup(k), policies)
		if len(facts) == n {
			continue
		}
		if lists == maxIndexLists {
			facts = facts[:n]
			break
		}
		lists++
	}
	switch {
	case lists == 0:
		return nil
	case lists > 1:
		// A statement is listed under each of its keys: merge by ordinal,
		// each once.
		slices.SortFunc(facts, func(a, b *StatementFact) int { return a.Ordinal - b.Ordinal })
		facts = slices.Compact(facts)
	}
	return facts
}

// appendPolicyFacts appends the facts of list (in ordinal order, so sorted
// by policy) whose policy is one of policies (sorted), in list order. A
// member holds a few policies and a list may hold a statement of every
// policy of the tenant: each policy's run of facts is found by binary
// search, unless the list is short enough to walk.
func appendPolicyFacts(facts, list []*StatementFact, policies []uint32) []*StatementFact {
	if len(list) <= 2*len(policies) {
		for _, f := range list {
			if _, mine := slices.BinarySearch(policies, uint32(f.policy)); mine {
				facts = append(facts, f)
			}
		}
		return facts
	}
	start := 0
	for i, p := range policies {
		if i > 0 && policies[i-1] == p {
			continue // a policy granted twice
		}
		rest := list[start:]
		at, _ := slices.BinarySearchFunc(rest, p, func(f *StatementFact, p uint32) int { return cmp.Compare(uint32(f.policy), p) })
		start += at
		for start < len(list) && uint32(list[start].policy) == p {
			facts = append(facts, list[start])
			start++
		}
		if start == len(list) {
			break
		}
	}
	return facts
}

// objectAssignments inverts the tenant's resource groups: lower-cased object
// FRN → sorted group codes, as a sorted table. The table's FRNs are
// substrings of one string (a tenant has tens of thousands of them). It
// also returns the tenant's resource groups with the table's FRNs as their
// assignments, the decoder's copies left to go, for the tenant the store
// keeps (see compactTenant).
func objectAssignments(t *acl.Tenant) (*ObjectGroupsRecord, map[string]*acl.ResourceGroup) {
	byObject := map[string][]string{}
	for code, rg := range t.ResourceGroups {
		lc := strings.ToLower(code) // once per group, shared by its objects
		for _, frn := range rg.Assignments {
			byObject[frn] = append(byObject[frn], lc)
		}
	}
	frns := slices.Sorted(maps.Keys(byObject))
	rec := &ObjectGroupsRecord{Tenant: t.Code, objects: packStrings(frns), lists: make([]uint32, len(frns))}
	listIndex := map[string]uint32{}
	for i, frn := range frns {
		groups := byObject[frn]
		sort.Strings(groups)
		groups = slices.Compact(groups)
		key := strings.Join(groups, "\x00")
		n, ok := listIndex[key]
		if !ok {
			n = uint32(len(rec.groupLists))
			listIndex[key] = n
			rec.groupLists = append(rec.groupLists, slices.Clip(groups))
		}
		rec.lists[i] = n
	}

	count := 0
	for _, rg := range t.ResourceGroups {
		count += len(rg.Assignments)
	}
	assignments := make([]string, 0, count)
	groups := make([]acl.ResourceGroup, 0, len(t.ResourceGroups))
	byCode := make(map[string]*acl.ResourceGroup, len(t.ResourceGroups))
	for code, rg := range t.ResourceGroups {
		start := len(assignments)
		for _, frn := range rg.Assignments {
			i, _ := slices.BinarySearch(rec.objects, frn) // every assignment is in the table
			assignments = append(assignments, rec.objects[i])
		}
		compact := acl.ResourceGroup{Code: rg.Code}
		if rg.Assignments != nil {
			compact.Assignments = assignments[start:len(assignments):len(assignments)]
		}
		groups = append(groups, compact)
		byCode[code] = &groups[len(groups)-1]
	}
	return rec, byCode
}

// packStrings returns a copy of the list whose strings are substrings of
// one string: one allocation for all of them (a tenant's tens of thousands
// of member names or object FRNs), the decoder's copies, each its own small
// allocation among the read's garbage, left to go.
func packStrings(list []string) []string {
	size := 0
	for _, s := range list {
		size += len(s)
	}
	var all strings.Builder
	all.Grow(size)
	for _, s := range list {
		all.WriteString(s)
	}
	joined := all.String()
	out := make([]string, len(list))
	at := 0
	for i, s := range list {
		out[i] = joined[at : at+len(s)]
		at += len(s)
	}
	return out
}

// compactTenant is the tenant as the store keeps it: without its members
// (in the members table), with the given resource groups and with its
// policies copied compactly (see compactPolicies).
func compactTenant(t *acl.Tenant, resourceGroups map[string]*acl.ResourceGroup) *acl.Tenant {
	c := t.WithoutMembers()
	c.ResourceGroups = resourceGroups
	c.Policies = compactPolicies(t.Policies)
	return c
}

// compactPolicies copies the policies into a few slices: one of policies,
// one of statements, and one each of the statements' actions, resources,
// principals and conditions, rather than a tenant's tens of thousands of
// small allocations made while the read's garbage was allocated around
// them. The copies are equal to the policies (the same strings; nil lists
// stay nil).
func compactPolicies(policies map[string]*acl.Policy) map[string]*acl.Policy {
	var statements, actions, resources, principals, conditions int
	for _, p := range policies {
		statements += len(p.Statements)
		for _, s := range p.Statements {
			actions += len(s.Actions)
			resources += len(s.Resources)
			principals += len(s.Principals)
			conditions += len(s.Conditions)
		}
	}
	outPolicies := make([]acl.Policy, 0, len(policies))
	outStatements := make([]acl.Statement, 0, statements)
	outPointers := make([]*acl.Statement, 0, statements)
	outActions := make([]acl.ActionPattern, 0, actions)
	outResources := make([]acl.ResourcePattern, 0, resources)
	outStrings := make([]string, 0, principals+conditions)
	out := make(map[string]*acl.Policy, len(policies))
	for code, p := range policies {
		cp := acl.Policy{Code: p.Code, Version: p.Version}
		if p.Statements != nil {
			start := len(outPointers)
			for _, s := range p.Statements {
				cs := *s
				cs.Actions, outActions = appendCopy(outActions, s.Actions)
				cs.Resources, outResources = appendCopy(outResources, s.Resources)
				cs.Principals, outStrings = appendCopy(outStrings, s.Principals)
				cs.Conditions, outStrings = appendCopy(outStrings, s.Conditions)
				outStatements = append(outStatements, cs)
				outPointers = append(outPointers, &outStatements[len(outStatements)-1])
			}
			cp.Statements = outPointers[start:len(outPointers):len(outPointers)]
		}
		outPolicies = append(outPolicies, cp)
		out[code] = &outPolicies[len(outPolicies)-1]
	}
	return out
}

// appendCopy appends list to all, which has room for it, and returns the
// copy (nil for a nil list) and all.
func appendCopy[T any](all, list []T) ([]T, []T) {
	if list == nil {
		return nil, all
	}
	start := len(all)
	all = append(all, list...)
	return all[start:len(all):len(all)], all
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
