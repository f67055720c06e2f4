// Package route translates an HTTP request (method and path) into the action
// a service's catalog routes give it, Finmars style: a REST collection maps
// GET/POST on its path and GET/PUT/PATCH/DELETE on {id} below it to
// list/create/retrieve/update/partial_update/destroy.
//
// Tables are built once per bundle load; Match allocates nothing.
package route

import (
	"slices"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/verdict-authz/verdict/loader/acl"
)

// Match is the route a request resolved to.
type Match struct {
	Service string
	// Template is the route's path template, the key SOAJS ACLs use for APIs.
	Template string
	// Method is the route's method (HEAD requests match GET routes).
	Method  string
	ViewSet string
	// Action is the full action, e.g. finmars:Portfolio:list.
	Action string
}

// Table matches requests against the routes of one or more services.
type Table struct {
	root       *node
	getActions map[string]struct{}
	byAction   map[string]*Match
	// groups holds the permittable groups of each route that has some.
	groups map[*Match][]string
	// terms holds each route's terms as the decision engine hands them to
	// Rego, built once here instead of on every decision.
	terms map[*Match]*matchTerms
}

// matchTerms are a route's pre-built Rego terms.
type matchTerms struct {
	facts       *ast.Term // input.facts.route (Facts)
	action      *ast.Term // the action (ActionTerms), shared with facts
	actionParts *ast.Term // input.facts.action (ActionParts)
	// actionLower is the action in lower case, its key in byAction.
	actionLower string
}

type node struct {
	literal   map[string]*node
	param     *node
	endpoints map[string]*Match // by method
}

