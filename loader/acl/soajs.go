package acl

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// This file parses the SOAJS side of the model: products and their
// packages, applications and their keys, and ACLs (README "Bundles").

func parseProducts(raw any, loc Loc, doc *Document, ps *Problems) {
	products, ok := asObject(raw, loc, ps)
	if !ok {
		return
	}
	for _, code := range slices.Sorted(maps.Keys(products)) {
		ploc := loc.Key(code)
		obj, ok := asObject(products[code], ploc, ps)
		if !ok {
			continue
		}
		warnUnknown(obj, ploc, ps, "name", "description", "packages")
		prod := &Product{Code: code, Packages: map[string]*Package{}}
		eachEntry(obj, "packages", ploc, ps, func(pkgCode string, v any, l Loc) {
			pobj, ok := asObject(v, l, ps)
			if !ok {
				return
			}
			warnUnknown(pobj, l, ps, "name", "description", "acl")
			if other, dup := doc.Catalog.Packages[pkgCode]; dup {
				ps.Add(l, "package code %q is also a package of product %q; package codes must be unique", pkgCode, other.Product)
				return
			}
			pkg := &Package{Code: pkgCode, Product: code, ACL: ACL{}}
			if v, ok := pobj["acl"]; ok {
				pkg.ACL = parseACL(v, l.Key("acl"), ps, doc)
			}
			prod.Packages[pkgCode] = pkg
			doc.Catalog.Packages[pkgCode] = pkg
		})
		doc.Catalog.Products[code] = prod
	}
}

func parseApplication(name string, raw any, loc Loc, ps *Problems, doc *Document) *Application {
	obj, ok := asObject(raw, loc, ps)
	if !ok {
		return nil
	}
	warnUnknown(obj, loc, ps, "package", "acl", "keys", "name", "description")
	app := &Application{Name: name}
	app.Package, _ = asString(obj["package"], loc.Key("package"), ps, true)
	if app.Package != "" {
		doc.Refs = append(doc.Refs, Ref{Kind: RefPackage, Name: app.Package, Loc: loc.Key("package")})
	}
	if v, ok := obj["acl"]; ok {
		app.ACL = parseACL(v, loc.Key("acl"), ps, doc)
	}
	if v, ok := obj["keys"]; ok {
		kloc := loc.Key("keys")
		list, _ := asList(v, kloc, ps)
		for i, item := range list {
			iloc := kloc.Index(i)
			kobj, ok := asObject(item, iloc, ps)
			if !ok {
				continue
			}
			warnUnknown(kobj, iloc, ps, "key", "expires", "config", "name", "description")
			k := &Key{Config: kobj["config"]}
			k.Key, _ = asString(kobj["key"], iloc.Key("key"), ps, true)
			if v, ok := kobj["expires"]; ok {
				s, _ := asString(v, iloc.Key("expires"), ps, true)
				if s != "" {
					t, err := time.Parse(time.RFC3339, s)
					if err != nil {
						ps.Add(iloc.Key("expires"), "expected an RFC 3339 time such as 2027-01-01T00:00:00Z, got %q", s)
					}
					k.Expires = t
				}
			}
			app.Keys = append(app.Keys, k)
		}
	}
	return app
}

// parseMemberACL reads a member's acl: {packages: {PKG: ACL}, keys: {KEY: ACL}}.
func parseMemberACL(m *Member, raw any, loc Loc, ps *Problems, doc *Document) {
	obj, ok := asObject(raw, loc, ps)
	if !ok {
		return
	}
	warnUnknown(obj, loc, ps, "packages", "keys")
	eachEntry(obj, "packages", loc, ps, func(pkg string, v any, l Loc) {
		if m.PackageACLs == nil {
			m.PackageACLs = map[string]ACL{}
		}
		m.PackageACLs[pkg] = parseACL(v, l, ps, doc)
		doc.Refs = append(doc.Refs, Ref{Kind: RefPackage, Name: pkg, Loc: l})
	})
	eachEntry(obj, "keys", loc, ps, func(key string, v any, l Loc) {
		if m.KeyACLs == nil {
			m.KeyACLs = map[string]ACL{}
		}
		m.KeyACLs[key] = parseACL(v, l, ps, doc)
	})
}

var aclMethods = map[string]bool{"get": true, "head": true, "post": true, "put": true, "patch": true, "delete": true, "options": true}

