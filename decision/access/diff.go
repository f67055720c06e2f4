package access

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"

	"github.com/verdict-authz/verdict/decision"
)

// Change is how a question's answer changed from one bundle version to
// another. The names are the values of the shadow metric's result label.
type Change string

const (
	Same        Change = "same"
	AllowToDeny Change = "allow_to_deny"
	DenyToAllow Change = "deny_to_allow"
	// Changed: the same allow or deny, with another status, visibility,
	// fields or deciding reasons.
	Changed Change = "changed"
)

// Compare says how the answer changed from old to new. Reasons compare by
// what they name (layer, code, effect, policy, statement, resource group,
// SOAJS code), not by their messages, which Go renders from those.
func Compare(old, cand *decision.Decision) Change {
	switch {
	case old.Allow && !cand.Allow:
		return AllowToDeny
	case !old.Allow && cand.Allow:
		return DenyToAllow
	case old.Status != cand.Status || old.Visibility != cand.Visibility ||
		!slices.Equal(old.Fields, cand.Fields) || !slices.EqualFunc(old.Reasons, cand.Reasons, sameReason):
		return Changed
	}
	return Same
}

func sameReason(a, b decision.Reason) bool {
	return a.Layer == b.Layer && a.Code == b.Code && a.Effect == b.Effect && a.Policy == b.Policy &&
		a.ResourceGroup == b.ResourceGroup && a.SoajsCode == b.SoajsCode &&
		(a.Statement == nil) == (b.Statement == nil) && (a.Statement == nil || *a.Statement == *b.Statement)
}

// Answer is what a report shows of a decision.
type Answer struct {
	Allow      bool              `json:"allow"`
	Status     int               `json:"status"`
	Visibility string            `json:"visibility"`
	Reasons    []decision.Reason `json:"reasons"`
	Revision   map[string]string `json:"revision,omitempty"`
}

// AnswerOf is the part of d a report shows.
func AnswerOf(d *decision.Decision) Answer {
	return Answer{Allow: d.Allow, Status: d.Status, Visibility: d.Visibility, Reasons: d.Reasons, Revision: d.Revision}
}

// Difference is one question whose answer changed.
type Difference struct {
	Change   Change            `json:"change"`
	Tenant   string            `json:"tenant"`
	Action   string            `json:"action"`
	Question *decision.Request `json:"question"`
	Old      Answer            `json:"old"`
	New      Answer            `json:"new"`
}

// Group gathers the differences of one tenant, action and change, with at
// most a report's example count of them.
type Group struct {
	Tenant   string       `json:"tenant"`
	Action   string       `json:"action"`
	Change   Change       `json:"change"`
	Count    int          `json:"count"`
	Examples []Difference `json:"examples"`
}

// Report sums up a diff: how many questions were asked, how many answers
// changed and how, and examples grouped by tenant, action and change.
type Report struct {
	Questions   int `json:"questions"`
	Unchanged   int `json:"unchanged"`
	AllowToDeny int `json:"allow_to_deny"`
	DenyToAllow int `json:"deny_to_allow"`
	Changed     int `json:"changed"`
	// Malformed counts the request lines skipped (--requests).
	Malformed int `json:"malformed"`
	// Generated: the questions came from both versions' vocabulary;
	// Possible is how many that makes, of which Questions were asked
	// (a sample spread over all of them when Possible is larger).
	Generated bool     `json:"generated"`
	Possible  int64    `json:"possible,omitempty"`
	Groups    []*Group `json:"groups"`
	// OldRevision and NewRevision are the bundle revisions compared.
	OldRevision map[string]string `json:"old_revision"`
	NewRevision map[string]string `json:"new_revision"`

	examples int
	byKey    map[groupKey]*Group
}

type groupKey struct {
	tenant, action string
	change         Change
}

// NewReport starts a report keeping at most examples differences a group.
func NewReport(old, cand *decision.Pinned, examples int) *Report {
	return &Report{Groups: []*Group{}, examples: examples, byKey: map[groupKey]*Group{},
		OldRevision: old.Generation().Revisions, NewRevision: cand.Generation().Revisions}
}

// Add counts one question's two answers and returns the change.
func (r *Report) Add(q *decision.Request, old, cand *decision.Decision) Change {
	r.Questions++
	c := Compare(old, cand)
	switch c {
	case Same:
		r.Unchanged++
		return c
	case AllowToDeny:
		r.AllowToDeny++
	case DenyToAllow:
		r.DenyToAllow++
	default:
		r.Changed++
	}
	tenant, action := old.Tenant, old.Action
	if tenant == "" {
		tenant = cand.Tenant
	}
	if action == "" {
		action = cand.Action
	}
	k := groupKey{tenant, action, c}
	g := r.byKey[k]
	if g == nil {
		g = &Group{Tenant: tenant, Action: action, Change: c, Examples: []Difference{}}
		r.byKey[k] = g
		r.Groups = append(r.Groups, g)
	}
	g.Count++
	if len(g.Examples) < r.examples {
		g.Examples = append(g.Examples, Difference{Change: c, Tenant: tenant, Action: action, Question: q, Old: AnswerOf(old), New: AnswerOf(cand)})
	}
	return c
}

// Differences counts the questions whose answer changed.
func (r *Report) Differences() int { return r.AllowToDeny + r.DenyToAllow + r.Changed }

