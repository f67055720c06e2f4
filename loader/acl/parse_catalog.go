package acl

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

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
