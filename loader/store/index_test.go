package store

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/test/worldgen"
)

// TestActionIndexOnGeneratedWorlds checks, on generated worlds, that member
// facts built on demand equal those once built at load time, and that the
// tenant action index with the member's policies gathered per request (its
// own, its roles', its groups') hands Rego exactly the statements of a
// plain reading (same order, each once), for every member and every action
// of the world plus actions of fewer parts and unknown ones. (Until the per-member statement indexes were deleted, it also
// compared both with them: identical on these worlds.)
func TestActionIndexOnGeneratedWorlds(t *testing.T) {
	big := worldgen.Bench
	big.Members = 1000
	if testing.Short() {
		big.Members = 100
	}
	for _, spec := range []worldgen.Spec{worldgen.Small, big} {
		w := worldgen.Generate(spec)
		var ps acl.Problems
		doc := acl.Parse(w.Data()["verdict"].(map[string]any), nil, &ps)
		if err := ps.Err(); err != nil {
			t.Fatal(err)
		}
		actions := []string{"", "finmars", "other", "other:thing:do", "finmars:nothing:list"}
		for v := 0; v < spec.ViewSets; v++ {
			vs := fmt.Sprintf("finmars:viewset%03d", v)
			actions = append(actions, vs)
			for _, a := range []string{"list", "retrieve", "create", "update", "partial_update", "destroy", "other"} {
				actions = append(actions, vs+":"+a)
			}
		}
		for code, tenant := range doc.Tenants {
			if !reflect.DeepEqual(compactPolicies(tenant.Policies), tenant.Policies) {
				t.Fatalf("%s: the compact copy of the policies differs from them", code)
			}
			ix := newTenantIndexer(tenant)
			compared, nonEmpty := 0, 0
			for _, list := range ix.index.lists {
				for _, f := range list {
					if got, want := statementTerm(f.Statement, f.policyTerm), referenceStatementTerm(f.Statement); got.Value.Compare(want.Value) != 0 {
						t.Fatalf("%s: statement term %v, want %v", code, got, want)
					}
				}
			}
			first := firstOrdinals(tenant)
			recs := map[string]*MemberRecord{}
			for name, m := range tenant.Members {
				grants, err := ix.memberGrants(m)
				if err != nil {
					t.Fatal(err)
				}
				groups, err := ix.groups.list(m.Groups)
				if err != nil {
					t.Fatal(err)
				}
				recs[name] = &MemberRecord{Name: name, isAdmin: m.IsAdmin, groups: groups, grants: grants}
			}
			table := ix.finish()
			for name, m := range tenant.Members {
				mine := tenant.MemberPolicies(m)
				rec := recs[name]
				rec.table = table
				if got, want := rec.Facts(), prebuiltMemberFacts(m); got.Value.Compare(want.Value) != 0 {
					t.Fatalf("%s/%s: facts %v, want %v", code, name, got, want)
				}
				for _, action := range actions {
					want := naiveStatements(tenant, first, mine, action)
					if got := factRefs(rec.StatementsFor(action, nil)); !reflect.DeepEqual(got, want) {
						t.Fatalf("%s/%s, %q: statements %v, want %v", code, name, action, got, want)
					}
					compared++
					if len(want) > 0 {
						nonEmpty++
					}
				}
			}
			if nonEmpty == 0 || nonEmpty == compared {
				t.Fatalf("%s: %d of %d lookups found statements: the world does not exercise both cases", code, nonEmpty, compared)
			}
			t.Logf("%s (%d members): %d lookups, %d with statements", code, len(tenant.Members), compared, nonEmpty)
		}
	}
}

type factRef struct {
	ordinal int
	policy  string
	index   int
}

func factRefs(l *StatementList) []factRef {
	out := []factRef{}
	for _, f := range l.Facts {
		out = append(out, factRef{f.Ordinal, f.Statement.Policy, f.Statement.Index})
	}
	if l.Array.Value.(interface{ Len() int }).Len() != len(l.Facts) {
		panic("the Rego array and the facts differ in length")
	}
	return out
}

