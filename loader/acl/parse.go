package acl

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Document is what one bundle's verdict data declares.
type Document struct {
	Catalog Catalog
	Tenants map[string]*Tenant
	// Refs are the references the whole set of bundles must resolve.
	Refs []Ref
}

// NewDocument returns an empty document.
func NewDocument() *Document {
	return &Document{
		Catalog: Catalog{Services: map[string]*Service{}, Products: map[string]*Product{}, Packages: map[string]*Package{}},
		Tenants: map[string]*Tenant{},
	}
}

// Parse reads the verdict.catalog and verdict.tenants documents out of a
// bundle's verdict data subtree (the value at data.verdict). Problems are
// recorded in ps; the returned document holds whatever parsed cleanly.
func Parse(verdict map[string]any, files FileResolver, ps *Problems) *Document {
	doc := NewDocument()
	if raw, ok := verdict["catalog"]; ok {
		parseCatalog(raw, NewLoc(files, "verdict", "catalog"), doc, ps)
	}
	if raw, ok := verdict["tenants"]; ok {
		loc := NewLoc(files, "verdict", "tenants")
		if obj, ok := asObject(raw, loc, ps); ok {
			for _, code := range slices.Sorted(maps.Keys(obj)) {
				tloc := NewLoc(files, "verdict", "tenants", code)
				if t := parseTenant(code, obj[code], tloc, ps, doc); t != nil {
					doc.Tenants[code] = t
				}
			}
		}
	}
	return doc
}

func parseCatalog(raw any, loc Loc, doc *Document, ps *Problems) {
	obj, ok := asObject(raw, loc, ps)
	if !ok {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		switch k {
		case "services":
			sloc := loc.Key("services")
			services, ok := asObject(obj[k], sloc, ps)
			if !ok {
				continue
			}
			for _, name := range slices.Sorted(maps.Keys(services)) {
				if s := ParseService(name, services[name], sloc.Key(name), ps); s != nil {
					doc.Catalog.Services[name] = s
				}
			}
		case "products":
			parseProducts(obj[k], loc.Key("products"), doc, ps)
		default:
			ps.Warn(loc.Key(k), "unknown catalog entry; it is ignored")
		}
	}
}

var httpMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true,
}

// IsHTTPMethod reports whether m (upper case) is a method routes may name.
func IsHTTPMethod(m string) bool { return httpMethods[m] }

// ParseService parses one service document. It is used for bundle data and
// for run-time registrations alike.
func ParseService(name string, raw any, loc Loc, ps *Problems) *Service {
	obj, ok := asObject(raw, loc, ps)
	if !ok {
		return nil
	}
	before := len(ps.list)
	svc := &Service{Name: name, PermittableGroups: map[string][]Endpoint{}, File: loc.File()}
	if !ValidServiceName(name) {
		ps.Add(loc, `service name %q must be 1 to %d bytes of UTF-8 without control characters, "/", "*" or space`, name, MaxNameBytes)
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		switch k {
		case "routes":
			rloc := loc.Key("routes")
			list, ok := asList(obj[k], rloc, ps)
			if !ok {
				continue
			}
			seen := map[string]int{}
			for i, item := range list {
				iloc := rloc.Index(i)
				r, ok := parseRoute(item, iloc, ps)
				if !ok {
					continue
				}
				key := r.Method + " " + NormalizePath(r.Path)
				if prev, dup := seen[key]; dup {
					ps.Add(iloc, "duplicate route %s %s (also routes[%d])", orAny(r.Method), r.Path, prev)
					continue
				}
				seen[key] = i
				svc.Routes = append(svc.Routes, r)
			}
		case "permittable_groups":
			gloc := loc.Key(k)
			groups, ok := asObject(obj[k], gloc, ps)
			if !ok {
				continue
			}
			for _, g := range slices.Sorted(maps.Keys(groups)) {
				eloc := gloc.Key(g)
				list, ok := asList(groups[g], eloc, ps)
				if !ok {
					continue
				}
				for i, item := range list {
					iloc := eloc.Index(i)
					e, ok := asObject(item, iloc, ps)
					if !ok {
						continue
					}
					method, _ := asString(e["method"], iloc.Key("method"), ps, true)
					path, _ := asString(e["path"], iloc.Key("path"), ps, true)
					method = strings.ToUpper(method)
					if method != "" && !httpMethods[method] {
						ps.Add(iloc.Key("method"), "unknown HTTP method %q", method)
					}
					if path != "" && !strings.HasPrefix(path, "/") {
						ps.Add(iloc.Key("path"), "path %q must start with /", path)
					}
					warnUnknown(e, iloc, ps, "method", "path")
					svc.PermittableGroups[g] = append(svc.PermittableGroups[g], Endpoint{Method: method, Path: path})
				}
			}
		default:
			ps.Warn(loc.Key(k), "unknown service field; it is ignored")
		}
	}
	if len(ps.list) > before {
		return nil
	}
	return svc
}

