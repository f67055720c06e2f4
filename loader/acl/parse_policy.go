package acl

import (
	"strings"
)

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
		pat.Raw, pat.Glob, pat.IndexKey = doc.intern(pat.Raw), doc.intern(pat.Glob), doc.intern(pat.IndexKey)
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
		pat.Raw, pat.Pattern = doc.intern(pat.Raw), doc.intern(pat.Pattern)
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
			s.Principals = append(s.Principals, doc.intern(p))
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
			s.Conditions = append(s.Conditions, doc.intern(c))
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