// parseACL reads a service → entry map.
func parseACL(raw any, loc Loc, ps *Problems, doc *Document) ACL {
	obj, ok := asObject(raw, loc, ps)
	if !ok {
		return nil
	}
	out := ACL{}
	for _, svc := range slices.Sorted(maps.Keys(obj)) {
		sloc := loc.Key(svc)
		sobj, ok := asObject(obj[svc], sloc, ps)
		if !ok {
			continue
		}
		doc.Refs = append(doc.Refs, Ref{Kind: RefService, Name: svc, Loc: sloc})
		entry := &ServiceACL{}
		for _, k := range slices.Sorted(maps.Keys(sobj)) {
			kloc := sloc.Key(k)
			switch {
			case k == "access":
				entry.Access = parseAccess(sobj[k], kloc, ps)
			case k == "apisPermission":
				entry.Restricted = parseRestricted(sobj[k], kloc, ps)
			case k == "apis":
				entry.APIs = parseAPIs(sobj[k], kloc, ps)
			case aclMethods[k]:
				mobj, ok := asObject(sobj[k], kloc, ps)
				if !ok {
					continue
				}
				warnUnknown(mobj, kloc, ps, "apis", "apisPermission")
				section := &MethodACL{}
				if v, ok := mobj["apis"]; ok {
					section.APIs = parseAPIs(v, kloc.Key("apis"), ps)
				}
				if v, ok := mobj["apisPermission"]; ok {
					r := parseRestricted(v, kloc.Key("apisPermission"), ps)
					section.Restricted = &r
				}
				if entry.Methods == nil {
					entry.Methods = map[string]*MethodACL{}
				}
				entry.Methods[k] = section
			default:
				ps.Warn(kloc, "unknown ACL field; expected access, apisPermission, apis or a lower-case method section")
			}
		}
		out[svc] = entry
	}
	return out
}

func parseAccess(v any, loc Loc, ps *Problems) Access {
	switch x := v.(type) {
	case bool:
		return Access{Required: x}
	case []any:
		groups, _ := asStringList(x, loc, ps)
		return Access{Required: true, Groups: groups}
	}
	ps.Add(loc, "access must be true, false or a list of groups, got %s", typeName(v))
	return Access{}
}

func parseRestricted(v any, loc Loc, ps *Problems) bool {
	s, _ := asString(v, loc, ps, true)
	switch s {
	case "restricted":
		return true
	case "", "all", "open":
		return false
	}
	ps.Add(loc, "apisPermission must be \"restricted\", got %q", s)
	return false
}

func parseAPIs(v any, loc Loc, ps *Problems) map[string]*APIACL {
	obj, ok := asObject(v, loc, ps)
	if !ok {
		return nil
	}
	out := make(map[string]*APIACL, len(obj))
	for _, tmpl := range slices.Sorted(maps.Keys(obj)) {
		aloc := loc.Key(tmpl)
		if err := ValidatePathTemplate(tmpl); err != nil {
			ps.Add(aloc, "%v", err)
			continue
		}
		api := &APIACL{Template: tmpl}
		if obj[tmpl] != nil {
			aobj, ok := asObject(obj[tmpl], aloc, ps)
			if !ok {
				continue
			}
			warnUnknown(aobj, aloc, ps, "access")
			if av, ok := aobj["access"]; ok {
				api.Access = parseAccess(av, aloc.Key("access"), ps)
			}
		}
		key := APIKey(tmpl)
		if other, dup := out[key]; dup {
			ps.Add(aloc, "API %q is the same route as %q", tmpl, other.Template)
			continue
		}
		out[key] = api
	}
	return out
}

// APIKey is the form under which a route template is looked up in an ACL:
// no trailing slash, and every parameter segment ({id} or :id) written {}.
func APIKey(template string) string {
	p := NormalizePath(template)
	if !strings.ContainsAny(p, "{:") {
		return p
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") || (strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}")) {
			segs[i] = "{}"
		}
	}
	return strings.Join(segs, "/")
}

// checkApplications reports member key overrides that name no key of the
// tenant.
func (t *Tenant) checkApplications(loc Loc, ps *Problems) {
	keys := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(t.Applications)) {
		for i, k := range t.Applications[name].Keys {
			if k.Key == "" {
				continue
			}
			if keys[k.Key] {
				ps.Add(loc.Key("applications").Key(name).Key("keys").Index(i).Key("key"), "key %s is used twice", shortKey(k.Key))
			}
			keys[k.Key] = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(t.Members)) {
		for _, key := range slices.Sorted(maps.Keys(t.Members[name].KeyACLs)) {
			if !keys[key] {
				ps.Add(loc.Key("members").Key(name).Key("acl").Key("keys").Key(shortKey(key)), "no application of tenant %q has the key %s", t.Code, shortKey(key))
			}
		}
	}
}

// shortKey abbreviates a long key for messages.
func shortKey(k string) string {
	if len(k) > 16 {
		return k[:12] + "…"
	}
	return k
}

// ShortKey abbreviates a long key for messages and logs.
func ShortKey(k string) string { return shortKey(k) }