func orAny(method string) string {
	if method == "" {
		return "(collection)"
	}
	return method
}

func parseRoute(raw any, loc Loc, ps *Problems) (Route, bool) {
	obj, ok := asObject(raw, loc, ps)
	if !ok {
		return Route{}, false
	}
	before := len(ps.list)
	warnUnknown(obj, loc, ps, "method", "path", "viewset", "action")
	path, _ := asString(obj["path"], loc.Key("path"), ps, true)
	method, hasMethod := asString(obj["method"], loc.Key("method"), ps, false)
	viewset, hasViewSet := asString(obj["viewset"], loc.Key("viewset"), ps, false)
	action, hasAction := asString(obj["action"], loc.Key("action"), ps, false)
	if path != "" {
		if err := ValidatePathTemplate(path); err != nil {
			ps.Add(loc.Key("path"), "%v", err)
		}
	}
	method = strings.ToUpper(method)
	if hasMethod && !httpMethods[method] {
		ps.Add(loc.Key("method"), "unknown HTTP method %q", method)
	}
	if hasViewSet {
		if err := validateActionPart(viewset); err != nil {
			ps.Add(loc.Key("viewset"), "view set %q: %v", viewset, err)
		}
	}
	r := Route{Path: path, Method: method, ViewSet: viewset}
	switch {
	case hasViewSet && !hasMethod && !hasAction:
		r.Kind = RouteCollection
	case hasViewSet && hasMethod && hasAction:
		r.Kind = RouteCustom
		if err := validateActionPart(action); err != nil {
			ps.Add(loc.Key("action"), "action name %q: %v", action, err)
		}
		r.Action = "finmars:" + viewset + ":" + action
	case !hasViewSet && hasMethod && hasAction:
		r.Kind = RouteCustom
		if err := ValidateAction(action); err != nil {
			ps.Add(loc.Key("action"), "%v", err)
		}
		r.Action = action
	case hasAction && !hasMethod:
		ps.Add(loc, "a route with an action needs a method")
	case hasMethod && !hasAction:
		ps.Add(loc, "a route with a method needs an action")
	default:
		ps.Add(loc, "a route needs a viewset (REST collection) or a method and an action")
	}
	return r, len(ps.list) == before
}

func validateActionPart(p string) error {
	if p == "" {
		return fmt.Errorf("must not be empty")
	}
	for _, r := range p {
		if r == '*' || r == ':' || !isActionChar(r) {
			return fmt.Errorf("has the character %q; only letters, digits, _ - and . are allowed", r)
		}
	}
	return nil
}