// Sort orders the groups by tenant, action and change.
func (r *Report) Sort() {
	sort.Slice(r.Groups, func(i, j int) bool {
		a, b := r.Groups[i], r.Groups[j]
		if a.Tenant != b.Tenant {
			return a.Tenant < b.Tenant
		}
		if la, lb := strings.ToLower(a.Action), strings.ToLower(b.Action); la != lb {
			return la < lb
		}
		return a.Change < b.Change
	})
}

// Ask asks q of both versions and adds the answers to the report. The error
// is an *decision.InputError for a malformed question.
func (r *Report) Ask(ctx context.Context, old, cand *decision.Pinned, q *decision.Request) (Change, *decision.Decision, *decision.Decision, error) {
	dOld, err := old.Decide(ctx, q)
	if err != nil {
		return "", nil, nil, err
	}
	dNew, err := cand.Decide(ctx, q)
	if err != nil {
		return "", nil, nil, err
	}
	return r.Add(q, dOld, dNew), dOld, dNew, nil
}

// Questions are the questions a diff generates from two versions'
// vocabulary: for every tenant of either version, every caller (no key, or
// each application key of a tenant that applies the package layer) ×
// member × action × object, where the objects are no object, each object
// the tenant's resource groups assign, and an object the member owns. Each
// list is the union of both versions'.
type Questions struct {
	tenants []*questionSpace
	// Possible is the size of the whole set.
	Possible int64
	// Count is how many are asked: all of them, or a sample of max spread
	// over the whole set (one question drawn at random from each of max
	// equal slices of it, with a fixed seed, so a run is repeatable).
	Count int
}

// questionSpace is one tenant's questions: keys × members × actions ×
// (2 + objects), numbered in that order.
type questionSpace struct {
	tenant  string
	keys    []string
	members []string
	actions []string
	objects []string
	size    int64
}

// GenerateQuestions builds the question set of both versions, of at most
// max questions (no bound when max <= 0).
func GenerateQuestions(old, cand *decision.Pinned, max int) (*Questions, error) {
	codes := map[string]bool{}
	for _, p := range []*decision.Pinned{old, cand} {
		cs, err := Tenants(p)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			codes[c] = true
		}
	}
	qs := &Questions{}
	for _, code := range slices.Sorted(maps.Keys(codes)) {
		space := &questionSpace{tenant: code}
		for _, p := range []*decision.Pinned{old, cand} {
			t, err := LoadTenant(p, code)
			var missing *NotFoundError
			if errors.As(err, &missing) {
				continue // a tenant only one version has
			}
			if err != nil {
				return nil, err
			}
			space.keys = append(space.keys, t.Keys...)
			space.members = append(space.members, t.Members...)
			space.actions = append(space.actions, t.Actions...)
			space.objects = append(space.objects, t.Objects...)
		}
		space.keys = sortedUnique(space.keys)
		if len(space.keys) == 0 {
			space.keys = []string{""}
		}
		space.members = sortedUnique(space.members)
		space.objects = sortedUnique(space.objects)
		space.actions = uniqueFold(space.actions)
		sort.Slice(space.actions, func(i, j int) bool { return strings.ToLower(space.actions[i]) < strings.ToLower(space.actions[j]) })
		space.size = int64(len(space.keys)) * int64(len(space.members)) * int64(len(space.actions)) * int64(2+len(space.objects))
		qs.Possible += space.size
		qs.tenants = append(qs.tenants, space)
	}
	qs.Count = int(qs.Possible)
	if max > 0 && qs.Possible > int64(max) {
		qs.Count = max
	}
	return qs, nil
}

func sortedUnique(s []string) []string {
	sort.Strings(s)
	return slices.Compact(s)
}

// All yields the questions in order (tenant, key, member, action, object).
func (qs *Questions) All(yield func(*decision.Request) bool) {
	if int64(qs.Count) == qs.Possible {
		for i := int64(0); i < qs.Possible; i++ {
			if !yield(qs.at(i)) {
				return
			}
		}
		return
	}
	// Stratified sample: question j is drawn from [j*P/n, (j+1)*P/n).
	rng := rand.New(rand.NewPCG(19, 7))
	n := int64(qs.Count)
	for j := int64(0); j < n; j++ {
		lo, hi := mulDiv(j, qs.Possible, n), mulDiv(j+1, qs.Possible, n)
		if !yield(qs.at(lo + rng.Int64N(hi-lo))) {
			return
		}
	}
}

// mulDiv is a*b/c without overflow for the sizes a question set has.
func mulDiv(a, b, c int64) int64 {
	q, r := b/c, b%c
	return a*q + a*r/c
}

// at is question i of the whole set.
func (qs *Questions) at(i int64) *decision.Request {
	for _, s := range qs.tenants {
		if i >= s.size {
			i -= s.size
			continue
		}
		slots := int64(2 + len(s.objects))
		slot := i % slots
		i /= slots
		action := s.actions[i%int64(len(s.actions))]
		i /= int64(len(s.actions))
		member := s.members[i%int64(len(s.members))]
		i /= int64(len(s.members))
		req := &decision.Request{Tenant: s.tenant, Key: s.keys[i], Member: member, Action: action}
		switch {
		case slot == 1:
			req.Resource = &decision.Resource{Owner: member}
		case slot >= 2:
			req.Resource = &decision.Resource{FRN: s.objects[slot-2]}
		}
		return req
	}
	panic("question index out of range")
}
