package acl

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/agnivade/levenshtein"
	"github.com/gobwas/glob"
)

// MethodAction is one method of a REST collection route and the action name
// it gives (finmars:<ViewSet>:<Name>).
type MethodAction struct{ Method, Name string }

// CollectionActions are the actions a collection route gives on its own path,
// and DetailActions those on the {id} path below it (Finmars viewsets).
var (
	CollectionActions = []MethodAction{{"GET", "list"}, {"POST", "create"}}
	DetailActions     = []MethodAction{
		{"GET", "retrieve"}, {"PUT", "update"}, {"PATCH", "partial_update"}, {"DELETE", "destroy"},
	}
)

// Actions lists the actions the route gives: six for a collection
// (finmars:<ViewSet>:list, create, retrieve, update, partial_update,
// destroy), its own for a custom route.
func (r Route) Actions() []string {
	if r.Kind != RouteCollection {
		return []string{r.Action}
	}
	out := make([]string, 0, len(CollectionActions)+len(DetailActions))
	for _, list := range [][]MethodAction{CollectionActions, DetailActions} {
		for _, a := range list {
			out = append(out, "finmars:"+r.ViewSet+":"+a.Name)
		}
	}
	return out
}

// Matcher compiles the pattern into the match the engine's Rego makes,
// glob.match(Glob, [":"], action) with OPA's glob library and options; the
// matcher takes a lower-cased action. A pattern that does not compile (none
// that ParseActionPattern accepts) matches nothing, as glob.match would be
// undefined for it.
func (p ActionPattern) Matcher() func(actionLower string) bool {
	g, err := glob.Compile(p.Glob, ':')
	if err != nil {
		return func(string) bool { return false }
	}
	return g.Match
}

// Matcher compiles a resource pattern (an object's FRN or a group's code)
// into the match the engine's Rego makes, glob.match(Pattern, null, s), on
// a lower-cased FRN or group code.
func (p ResourcePattern) Matcher() func(lower string) bool {
	if p.Literal {
		return func(code string) bool { return code == p.Pattern }
	}
	g, err := glob.Compile(p.Pattern)
	if err != nil {
		return func(string) bool { return false }
	}
	return g.Match
}

// Vocabulary is every action the routes of a set of services give: what a
// statement's Action can ever be asked about through a route. A pattern that
// matches none of them is almost always a typo (finmars:Note:destory), and in
// a Deny a typo silently widens access. A Vocabulary is not safe for
// concurrent use.
type Vocabulary struct {
	// actions maps each lower-cased action to its spelling in the first
	// route (by service name) that gives it.
	actions map[string]string
	sorted  []string
	// matchers caches compiled wildcard patterns by Glob.
	matchers map[string]func(string) bool
}