// ValidatePathTemplate checks a route path template: it starts with "/",
// and a segment is either literal or one parameter written {name} or :name.
func ValidatePathTemplate(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("path %q must start with /", p)
	}
	if strings.ContainsAny(p, "?#") {
		return fmt.Errorf("path %q must not contain a query or fragment", p)
	}
	for _, seg := range strings.Split(strings.Trim(p, "/"), "/") {
		if strings.ContainsAny(seg, "{}") {
			if len(seg) < 3 || seg[0] != '{' || seg[len(seg)-1] != '}' || strings.ContainsAny(seg[1:len(seg)-1], "{}") {
				return fmt.Errorf("path %q: segment %q: a parameter is written {name} and fills the whole segment", p, seg)
			}
		}
		if seg == ":" {
			return fmt.Errorf("path %q: parameter %q has no name", p, seg)
		}
	}
	return nil
}

// NormalizePath drops the trailing slash (but keeps "/").
func NormalizePath(p string) string {
	if len(p) > 1 && strings.HasSuffix(p, "/") {
		return strings.TrimRight(p, "/")
	}
	return p
}

var knownChecks = map[string]bool{"package": true, "iam": true}

func parseTenant(code string, raw any, loc Loc, ps *Problems, doc *Document) *Tenant {
	obj, ok := asObject(raw, loc, ps)
	if !ok {
		return nil
	}
	before := len(ps.list)
	t := &Tenant{
		Code:           code,
		Checks:         []string{"iam"},
		Members:        map[string]*Member{},
		Roles:          map[string]*Role{},
		Groups:         map[string]*Group{},
		Policies:       map[string]*Policy{},
		ResourceGroups: map[string]*ResourceGroup{},
		Applications:   map[string]*Application{},
		Delegations:    map[string]map[string]*Delegation{},
		File:           loc.File(),
	}
	warnUnknown(obj, loc, ps, "name", "checks", "applications", "members", "roles", "groups",
		"access_policies", "resource_groups", "delegations")
	if v, ok := obj["name"]; ok {
		t.Name, _ = asString(v, loc.Key("name"), ps, true)
	}
	if v, ok := obj["checks"]; ok {
		cloc := loc.Key("checks")
		checks, _ := asStringList(v, cloc, ps)
		if len(checks) == 0 {
			ps.Add(cloc, "checks must name at least one of package, iam")
		}
		seen := map[string]bool{}
		t.Checks = t.Checks[:0]
		for i, c := range checks {
			if c == "" {
				continue
			}
			if !knownChecks[c] {
				ps.Add(cloc.Index(i), "unknown check %q; known checks are package and iam", c)
				continue
			}
			if !seen[c] {
				seen[c] = true
				t.Checks = append(t.Checks, c)
			}
		}
	}
	eachEntry(obj, "applications", loc, ps, func(k string, v any, l Loc) {
		if app := parseApplication(k, v, l, ps, doc); app != nil {
			t.Applications[k] = app
		}
	})
	eachEntry(obj, "access_policies", loc, ps, func(k string, v any, l Loc) {
		if p := parsePolicy(k, v, l, ps, doc); p != nil {
			t.Policies[k] = p
		}
	})
	eachEntry(obj, "roles", loc, ps, func(k string, v any, l Loc) {
		o, ok := asObject(v, l, ps)
		if !ok {
			return
		}
		warnUnknown(o, l, ps, "policies", "name", "description")
		t.Roles[k] = &Role{Code: k, Policies: refList(o, "policies", l, ps)}
	})
	eachEntry(obj, "groups", loc, ps, func(k string, v any, l Loc) {
		o, ok := asObject(v, l, ps)
		if !ok {
			return
		}
		warnUnknown(o, l, ps, "roles", "policies", "name", "description")
		t.Groups[k] = &Group{Code: k, Roles: refList(o, "roles", l, ps), Policies: refList(o, "policies", l, ps)}
	})
	eachEntry(obj, "resource_groups", loc, ps, func(k string, v any, l Loc) {
		o, ok := asObject(v, l, ps)
		if !ok {
			return
		}
		warnUnknown(o, l, ps, "assignments", "name", "description")
		rg := &ResourceGroup{Code: k}
		if strings.Contains(k, "*") {
			ps.Add(l, "resource group code %q must not contain *", k)
		} else if i := notFRNByte(k); i >= 0 {
			ps.Add(l, "resource group code %q holds %s at byte %d; a code is printable ASCII without spaces, as in its FRN", k, describeByte(k, i), i)
		}
		list, _ := asStringList(o["assignments"], l.Key("assignments"), ps)
		for i, a := range list {
			al := l.Key("assignments").Index(i)
			frn, err := ParseFRN(a)
			switch {
			case a == "":
			case err != nil:
				ps.Add(al, "%v", err)
			case frn.IsResourceGroup():
				ps.Add(al, "%q names a resource group; assignments name objects", a)
			case strings.Contains(a, "*"):
				ps.Add(al, "%q: an assignment names one object and must not contain *", a)
			default:
				rg.Assignments = append(rg.Assignments, strings.ToLower(a))
			}
		}
		t.ResourceGroups[k] = rg
	})
	// Members name the tenant's roles, groups and policies over and over:
	// their lists share the codes' strings rather than keep the decoder's
	// copy of each.
	codes := make(map[string]string, len(t.Roles)+len(t.Groups)+len(t.Policies))
	for c := range t.Roles {
		codes[c] = c
	}
	for c := range t.Groups {
		codes[c] = c
	}
	for c := range t.Policies {
		codes[c] = c
	}
	// Identical lists (members with the same roles or groups) are shared
	// too: the model is read-only once parsed.
	lists := map[string][]string{}
	var key []byte
	shareCodes := func(list []string) []string {
		if len(list) == 0 {
			return list
		}
		key = key[:0]
		for _, c := range list { // length-prefixed: no two lists share a key
			key = append(binary.AppendUvarint(key, uint64(len(c))), c...)
		}
		if shared, ok := lists[string(key)]; ok {
			return shared
		}
		for i, c := range list {
			if shared, ok := codes[c]; ok {
				list[i] = shared
			}
		}
		lists[string(key)] = list
		return list
	}
	eachEntry(obj, "members", loc, ps, func(k string, v any, l Loc) {
		o, ok := asObject(v, l, ps)
		if !ok {
			return
		}
		warnUnknown(o, l, ps, "is_admin", "roles", "groups", "policies", "acl", "name", "email")
		m := &Member{Name: k}
		if v, ok := o["is_admin"]; ok {
			m.IsAdmin, _ = asBool(v, l.Key("is_admin"), ps)
		}
		m.Roles = shareCodes(refList(o, "roles", l, ps))
		m.Groups = shareCodes(refList(o, "groups", l, ps))
		m.Policies = shareCodes(refList(o, "policies", l, ps))
		if v, ok := o["acl"]; ok {
			parseMemberACL(m, v, l.Key("acl"), ps, doc)
		}
		t.Members[k] = m
	})
	eachEntry(obj, "delegations", loc, ps, func(k string, v any, l Loc) {
		if groups := parseDelegations(k, v, l, ps, doc); groups != nil {
			t.Delegations[k] = groups
		}
	})
	t.checkReferences(loc, ps)
	t.checkDelegations(loc, ps)
	t.checkApplications(loc, ps)
	if len(ps.list) > before {
		return nil
	}
	return t
}

