package acl

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Delegation is what a tenant lets an application do on behalf of its
// members (Fineract CN): the operations the application asked for on one
// permittable group, and the members who enabled it.
//
//	delegations:
//	  rhythm:
//	    portfolio__v1__khepri: {operations: [READ, CHANGE], enabled_by: [imhotep]}
type Delegation struct {
	Application string
	Group       string
	// Operations are READ, CHANGE and DELETE, sorted, each once.
	Operations []string
	// EnabledBy are the members who consented, as written.
	EnabledBy []string
}

// The operations of a delegation.
const (
	OpRead   = "READ"
	OpChange = "CHANGE"
	OpDelete = "DELETE"
)

var operations = map[string]bool{OpRead: true, OpChange: true, OpDelete: true}

// OperationFor is the operation that covers an HTTP method (upper case):
// GET, HEAD and OPTIONS are READ; POST, PUT and PATCH are CHANGE; DELETE is
// DELETE. Any other method has none.
func OperationFor(method string) string {
	switch method {
	case "GET", "HEAD", "OPTIONS":
		return OpRead
	case "POST", "PUT", "PATCH":
		return OpChange
	case "DELETE":
		return OpDelete
	}
	return ""
}

// NormalizeOperations checks operation names (any case) and returns them
// upper-cased, sorted and each once.
func NormalizeOperations(ops []string) ([]string, error) {
	if len(ops) == 0 {
		return nil, fmt.Errorf("must name at least one of READ, CHANGE, DELETE")
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(ops))
	for i, op := range ops {
		up := strings.ToUpper(op)
		if !operations[up] {
			return nil, &IndexError{Index: i, Err: fmt.Errorf("unknown operation %q; operations are READ, CHANGE and DELETE", op)}
		}
		if !seen[up] {
			seen[up] = true
			out = append(out, up)
		}
	}
	sort.Strings(out)
	return out, nil
}

// IndexError is a problem with one element of a list.
type IndexError struct {
	Index int
	Err   error
}

func (e *IndexError) Error() string { return fmt.Sprintf("[%d]: %v", e.Index, e.Err) }
func (e *IndexError) Unwrap() error { return e.Err }

// MaxNameBytes bounds a name given at run time.
const MaxNameBytes = 128

// ValidName reports whether s can name a tenant, application, group or
// member in a run-time request: 1 to MaxNameBytes bytes of valid UTF-8
// (anything else would not survive the JSON of the state files unchanged),
// no control character (C0, DEL or C1: NUL, newline, ...) and no "/".
func ValidName(s string) bool {
	if s == "" || len(s) > MaxNameBytes || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '/' {
			return false
		}
	}
	return true
}

// ValidServiceName reports whether s can name a service, in a bundle's
// catalog or registered at run time: a ValidName without space or "*".
func ValidServiceName(s string) bool {
	return ValidName(s) && !strings.ContainsAny(s, " *")
}

// parseDelegations parses one application's entry: permittable group →
// {operations, enabled_by}.
func parseDelegations(app string, raw any, loc Loc, ps *Problems, doc *Document) map[string]*Delegation {
	obj, ok := asObject(raw, loc, ps)
	if !ok {
		return nil
	}
	out := map[string]*Delegation{}
	for _, group := range slices.Sorted(maps.Keys(obj)) {
		gl := loc.Key(group)
		if group == "" {
			ps.Add(loc, "a permittable group has an empty name")
			continue
		}
		o, ok := asObject(obj[group], gl, ps)
		if !ok {
			continue
		}
		warnUnknown(o, gl, ps, "operations", "enabled_by")
		d := &Delegation{Application: app, Group: group}
		ol := gl.Key("operations")
		if v, ok := o["operations"]; !ok {
			ps.Add(gl, "operations is required (READ, CHANGE, DELETE)")
		} else if list, ok := asStringList(v, ol, ps); ok {
			ops, err := NormalizeOperations(list)
			var ie *IndexError
			switch {
			case err == nil:
				d.Operations = ops
			case errors.As(err, &ie):
				ps.Add(ol.Index(ie.Index), "%v", ie.Err)
			default:
				ps.Add(ol, "%v", err)
			}
		}
		d.EnabledBy = refList(o, "enabled_by", gl, ps)
		doc.Refs = append(doc.Refs, Ref{Kind: RefPermittableGroup, Name: group, Loc: gl})
		out[group] = d
	}
	return out
}

// checkDelegations reports every member an enabled_by list names that the
// tenant does not have.
func (t *Tenant) checkDelegations(loc Loc, ps *Problems) {
	for _, app := range slices.Sorted(maps.Keys(t.Delegations)) {
		for _, group := range slices.Sorted(maps.Keys(t.Delegations[app])) {
			d := t.Delegations[app][group]
			el := loc.Key("delegations").Key(app).Key(group).Key("enabled_by")
			for i, m := range d.EnabledBy {
				if m != "" && t.Members[m] == nil {
					ps.Add(el.Index(i), "unknown member %q", m)
				}
			}
		}
	}
}

// ServiceDocument turns a service back into its catalog document (routes
// and permittable groups), as GET /v1/services shows it.
func ServiceDocument(s *Service) map[string]any {
	routes := make([]any, 0, len(s.Routes))
	for _, r := range s.Routes {
		switch r.Kind {
		case RouteCollection:
			routes = append(routes, map[string]any{"path": r.Path, "viewset": r.ViewSet})
		default:
			m := map[string]any{"method": r.Method, "path": r.Path}
			if name, ok := strings.CutPrefix(r.Action, "finmars:"+r.ViewSet+":"); ok && r.ViewSet != "" {
				m["viewset"] = r.ViewSet
				m["action"] = name
			} else {
				m["action"] = r.Action
			}
			routes = append(routes, m)
		}
	}
	groups := make(map[string]any, len(s.PermittableGroups))
	for g, eps := range s.PermittableGroups {
		list := make([]any, len(eps))
		for i, e := range eps {
			list[i] = map[string]any{"method": e.Method, "path": e.Path}
		}
		groups[g] = list
	}
	doc := map[string]any{"routes": routes}
	if len(groups) > 0 {
		doc["permittable_groups"] = groups
	}
	return doc
}
