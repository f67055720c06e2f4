package acl

import (
	"encoding/binary"
	"maps"
	"slices"
	"strings"
)

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
	match := r.Matcher()
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