// checkReferences reports every dangling role, group, policy and resource
// group reference and every principal that names no member or group.
func (t *Tenant) checkReferences(loc Loc, ps *Problems) {
	checkRefs := func(l Loc, kind string, refs []string, exists func(string) bool) {
		for i, r := range refs {
			if r != "" && !exists(r) {
				ps.Add(l.Index(i), "unknown %s %q", kind, r)
			}
		}
	}
	hasPolicy := func(c string) bool { return t.Policies[c] != nil }
	hasRole := func(c string) bool { return t.Roles[c] != nil }
	hasGroup := func(c string) bool { return t.Groups[c] != nil }
	for _, code := range slices.Sorted(maps.Keys(t.Roles)) {
		checkRefs(loc.Key("roles").Key(code).Key("policies"), "policy", t.Roles[code].Policies, hasPolicy)
	}
	for _, code := range slices.Sorted(maps.Keys(t.Groups)) {
		g := t.Groups[code]
		gl := loc.Key("groups").Key(code)
		checkRefs(gl.Key("roles"), "role", g.Roles, hasRole)
		checkRefs(gl.Key("policies"), "policy", g.Policies, hasPolicy)
	}
	// Members are many and their references almost always sound: they are
	// sorted and given locations only when some reference is not.
	known := func(refs []string, exists func(string) bool) bool {
		for _, r := range refs {
			if r != "" && !exists(r) {
				return false
			}
		}
		return true
	}
	sound := true
	for _, m := range t.Members {
		if !known(m.Roles, hasRole) || !known(m.Groups, hasGroup) || !known(m.Policies, hasPolicy) {
			sound = false
			break
		}
	}
	for _, name := range sortedKeysUnless(sound, t.Members) {
		m := t.Members[name]
		ml := loc.Key("members").Key(name)
		checkRefs(ml.Key("roles"), "role", m.Roles, hasRole)
		checkRefs(ml.Key("groups"), "group", m.Groups, hasGroup)
		checkRefs(ml.Key("policies"), "policy", m.Policies, hasPolicy)
	}
	resourceGroups := make(map[string]bool, len(t.ResourceGroups))
	groupCodes := make([]string, 0, len(t.ResourceGroups))
	for _, code := range slices.Sorted(maps.Keys(t.ResourceGroups)) {
		resourceGroups[strings.ToLower(code)] = true
		groupCodes = append(groupCodes, strings.ToLower(code))
	}
	for _, code := range slices.Sorted(maps.Keys(t.Policies)) {
		for _, s := range t.Policies[code].Statements {
			sl := loc.Key("access_policies").Key(code).Key("Statement").Index(s.Index)
			for i, p := range s.Principals {
				switch {
				case p == "*":
				case strings.HasPrefix(p, "member:") && len(p) > len("member:"):
					if t.Members[p[len("member:"):]] == nil {
						ps.Add(sl.Key("Principal").Index(i), "unknown member %q", p[len("member:"):])
					}
				case strings.HasPrefix(p, "group:") && len(p) > len("group:"):
					if t.Groups[p[len("group:"):]] == nil {
						ps.Add(sl.Key("Principal").Index(i), "unknown group %q", p[len("group:"):])
					}
				}
			}
			for i, r := range s.Resources {
				if r.Kind != ResourceKindGroup {
					continue
				}
				rl := sl.Key("Resource").Index(i)
				if r.Literal {
					if !resourceGroups[r.Pattern] {
						ps.Add(rl, "unknown resource group %q%s", r.Raw, didYouMean(ClosestName(r.Pattern, groupCodes)))
					}
					continue
				}
				// A wildcard that covers no group of the tenant: a Deny
				// that forbids nothing, an Allow that grants nothing.
				if !anyGroupMatches(r, groupCodes) {
					if s.Effect == Deny {
						ps.Add(rl, "resource %q matches no resource group of the tenant, so this Deny would forbid nothing", r.Raw)
					} else {
						ps.Warn(rl, "resource %q matches no resource group of the tenant: this Allow grants nothing", r.Raw)
					}
				}
			}
		}
	}
}

