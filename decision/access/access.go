// Package access answers policy-impact questions — who can perform an
// action, what a member can do, and what a new bundle version would change —
// by enumerating the decision questions they stand for and asking the
// decision engine each one. Rego makes every answer it reports: this package
// only chooses the questions (members, actions, objects of a tenant) and
// sorts the answers.
package access

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/loader/store"
)

// NotFoundError names a tenant, member or action the pinned generation does
// not know. The HTTP API answers it with 404.
type NotFoundError struct {
	// Kind is "tenant", "member" or "action".
	Kind   string
	Name   string
	Tenant string
}

func (e *NotFoundError) Error() string {
	switch e.Kind {
	case "tenant":
		return fmt.Sprintf("unknown tenant %q", e.Name)
	case "action":
		return fmt.Sprintf("unknown action %q: it is in no route and no statement of tenant %q", e.Name, e.Tenant)
	}
	return fmt.Sprintf("unknown %s %q in tenant %q", e.Kind, e.Name, e.Tenant)
}

// Page sizes.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Progress is told, after each question, how many of a review's questions
// have been asked and how many there are at most.
type Progress func(done, total int)

// Tenant is what a review enumerates for one tenant of a generation.
type Tenant struct {
	Code string
	// Members are the member names, sorted.
	Members []string
	// Actions is the tenant's vocabulary (see Vocabulary), sorted by lower
	// case.
	Actions []string
	// Objects are the lower-cased FRNs the tenant's resource groups assign,
	// sorted.
	Objects []string
	// Keys are the first key of each of the tenant's applications, by
	// application name, when the tenant applies the package layer (SOAJS),
	// which needs a key; nil otherwise.
	Keys []string
}

// LoadTenant reads what a review of the tenant enumerates from a pinned
// generation; a *NotFoundError when the tenant is not loaded.
func LoadTenant(p *decision.Pinned, code string) (*Tenant, error) {
	r := p.Generation().Facts.Read()
	rec, err := r.Tenant(code)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, &NotFoundError{Kind: "tenant", Name: code}
	}
	routes, err := r.RouteTable(store.AllServices)
	if err != nil {
		return nil, err
	}
	members, err := r.MemberNames(code)
	if err != nil {
		return nil, err
	}
	t := rec.Tenant
	out := &Tenant{Code: code, Actions: Vocabulary(t, routes.Actions()), Members: members}
	for _, rg := range t.ResourceGroups {
		out.Objects = append(out.Objects, rg.Assignments...)
	}
	sort.Strings(out.Objects)
	out.Objects = slices.Compact(out.Objects)
	if t.HasCheck("package") {
		apps := make([]string, 0, len(t.Applications))
		for name, app := range t.Applications {
			if len(app.Keys) > 0 {
				apps = append(apps, name)
			}
		}
		sort.Strings(apps)
		for _, name := range apps {
			out.Keys = append(out.Keys, t.Applications[name].Keys[0].Key)
		}
	}
	return out, nil
}

// Tenants lists the codes of every tenant of a pinned generation, sorted.
func Tenants(p *decision.Pinned) ([]string, error) {
	recs, err := p.Generation().Facts.Read().Tenants()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(recs))
	for i, rec := range recs {
		out[i] = rec.Code
	}
	sort.Strings(out)
	return out, nil
}

// HasMember reports whether the tenant has the member.
func (t *Tenant) HasMember(name string) bool {
	_, ok := slices.BinarySearch(t.Members, name)
	return ok
}

// Action returns the vocabulary's spelling of action (actions compare
// ignoring case), or false when it is not in the vocabulary.
func (t *Tenant) Action(action string) (string, bool) {
	lower := strings.ToLower(action)
	i, ok := slices.BinarySearchFunc(t.Actions, lower, func(a, target string) int { return strings.Compare(strings.ToLower(a), target) })
	if !ok {
		return "", false
	}
	return t.Actions[i], true
}