// NewVocabulary collects the actions of the services' routes.
func NewVocabulary(services ...*Service) *Vocabulary {
	sorted := append([]*Service(nil), services...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	v := &Vocabulary{actions: map[string]string{}, matchers: map[string]func(string) bool{}}
	for _, svc := range sorted {
		for _, r := range svc.Routes {
			for _, a := range r.Actions() {
				lower := strings.ToLower(a)
				if _, ok := v.actions[lower]; !ok {
					v.actions[lower] = a
					v.sorted = append(v.sorted, lower)
				}
			}
		}
	}
	sort.Strings(v.sorted)
	return v
}

// Known reports whether the vocabulary has any action: without services
// (a tenant bundle checked without its catalog) nothing can be told a typo.
func (v *Vocabulary) Known() bool { return len(v.actions) > 0 }

// Matches reports whether the pattern matches some action of the vocabulary.
func (v *Vocabulary) Matches(p ActionPattern) bool {
	if !strings.Contains(p.Glob, "*") {
		_, ok := v.actions[p.Glob]
		return ok
	}
	m, ok := v.matchers[p.Glob]
	if !ok {
		m = p.Matcher()
		v.matchers[p.Glob] = m
	}
	for _, a := range v.sorted {
		if m(a) {
			return true
		}
	}
	return false
}

// Closest is the known action (or, for a pattern with wildcards, the known
// action written with the pattern's wildcard parts) nearest to the pattern
// by edit distance, ignoring case; ok is false when nothing is near enough
// to be the intended one.
func (v *Vocabulary) Closest(p ActionPattern) (suggestion string, ok bool) {
	pattern := strings.ToLower(p.Raw)
	best := -1
	for _, lower := range v.sorted {
		candidate := shapeLike(p.Raw, v.actions[lower])
		d := levenshtein.ComputeDistance(pattern, strings.ToLower(candidate))
		if best < 0 || d < best {
			best, suggestion = d, candidate
		}
	}
	if best < 0 || best == 0 || best > max(2, len(pattern)/4) {
		return "", false
	}
	return suggestion, true
}

// shapeLike writes action in the shape of pattern: the parts where the
// pattern has a wildcard take the pattern's part, and a pattern ending in a
// whole "*" part cuts the action to as many parts.
func shapeLike(pattern, action string) string {
	pp := strings.Split(pattern, ":")
	ap := strings.Split(action, ":")
	if pp[len(pp)-1] == "*" && len(ap) > len(pp) {
		ap = ap[:len(pp)]
	}
	if len(ap) != len(pp) {
		return action
	}
	for i, part := range pp {
		if strings.Contains(part, "*") {
			ap[i] = part
		}
	}
	return strings.Join(ap, ":")
}

// ClosestName is the name of names nearest to s by edit distance, ignoring
// case, when it is near enough to be the intended one (a misspelt
// resource group, or field).
func ClosestName(s string, names []string) (string, bool) {
	best, out := -1, ""
	lower := strings.ToLower(s)
	for _, c := range names {
		if d := levenshtein.ComputeDistance(lower, strings.ToLower(c)); best < 0 || d < best {
			best, out = d, c
		}
	}
	if best <= 0 || best > max(2, len(lower)/4) {
		return "", false
	}
	return out, true
}

// didYouMean is a message's hint for a suggestion, or nothing.
func didYouMean(suggestion string, ok bool) string {
	if !ok {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", suggestion)
}

// CheckActions checks the action patterns of every statement of doc's
// tenants against the vocabulary. A pattern that matches no known action
// makes its statement dead: for a Deny that is an error when strict (the
// bundle is rejected: a misspelt Deny forbids nothing) and a warning
// otherwise; for an Allow always a warning (it grants nothing). Each
// problem names the file and the entry and suggests the closest known
// action. Nothing is checked when the vocabulary knows no action.
func CheckActions(doc *Document, files FileResolver, v *Vocabulary, strict bool, ps *Problems) {
	if !v.Known() {
		return
	}
	for _, code := range slices.Sorted(maps.Keys(doc.Tenants)) {
		t := doc.Tenants[code]
		for _, pcode := range slices.Sorted(maps.Keys(t.Policies)) {
			for _, s := range t.Policies[pcode].Statements {
				for i, a := range s.Actions {
					if v.Matches(a) {
						continue
					}
					loc := NewLoc(files, "verdict", "tenants", code, "access_policies", pcode, "Statement").
						Index(s.Index).Key("Action").Index(i)
					hint := didYouMean(v.Closest(a))
					switch {
					case s.Effect == Deny && strict:
						ps.Add(loc, "action %q matches no action of the catalog's routes or of a registered service, so this Deny would forbid nothing%s", a.Raw, hint)
					case s.Effect == Deny:
						ps.Warn(loc, "action %q matches no action of the catalog's routes or of a registered service: this Deny forbids nothing%s", a.Raw, hint)
					default:
						ps.Warn(loc, "action %q matches no action of the catalog's routes or of a registered service: this Allow grants nothing%s", a.Raw, hint)
					}
				}
			}
		}
	}
}