// anyGroupMatches reports whether the resource-group pattern covers one of
// the (lower-cased) group codes.
func anyGroupMatches(r ResourcePattern, codes []string) bool {
	match := r.GroupMatcher()
	for _, c := range codes {
		if match(c) {
			return true
		}
	}
	return false
}

// sortedKeysUnless is m's keys in order, or nothing when skip is true.
func sortedKeysUnless[V any](skip bool, m map[string]V) []string {
	if skip {
		return nil
	}
	return slices.Sorted(maps.Keys(m))
}

func parsePolicy(code string, raw any, loc Loc, ps *Problems, doc *Document) *Policy {
	obj, ok := asObject(raw, loc, ps)
	if !ok {
		return nil
	}
	warnUnknown(obj, loc, ps, "Version", "Statement", "Id", "Description", "description", "name")
	p := &Policy{Code: code}
	if v, ok := obj["Version"]; ok {
		p.Version, _ = asString(v, loc.Key("Version"), ps, true)
	}
	sloc := loc.Key("Statement")
	raws, ok := obj["Statement"]
	if !ok {
		ps.Add(loc, "a policy needs a Statement list")
		return p
	}
	list, ok := asList(raws, sloc, ps)
	if !ok {
		return p
	}
	for i, item := range list {
		if s := parseStatement(code, i, item, sloc.Index(i), ps, doc); s != nil {
			p.Statements = append(p.Statements, s)
		}
	}
	return p
}