// NewTable builds a table over services, searched in name order. Custom
// routes are placed before the routes a collection generates, so a custom
// GET /portfolio/light/ wins over GET /portfolio/{id}/ and an explicit
// route on a generated path replaces the generated one. When two routes
// claim the same method and path, the first one placed wins.
func NewTable(services ...*acl.Service) *Table {
	sorted := append([]*acl.Service(nil), services...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	t := &Table{root: &node{}, getActions: map[string]struct{}{}, byAction: map[string]*Match{}, groups: map[*Match][]string{}, terms: map[*Match]*matchTerms{}}
	for _, svc := range sorted {
		groups := groupIndex(svc)
		for _, r := range svc.Routes {
			if r.Kind == acl.RouteCustom {
				t.add(r.Path, &Match{Service: svc.Name, Template: r.Path, Method: r.Method, ViewSet: r.ViewSet, Action: r.Action},
					groups[endpointKey(r.Method, r.Path)])
			}
		}
	}
	for _, svc := range sorted {
		groups := groupIndex(svc)
		for _, r := range svc.Routes {
			if r.Kind != acl.RouteCollection {
				continue
			}
			for _, a := range acl.CollectionActions {
				t.add(r.Path, &Match{Service: svc.Name, Template: r.Path, Method: a.Method, ViewSet: r.ViewSet,
					Action: "finmars:" + r.ViewSet + ":" + a.Name}, groups[endpointKey(a.Method, r.Path)])
			}
			detail := DetailTemplate(r.Path)
			for _, a := range acl.DetailActions {
				t.add(detail, &Match{Service: svc.Name, Template: detail, Method: a.Method, ViewSet: r.ViewSet,
					Action: "finmars:" + r.ViewSet + ":" + a.Name}, groups[endpointKey(a.Method, detail)])
			}
		}
	}
	return t
}

// groupIndex maps each endpoint (method and normalized template) of the
// service's permittable groups to the sorted names of the groups that list
// it.
func groupIndex(svc *acl.Service) map[string][]string {
	if len(svc.PermittableGroups) == 0 {
		return nil
	}
	out := map[string][]string{}
	for g, endpoints := range svc.PermittableGroups {
		for _, e := range endpoints {
			k := endpointKey(e.Method, e.Path)
			if !slices.Contains(out[k], g) {
				out[k] = append(out[k], g)
			}
		}
	}
	for _, gs := range out {
		sort.Strings(gs)
	}
	return out
}

// endpointKey identifies a method and path template: the trailing slash is
// dropped and every parameter segment ({id} or :id) counts as the same, so
// a permittable group may write a route's template either way.
func endpointKey(method, template string) string {
	segs := segments(template)
	for i, seg := range segs {
		if isParam(seg) {
			segs[i] = "{}"
		}
	}
	return strings.ToUpper(method) + " /" + strings.Join(segs, "/")
}

// DetailTemplate is the {id} route below a collection path, keeping the
// collection's trailing-slash style.
func DetailTemplate(collection string) string {
	if strings.HasSuffix(collection, "/") {
		return collection + "{id}/"
	}
	return collection + "/{id}"
}

// Groups returns the permittable groups of the matched route's service
// (Fineract CN) that list the route's method and path template, sorted;
// they are computed when the table is built.
func (t *Table) Groups(m *Match) []string {
	if t == nil {
		return nil
	}
	return t.groups[m]
}

// Facts returns the matched route as Rego sees it (input.facts.route):
// {service, template, api, method, viewset, action}, where api is the
// template's key in SOAJS ACLs (acl.APIKey).
func (t *Table) Facts(m *Match) *ast.Term {
	if terms := t.prebuilt(m); terms != nil {
		return terms.facts
	}
	return newMatchTerms(m, strings.ToLower(m.Action)).facts
}

// ActionTerms returns an action as Rego sees it: the string (input.action)
// and its parts (input.facts.action, see ActionParts). When m, which may be
// nil, is a route of the table whose action is spelled exactly so, they are
// the terms built with the table; otherwise they are built here.
func (t *Table) ActionTerms(m *Match, action string) (str, parts *ast.Term) {
	if terms := t.prebuilt(m); terms != nil && m.Action == action {
		return terms.action, terms.actionParts
	}
	return ast.StringTerm(action), ActionParts(action)
}

// prebuilt returns the terms built for m with the table, or nil.
func (t *Table) prebuilt(m *Match) *matchTerms {
	if t == nil || m == nil {
		return nil
	}
	return t.terms[m]
}

// SplitAction splits an action at its last ":" into its name and the
// resource it acts on: finmars:Portfolio:list is list on
// finmars:Portfolio; an action without ":" is its own name and resource.
func SplitAction(action string) (name, resource string) {
	if i := strings.LastIndexByte(action, ':'); i >= 0 {
		return action[i+1:], action[:i]
	}
	return action, action
}

// ActionParts is an action as Rego sees it (input.facts.action): {name,
// resource}, split by SplitAction.
func ActionParts(action string) *ast.Term {
	name, resource := SplitAction(action)
	return ast.ObjectTerm(
		ast.Item(keyName, ast.StringTerm(name)),
		ast.Item(keyResource, ast.StringTerm(resource)),
	)
}

// Keys of the route's terms.
var (
	keyName     = ast.StringTerm("name")
	keyResource = ast.StringTerm("resource")
	keyService  = ast.StringTerm("service")
	keyTemplate = ast.StringTerm("template")
	keyAPI      = ast.StringTerm("api")
	keyMethod   = ast.StringTerm("method")
	keyViewSet  = ast.StringTerm("viewset")
	keyAction   = ast.StringTerm("action")
)

func newMatchTerms(m *Match, actionLower string) *matchTerms {
	action := ast.StringTerm(m.Action)
	return &matchTerms{
		facts: ast.ObjectTerm(
			ast.Item(keyService, ast.StringTerm(m.Service)),
			ast.Item(keyTemplate, ast.StringTerm(m.Template)),
			ast.Item(keyAPI, ast.StringTerm(acl.APIKey(m.Template))),
			ast.Item(keyMethod, ast.StringTerm(m.Method)),
			ast.Item(keyViewSet, ast.StringTerm(m.ViewSet)),
			ast.Item(keyAction, action),
		),
		action:      action,
		actionParts: ActionParts(m.Action),
		actionLower: actionLower,
	}
}

func (t *Table) add(template string, m *Match, groups []string) {
	n := t.root
	for _, seg := range segments(template) {
		if isParam(seg) {
			if n.param == nil {
				n.param = &node{}
			}
			n = n.param
			continue
		}
		if n.literal == nil {
			n.literal = map[string]*node{}
		}
		child := n.literal[seg]
		if child == nil {
			child = &node{}
			n.literal[seg] = child
		}
		n = child
	}
	if n.endpoints == nil {
		n.endpoints = map[string]*Match{}
	}
	if _, taken := n.endpoints[m.Method]; taken {
		return
	}
	n.endpoints[m.Method] = m
	action := strings.ToLower(m.Action)
	t.terms[m] = newMatchTerms(m, action)
	if len(groups) > 0 {
		t.groups[m] = groups
	}
	if m.Method == "GET" {
		t.getActions[action] = struct{}{}
	}
	if _, taken := t.byAction[action]; !taken {
		t.byAction[action] = m
	}
}

// ByAction returns the first route that maps to the (lower-cased) action,
// for requests that name an action instead of a method and path.
func (t *Table) ByAction(actionLower string) (*Match, bool) {
	if t == nil {
		return nil, false
	}
	m, ok := t.byAction[actionLower]
	return m, ok
}

// maxFoldedAction bounds the actions FoldAction lower-cases on the stack.
const maxFoldedAction = 128

// FoldAction returns the action in lower case and, as ByAction does, the
// first route that maps to it. When a route maps to it the lower-case string
// is the table's own, so that looking an action up does not allocate;
// otherwise it is strings.ToLower's.
func (t *Table) FoldAction(action string) (actionLower string, m *Match, ok bool) {
	if t == nil {
		return strings.ToLower(action), nil, false
	}
	var buf [maxFoldedAction]byte
	if len(action) > len(buf) {
		lower := strings.ToLower(action)
		m, ok = t.byAction[lower]
		return lower, m, ok
	}
	folded := buf[:len(action)]
	for i := 0; i < len(action); i++ {
		c := action[i]
		if c >= 0x80 { // not ASCII: strings.ToLower folds it
			lower := strings.ToLower(action)
			m, ok = t.byAction[lower]
			return lower, m, ok
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		folded[i] = c
	}
	if m, ok = t.byAction[string(folded)]; ok {
		return t.terms[m].actionLower, m, true
	}
	return string(folded), nil, false
}

// IsGetAction reports whether some GET route maps to the (lower-cased)
// action: such actions count as reads for public references.
func (t *Table) IsGetAction(actionLower string) bool {
	_, ok := t.getActions[actionLower]
	return ok
}

// Match finds the route for method (upper case) and path. The path's query
// string, if any, must already be removed; a trailing slash is optional.
func (t *Table) Match(method, path string) (*Match, bool) {
	if t == nil {
		return nil, false
	}
	path = strings.TrimPrefix(path, "/")
	if len(path) > 0 && path[len(path)-1] == '/' {
		path = path[:len(path)-1]
	}
	if m := t.root.match(method, path, path == ""); m != nil {
		return m, true
	}
	if method == "HEAD" {
		if m := t.root.match("GET", path, path == ""); m != nil {
			return m, true
		}
	}
	return nil, false
}

// match walks the remaining path: literal children first, then a parameter,
// backtracking when a branch has no endpoint for the method.
func (n *node) match(method, rest string, done bool) *Match {
	if done {
		return n.endpoints[method]
	}
	seg, next, last := rest, "", true
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		seg, next, last = rest[:i], rest[i+1:], false
	}
	if child := n.literal[seg]; child != nil {
		if m := child.match(method, next, last); m != nil {
			return m
		}
	}
	if n.param != nil && seg != "" {
		return n.param.match(method, next, last)
	}
	return nil
}

func segments(template string) []string {
	p := strings.Trim(template, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func isParam(seg string) bool {
	return strings.HasPrefix(seg, ":") || (strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}"))
}