// Vocabulary is the set of actions a review of the tenant asks about: the
// actions of the catalog's routes (routeActions), the literal actions of the
// tenant's statements, and for each wildcard statement action every
// Finmars view-set action (finmars:<ViewSet>:<name>, over the view sets of
// the routes and the action names of the routes and statements) that shares
// the pattern's literal prefix. The prefix is only a narrowing: Rego decides
// whether the pattern matches. Actions compare ignoring case; each is listed
// once, sorted by lower case.
func Vocabulary(t *acl.Tenant, routeActions []string) []string {
	byLower := map[string]string{}
	add := func(a string) {
		if _, ok := byLower[strings.ToLower(a)]; !ok {
			byLower[strings.ToLower(a)] = a
		}
	}
	var viewSets, names []string
	note := func(a string) {
		parts := strings.Split(a, ":")
		if len(parts) == 3 && strings.EqualFold(parts[0], "finmars") {
			viewSets = append(viewSets, parts[1])
			names = append(names, parts[2])
		}
	}
	for _, a := range routeActions {
		add(a)
		note(a)
	}
	var wildcards []acl.ActionPattern
	for _, code := range slices.Sorted(maps.Keys(t.Policies)) {
		for _, s := range t.Policies[code].Statements {
			for _, a := range s.Actions {
				if strings.Contains(a.Raw, "*") {
					wildcards = append(wildcards, a)
					continue
				}
				add(a.Raw)
				note(a.Raw)
			}
		}
	}
	if len(wildcards) > 0 {
		viewSets, names = uniqueFold(viewSets), uniqueFold(names)
		for _, vs := range viewSets {
			for _, name := range names {
				candidate := "finmars:" + vs + ":" + name
				lower := strings.ToLower(candidate)
				if slices.ContainsFunc(wildcards, func(p acl.ActionPattern) bool { return hasLiteralPrefix(lower, p.IndexKey) }) {
					add(candidate)
				}
			}
		}
	}
	out := make([]string, 0, len(byLower))
	for _, a := range byLower {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i]) < strings.ToLower(out[j]) })
	return out
}

// hasLiteralPrefix reports whether the action (lower case) starts with the
// pattern's literal parts (acl.ActionPattern.IndexKey).
func hasLiteralPrefix(actionLower, indexKey string) bool {
	return indexKey == "" || actionLower == indexKey || strings.HasPrefix(actionLower, indexKey+":")
}

// uniqueFold keeps the first spelling of each string, ignoring case.
func uniqueFold(in []string) []string {
	seen := map[string]bool{}
	out := in[:0:0]
	for _, s := range in {
		if l := strings.ToLower(s); !seen[l] {
			seen[l] = true
			out = append(out, s)
		}
	}
	return out
}

// Grant is one allowed answer of a review, with the reasons Rego gave.
type Grant struct {
	Member     string            `json:"member,omitempty"`
	Action     string            `json:"action,omitempty"`
	Visibility string            `json:"visibility"`
	Reasons    []decision.Reason `json:"reasons"`
}

// Query is an access review's question: who can perform Action, or what
// Member can do, in Tenant, on the object FRN (none: no object).
type Query struct {
	Tenant string
	Action string // who can
	Member string // what can
	FRN    string
	// Key is the application key the questions carry (for tenants that
	// apply the package layer); none by default.
	Key string
	// Cursor continues a previous page (its NextCursor); Limit bounds the
	// grants of a page (DefaultLimit when 0, at most MaxLimit).
	Cursor string
	Limit  int
}

// Page is one page of a review's grants.
type Page struct {
	Tenant string `json:"tenant"`
	Action string `json:"action,omitempty"`
	Member string `json:"member,omitempty"`
	FRN    string `json:"frn,omitempty"`
	// Grants are the members (who can) or actions (what can) allowed, in
	// name order.
	Grants []Grant `json:"grants"`
	// Asked counts the questions this page asked; Total is the number of
	// members (who can) or actions (what can) of the whole review.
	Asked int `json:"asked"`
	Total int `json:"total"`
	// NextCursor, when set, continues the review after this page.
	NextCursor string            `json:"next_cursor,omitempty"`
	Revision   map[string]string `json:"revision"`
}

// WhoCan lists the members of q.Tenant whom Rego allows q.Action (on q.FRN
// when given), with the reasons of each allow.
func WhoCan(ctx context.Context, p *decision.Pinned, q Query, progress Progress) (*Page, error) {
	if q.Action == "" {
		return nil, &decision.InputError{Field: "action", Message: "is required"}
	}
	if err := acl.ValidateAction(q.Action); err != nil {
		return nil, &decision.InputError{Field: "action", Message: err.Error()}
	}
	t, start, limit, err := prepare(p, q)
	if err != nil {
		return nil, err
	}
	action, ok := t.Action(q.Action)
	if !ok {
		return nil, &NotFoundError{Kind: "action", Name: q.Action, Tenant: q.Tenant}
	}
	page := &Page{Tenant: t.Code, Action: action, FRN: q.FRN, Grants: []Grant{}, Total: len(t.Members), Revision: p.Generation().Revisions}
	from, _ := slices.BinarySearch(t.Members, start)
	if start != "" && from < len(t.Members) && t.Members[from] == start {
		from++
	}
	err = review(ctx, p, t.Members[from:], limit, page, progress, func(member string) *decision.Request {
		return t.question(q.Key, member, action, q.FRN)
	}, func(member string, d *decision.Decision) Grant {
		return Grant{Member: member, Visibility: d.Visibility, Reasons: d.Reasons}
	})
	return page, err
}