func parseStatement(policy string, index int, raw any, loc Loc, ps *Problems, doc *Document) *Statement {
	obj, ok := asObject(raw, loc, ps)
	if !ok {
		return nil
	}
	warnUnknown(obj, loc, ps, "Sid", "Effect", "Action", "Resource", "Principal", "Condition")
	s := &Statement{Policy: policy, Index: index}
	if v, ok := obj["Sid"]; ok {
		s.Sid, _ = asString(v, loc.Key("Sid"), ps, false)
	}
	effect, _ := asString(obj["Effect"], loc.Key("Effect"), ps, true)
	switch strings.ToLower(effect) {
	case "allow":
		s.Effect = Allow
	case "deny":
		s.Effect = Deny
	case "":
	default:
		ps.Add(loc.Key("Effect"), "Effect must be Allow or Deny, not %q", effect)
	}
	actions, aok := requiredStringOrList(obj, "Action", loc, ps)
	for i, a := range actions {
		if a == "" {
			continue
		}
		pat, err := ParseActionPattern(a)
		if err != nil {
			ps.Add(loc.Key("Action").Index(i), "%v", err)
			continue
		}
		s.Actions = append(s.Actions, pat)
	}
	resources, rok := requiredStringOrList(obj, "Resource", loc, ps)
	// Resources and principals keep their positions (a bad entry stays as a
	// placeholder; the problem already rejects the bundle) so that reference
	// checks name the index as written.
	for i, r := range resources {
		pat, err := ParseResourcePattern(r)
		if err != nil && r != "" {
			ps.Add(loc.Key("Resource").Index(i), "%v", err)
		}
		if err != nil {
			pat = ResourcePattern{Raw: r}
		}
		s.Resources = append(s.Resources, pat)
	}
	if v, ok := obj["Principal"]; ok {
		pl := loc.Key("Principal")
		list, _ := stringOrList(v, pl, ps)
		for i, p := range list {
			switch {
			case p == "", p == "*":
			case strings.HasPrefix(p, "member:") && len(p) > len("member:"):
			case strings.HasPrefix(p, "group:") && len(p) > len("group:"):
			default:
				ps.Add(pl.Index(i), "principal %q must be *, member:<name> or group:<code>", p)
			}
			s.Principals = append(s.Principals, p)
		}
	}
	if len(s.Principals) == 0 {
		s.Principals = []string{"*"}
	}
	if v, ok := obj["Condition"]; ok {
		cl := loc.Key("Condition")
		list, _ := stringOrList(v, cl, ps)
		for i, c := range list {
			if c == "" {
				continue
			}
			if !isRuleName(c) {
				ps.Add(cl.Index(i), "condition %q is not a rule name (letters, digits and _)", c)
				continue
			}
			s.Conditions = append(s.Conditions, c)
			doc.Refs = append(doc.Refs, Ref{Kind: RefCondition, Name: c, Loc: cl.Index(i)})
		}
	}
	if !aok || !rok || s.Effect == "" {
		return nil
	}
	return s
}

