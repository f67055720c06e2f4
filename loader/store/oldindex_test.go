package store

// The per-member statement indexes that the tenant action index replaced,
// kept verbatim as the reference of TestActionIndexMatchesMemberIndexes.

import (
	"encoding/binary"
	"slices"
	"sort"

	"github.com/verdict-authz/verdict/loader/acl"
)

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

// oldStatementsFor returns the member's statements whose action patterns could
// match the action (lower case), in policy order, each once. Keys is scratch
// space for the index keys and may be nil.
func oldStatementsFor(ix *statementIndex, actionLower string, keys []string) *StatementList {
	keys = acl.ActionIndexKeys(actionLower, keys)
	var found [4]*StatementList
	n := 0
	for _, k := range keys {
		if l := ix.lookup(k); l != nil {
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