// firstOrdinals gives each policy the ordinal of its first statement:
// statements are numbered in policy code order, then index.
func firstOrdinals(t *acl.Tenant) map[string]int {
	codes := make([]string, 0, len(t.Policies))
	for c := range t.Policies {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	out := make(map[string]int, len(codes))
	ordinal := 0
	for _, c := range codes {
		out[c] = ordinal
		ordinal += len(t.Policies[c].Statements)
	}
	return out
}

// naiveStatements is a plain reading of what StatementsFor promises: every
// statement of the member's policies (mine: acl.Tenant.MemberPolicies,
// sorted by code; statements in order) with an action pattern whose index
// key is one of the action's.
func naiveStatements(t *acl.Tenant, first map[string]int, mine []string, actionLower string) []factRef {
	keys := acl.ActionIndexKeys(actionLower, nil)
	out := []factRef{}
	for _, c := range mine {
		p := t.Policies[c]
		if p == nil {
			continue
		}
		for i, s := range p.Statements {
			if slices.ContainsFunc(s.Actions, func(a acl.ActionPattern) bool { return slices.Contains(keys, a.IndexKey) }) {
				out = append(out, factRef{first[c] + i, s.Policy, s.Index})
			}
		}
	}
	return out
}

// prebuiltMemberFacts is how the store built member facts at load time
// before they were built on demand by MemberRecord.Facts (without the
// principals, which the facts no longer carry).
func prebuiltMemberFacts(m *acl.Member) *ast.Term {
	groups := make([]*ast.Term, len(m.Groups))
	for i, g := range m.Groups {
		groups[i] = ast.StringTerm(g)
	}
	return ast.ObjectTerm(
		ast.Item(ast.StringTerm("name"), ast.StringTerm(m.Name)),
		ast.Item(ast.StringTerm("is_admin"), ast.BooleanTerm(m.IsAdmin)),
		ast.Item(ast.StringTerm("groups"), ast.SetTerm(groups...)),
	)
}

// BenchmarkMemberFacts measures building a member's facts on demand (once
// per decision that names a member).
func BenchmarkMemberFacts(b *testing.B) {
	rec := testMember(b, "m01234", []string{"g001", "g017"})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if rec.Facts() == nil {
			b.Fatal("no facts")
		}
	}
}

// testMember is a member of the groups in a table of its own.
func testMember(tb testing.TB, name string, groups []string) *MemberRecord {
	tb.Helper()
	table := &memberTable{}
	list, err := newGroupListInterner(table).list(groups)
	if err != nil {
		tb.Fatal(err)
	}
	return &MemberRecord{Name: name, table: table, groups: list}
}

// referenceStatementTerm builds a statement's term with nothing shared, as
// the store once did.
func referenceStatementTerm(s *acl.Statement) *ast.Term {
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

// The group list interner shares a list between identical group lists
// only: lists whose codes merely concatenate alike get their own. A
// member's groups come out of the shared table as listed, and it answers
// to the principals of those groups only.
func TestGroupListInternerKeysListsExactly(t *testing.T) {
	table := &memberTable{}
	in := newGroupListInterner(table)
	list := func(groups ...string) uint32 {
		n, err := in.list(groups)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	joined := list("a\x00b")
	split := list("a", "b")
	if joined == split {
		t.Fatal(`["a\x00b"] and ["a", "b"] share a group list`)
	}
	if again := list("a", "b"); again != split {
		t.Error("an identical list did not share its group list")
	}
	none := list()
	candidates := []string{"*", "member:m", "member:n", "group:a", "group:b", "group:a\x00b", "a", "group:"}
	for _, tc := range []struct {
		list       uint32
		groups     string
		principals []string
	}{
		{split, `{"a", "b"}`, []string{"*", "member:m", "group:a", "group:b"}},
		{joined, `{"a\x00b"}`, []string{"*", "member:m", "group:a\x00b"}},
		{none, `set()`, []string{"*", "member:m"}},
	} {
		member := &MemberRecord{Name: "m", table: table, groups: tc.list}
		if got := member.Facts().Get(ast.StringTerm("groups")).String(); got != tc.groups {
			t.Errorf("list %d: groups %s, want %s", tc.list, got, tc.groups)
		}
		for _, p := range candidates {
			if got, want := member.principalMatches(&acl.Statement{Principals: []string{p}}), slices.Contains(tc.principals, p); got != want {
				t.Errorf("list %d: principal %q matches %v, want %v", tc.list, p, got, want)
			}
		}
	}
}

// TestAppendPolicyFacts holds both ways appendPolicyFacts picks a member's
// facts out of an index list (walking a short list, searching a long one
// for each policy's run) equal to filtering the list.
func TestAppendPolicyFacts(t *testing.T) {
	// A list in ordinal order: policies 0-9, with 0 to 3 statements
	// each.
	var list []*StatementFact
	for p := range 10 {
		for range p % 4 {
			list = append(list, &StatementFact{Ordinal: len(list), policy: p})
		}
	}
	tests := []struct {
		name     string
		policies []uint32
	}{
		{"none", nil},
		{"one policy", []uint32{2}},
		{"a policy without statements", []uint32{4}},
		{"the first and the last", []uint32{1, 9}},
		{"granted twice", []uint32{3, 3, 7}},
		{"beyond the list", []uint32{6, 40}},
		{"many (the list is walked)", []uint32{0, 1, 2, 3, 5, 6, 7, 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []*StatementFact
			for _, f := range list {
				if slices.Contains(tt.policies, uint32(f.policy)) {
					want = append(want, f)
				}
			}
			got := appendPolicyFacts(nil, list, tt.policies)
			if !slices.Equal(got, want) {
				t.Fatalf("got %d facts, want %d", len(got), len(want))
			}
		})
	}
}