func isRuleName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// --- generic decoding with locations -------------------------------------

func eachEntry(obj map[string]any, key string, loc Loc, ps *Problems, f func(k string, v any, l Loc)) {
	raw, ok := obj[key]
	if !ok {
		return
	}
	kl := loc.Key(key)
	m, ok := asObject(raw, kl, ps)
	if !ok {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if k == "" {
			ps.Add(kl, "an entry has an empty name")
			continue
		}
		f(k, m[k], kl.Key(k))
	}
}

func refList(obj map[string]any, key string, loc Loc, ps *Problems) []string {
	raw, ok := obj[key]
	if !ok {
		return nil
	}
	l := loc.Key(key)
	list, _ := asStringList(raw, l, ps)
	seen := make(map[string]bool, len(list))
	for i, r := range list {
		if r == "" {
			continue
		}
		if seen[r] {
			ps.Add(l.Index(i), "%q is listed twice", r)
		}
		seen[r] = true
	}
	return list
}

func warnUnknown(obj map[string]any, loc Loc, ps *Problems, known ...string) {
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		found := false
		for _, kn := range known {
			if k == kn {
				found = true
				break
			}
		}
		if !found {
			ps.Warn(loc.Key(k), "unknown field; it is ignored")
		}
	}
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number, float64, int, int64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%T", v)
	}
}

func asObject(v any, loc Loc, ps *Problems) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		ps.Add(loc, "expected an object, got %s", typeName(v))
	}
	return m, ok
}

func asList(v any, loc Loc, ps *Problems) ([]any, bool) {
	l, ok := v.([]any)
	if !ok {
		ps.Add(loc, "expected a list, got %s", typeName(v))
	}
	return l, ok
}

// asString reads a string; present reports whether v was given at all.
func asString(v any, loc Loc, ps *Problems, required bool) (s string, present bool) {
	if v == nil {
		if required {
			ps.Add(loc, "is required")
		}
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		ps.Add(loc, "expected a string, got %s", typeName(v))
		return "", false
	}
	if s == "" && required {
		ps.Add(loc, "must not be empty")
	}
	return s, true
}

func asBool(v any, loc Loc, ps *Problems) (bool, bool) {
	b, ok := v.(bool)
	if !ok {
		ps.Add(loc, "expected true or false, got %s", typeName(v))
	}
	return b, ok
}

func asStringList(v any, loc Loc, ps *Problems) ([]string, bool) {
	if v == nil {
		return nil, true
	}
	list, ok := asList(v, loc, ps)
	if !ok {
		return nil, false
	}
	// Positions are kept: a bad item is reported and left as "", so that
	// later problems name the index as written.
	out := make([]string, len(list))
	good := true
	for i, item := range list {
		s, ok := item.(string)
		if !ok || s == "" {
			ps.Add(loc.Index(i), "expected a non-empty string, got %s", typeName(item))
			good = false
			continue
		}
		out[i] = s
	}
	return out, good
}

func stringOrList(v any, loc Loc, ps *Problems) ([]string, bool) {
	if s, ok := v.(string); ok {
		if s == "" {
			ps.Add(loc, "must not be empty")
			return nil, false
		}
		return []string{s}, true
	}
	if _, ok := v.([]any); !ok {
		ps.Add(loc, "expected a string or a list of strings, got %s", typeName(v))
		return nil, false
	}
	return asStringList(v, loc, ps)
}

func requiredStringOrList(obj map[string]any, key string, loc Loc, ps *Problems) ([]string, bool) {
	v, ok := obj[key]
	if !ok {
		ps.Add(loc, "%s is required", key)
		return nil, false
	}
	list, ok := stringOrList(v, loc.Key(key), ps)
	if ok && len(list) == 0 {
		ps.Add(loc.Key(key), "must not be empty")
		return nil, false
	}
	return list, ok
}