// WhatCan lists the actions of the tenant's vocabulary that Rego allows
// q.Member (on q.FRN when given), with the reasons of each allow.
func WhatCan(ctx context.Context, p *decision.Pinned, q Query, progress Progress) (*Page, error) {
	if q.Member == "" {
		return nil, &decision.InputError{Field: "member", Message: "is required"}
	}
	t, start, limit, err := prepare(p, q)
	if err != nil {
		return nil, err
	}
	if !t.HasMember(q.Member) {
		return nil, &NotFoundError{Kind: "member", Name: q.Member, Tenant: q.Tenant}
	}
	page := &Page{Tenant: t.Code, Member: q.Member, FRN: q.FRN, Grants: []Grant{}, Total: len(t.Actions), Revision: p.Generation().Revisions}
	startLower := strings.ToLower(start)
	from := sort.Search(len(t.Actions), func(i int) bool { return strings.ToLower(t.Actions[i]) > startLower })
	if start == "" {
		from = 0
	}
	err = review(ctx, p, t.Actions[from:], limit, page, progress, func(action string) *decision.Request {
		return t.question(q.Key, q.Member, action, q.FRN)
	}, func(action string, d *decision.Decision) Grant {
		return Grant{Action: action, Visibility: d.Visibility, Reasons: d.Reasons}
	})
	return page, err
}

// prepare validates what who-can and what-can share and loads the tenant.
func prepare(p *decision.Pinned, q Query) (t *Tenant, start string, limit int, err error) {
	if q.Tenant == "" {
		return nil, "", 0, &decision.InputError{Field: "tenant", Message: "is required"}
	}
	if q.FRN != "" {
		frn, err := acl.ParseFRN(q.FRN)
		if err != nil {
			return nil, "", 0, &decision.InputError{Field: "frn", Message: err.Error()}
		}
		if frn.IsResourceGroup() {
			return nil, "", 0, &decision.InputError{Field: "frn", Message: "names a resource group; give an object's FRN"}
		}
	}
	switch {
	case q.Limit == 0:
		limit = DefaultLimit
	case q.Limit < 0 || q.Limit > MaxLimit:
		return nil, "", 0, &decision.InputError{Field: "limit", Message: fmt.Sprintf("must be between 1 and %d", MaxLimit)}
	default:
		limit = q.Limit
	}
	if start, err = decodeCursor(q.Cursor); err != nil {
		return nil, "", 0, err
	}
	t, err = LoadTenant(p, q.Tenant)
	return t, start, limit, err
}

// question is the decision request a review asks.
func (t *Tenant) question(key, member, action, frn string) *decision.Request {
	req := &decision.Request{Tenant: t.Code, Key: key, Member: member, Action: action}
	if frn != "" {
		req.Resource = &decision.Resource{FRN: frn}
	}
	return req
}

// review asks the question of each name in order until the page holds
// limit grants, and sets the page's cursor when names remain.
func review(ctx context.Context, p *decision.Pinned, names []string, limit int, page *Page, progress Progress,
	question func(string) *decision.Request, grant func(string, *decision.Decision) Grant) error {
	for i, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		d, err := p.Decide(ctx, question(name))
		if err != nil {
			return err
		}
		page.Asked++
		if progress != nil {
			progress(page.Asked, len(names))
		}
		if d.Allow {
			page.Grants = append(page.Grants, grant(name, d))
		}
		if len(page.Grants) == limit && i < len(names)-1 {
			page.NextCursor = encodeCursor(name)
			break
		}
	}
	return nil
}

// cursorPrefix versions the cursor's encoding.
const cursorPrefix = "after:"

func encodeCursor(after string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + after))
}

func decodeCursor(c string) (string, error) {
	if c == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(raw), cursorPrefix) {
		return "", &decision.InputError{Field: "cursor", Message: "is not a cursor this server gave (pass next_cursor unchanged)"}
	}
	return strings.TrimPrefix(string(raw), cursorPrefix), nil
}
