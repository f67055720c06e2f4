package route_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/loader/route"
)

// FuzzMatch builds route tables from arbitrary route lists and matches
// arbitrary requests against them. Run it with
//
//	go test ./loader/route/ -run '^$' -fuzz '^FuzzMatch$' -fuzztime 90s
//
// routes holds one route per line: a single field is a REST collection
// path, two or more are a method and a path template (a custom route). Lines
// go round-robin to services c, a and b, so that the table's service order
// differs from the order of the lines.
//
// Whatever the input, NewTable and Match never panic. For the routes the
// loader would accept (acl.ValidatePathTemplate, a known method):
//   - Match finds a route exactly when some route's template matches the
//     path (segment by segment, "{x}" or ":x" matching one non-empty
//     segment, a trailing slash optional) for the method (HEAD falling back
//     to GET);
//   - the route found is that one, and of several it is the one whose first
//     parameter comes last (literal segments win), and of routes with the
//     same shape the first placed (custom routes before collections, then
//     service name order, then the order written);
//   - ByAction and IsGetAction agree with the route found.
func FuzzMatch(f *testing.F) {
	f.Add("/api/v1/portfolios/portfolio/\nGET /api/v1/portfolios/portfolio/light/", "GET", "/api/v1/portfolios/portfolio/light/")
	f.Add("/api/v1/portfolios/portfolio/\nGET /api/v1/portfolios/portfolio/light/", "GET", "/api/v1/portfolios/portfolio/7")
	f.Add("GET /users/{id}\nPOST /users\nGET /users/me", "HEAD", "/users/me/")
	f.Add("/a\nDELETE /a/:x\nGET /a/{id}/b", "DELETE", "/a/1")
	f.Add("GET /\nGET /{x}\nPOST /{x}/y/{z}", "POST", "/q/y/r?x=1")
	f.Add("GET /a//b\nGET /a/{x}/b", "GET", "/a//b")
	f.Add("get /x/{y\nPUT /p\n/q/", "PUT", "//p")
	f.Fuzz(func(t *testing.T, routes, method, path string) {
		services := map[string]*acl.Service{}
		valid := map[string]*acl.Service{}
		lines := strings.Split(routes, "\n")
		if len(lines) > 24 {
			lines = lines[:24]
		}
		for i, line := range lines {
			fields := strings.Fields(line)
			if len(fields) == 0 {
				continue
			}
			var r acl.Route
			if len(fields) == 1 {
				r = acl.Route{Kind: acl.RouteCollection, Path: fields[0], ViewSet: fmt.Sprintf("V%d", i)}
			} else {
				m := strings.ToUpper(fields[0])
				r = acl.Route{Kind: acl.RouteCustom, Method: m, Path: fields[1], Action: fmt.Sprintf("s:r%d:%s", i, strings.ToLower(m))}
			}
			name := []string{"c", "a", "b"}[i%3]
			add := func(set map[string]*acl.Service) {
				if set[name] == nil {
					set[name] = &acl.Service{Name: name}
				}
				set[name].Routes = append(set[name].Routes, r)
			}
			add(services)
			if acl.ValidatePathTemplate(r.Path) == nil && (r.Kind == acl.RouteCollection || acl.IsHTTPMethod(r.Method)) {
				add(valid)
			}
		}
		method = strings.ToUpper(method)

		// Anything goes for routes the loader would reject: no panic.
		all := route.NewTable(values(services)...)
		all.Match(method, path)
		all.ByAction(strings.ToLower(method))

		table := route.NewTable(values(valid)...)
		m, ok := table.Match(method, path)
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, "?#") || !acl.IsHTTPMethod(method) {
			return // Request.Validate never lets such a request through
		}
		want := expectedMatch(values(valid), method, path)
		if ok != (want != nil) {
			t.Fatalf("Match(%s %q) found = %v (%+v), want %v (%+v)", method, path, ok, m, want != nil, want)
		}
		if !ok {
			return
		}
		if *m != *want {
			t.Fatalf("Match(%s %q) = %+v, want %+v", method, path, *m, *want)
		}
		if !templateMatches(m.Template, path) {
			t.Fatalf("Match(%s %q) = template %q, which does not match the path", method, path, m.Template)
		}
		if m.Method != method && !(method == "HEAD" && m.Method == "GET") {
			t.Fatalf("Match(%s %q) = method %s", method, path, m.Method)
		}
		if !strings.HasSuffix(path, "/") {
			if m2, ok2 := table.Match(method, path+"/"); !ok2 || *m2 != *m {
				t.Fatalf("Match(%s %q/) = %+v, %v; the trailing slash must not matter", method, path, m2, ok2)
			}
		}
		action := strings.ToLower(m.Action)
		if byAction, found := table.ByAction(action); !found || strings.ToLower(byAction.Action) != action {
			t.Fatalf("ByAction(%q) = %+v, %v", action, byAction, found)
		}
		if m.Method == "GET" && !table.IsGetAction(action) {
			t.Fatalf("IsGetAction(%q) = false for a GET route", action)
		}
	})
}

func values(m map[string]*acl.Service) []*acl.Service {
	out := make([]*acl.Service, 0, len(m))
	for _, s := range m {
		out = append(out, s)
	}
	return out
}

func isParamSegment(seg string) bool {
	return seg != "" && (seg[0] == ':' || seg[0] == '{' && seg[len(seg)-1] == '}')
}

func templateSegments(template string) []string {
	p := strings.Trim(template, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func pathSegments(path string) []string {
	p := strings.TrimPrefix(path, "/")
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// templateMatches is README "Bundles" path matching: the segments agree one by
// one, a parameter matching any one non-empty segment.
func templateMatches(template, path string) bool {
	ts, ps := templateSegments(template), pathSegments(path)
	if len(ts) != len(ps) {
		return false
	}
	for i, seg := range ts {
		if isParamSegment(seg) {
			if ps[i] == "" {
				return false
			}
		} else if seg != ps[i] {
			return false
		}
	}
	return true
}

// shape is a template with its parameters blanked: routes of one shape sit
// on one node of the table.
func shape(template string) string {
	segs := templateSegments(template)
	out := make([]string, len(segs))
	for i, s := range segs {
		if isParamSegment(s) {
			out[i] = "\x00"
		} else {
			out[i] = s
		}
	}
	return strings.Join(out, "/")
}

// expectedMatch works out, from the routes alone, which route a request
// should resolve to.
func expectedMatch(services []*acl.Service, method, path string) *route.Match {
	sort.Slice(services, func(i, j int) bool { return services[i].Name < services[j].Name })
	type placed struct {
		m     route.Match
		shape string
	}
	var endpoints []placed
	taken := map[string]bool{}
	place := func(m route.Match) {
		key := shape(m.Template) + " " + m.Method
		if taken[key] {
			return // the first placed wins
		}
		taken[key] = true
		endpoints = append(endpoints, placed{m, shape(m.Template)})
	}
	for _, s := range services {
		for _, r := range s.Routes {
			if r.Kind == acl.RouteCustom {
				place(route.Match{Service: s.Name, Template: r.Path, Method: r.Method, ViewSet: r.ViewSet, Action: r.Action})
			}
		}
	}
	for _, s := range services {
		for _, r := range s.Routes {
			if r.Kind != acl.RouteCollection {
				continue
			}
			a := "finmars:" + r.ViewSet + ":"
			place(route.Match{Service: s.Name, Template: r.Path, Method: "GET", ViewSet: r.ViewSet, Action: a + "list"})
			place(route.Match{Service: s.Name, Template: r.Path, Method: "POST", ViewSet: r.ViewSet, Action: a + "create"})
			detail := r.Path + "/{id}"
			if strings.HasSuffix(r.Path, "/") {
				detail = r.Path + "{id}/"
			}
			for _, d := range [][2]string{{"GET", "retrieve"}, {"PUT", "update"}, {"PATCH", "partial_update"}, {"DELETE", "destroy"}} {
				place(route.Match{Service: s.Name, Template: detail, Method: d[0], ViewSet: r.ViewSet, Action: a + d[1]})
			}
		}
	}
	best := func(method string) *route.Match {
		var found *placed
		for i := range endpoints {
			e := &endpoints[i]
			if e.m.Method != method || !templateMatches(e.m.Template, path) {
				continue
			}
			if found == nil || moreLiteral(e.m.Template, found.m.Template) {
				found = e
			}
		}
		if found == nil {
			return nil
		}
		return &found.m
	}
	if m := best(method); m != nil {
		return m
	}
	if method == "HEAD" {
		return best("GET")
	}
	return nil
}

// moreLiteral reports whether template a wins over b for a path both match:
// at the first segment where one has a parameter and the other not, the
// literal wins.
func moreLiteral(a, b string) bool {
	as, bs := templateSegments(a), templateSegments(b)
	for i := range as {
		pa, pb := isParamSegment(as[i]), isParamSegment(bs[i])
		if pa != pb {
			return pb
		}
	}
	return false
}

// FuzzFoldAction holds FoldAction, which lower-cases ASCII on the stack,
// equal to strings.ToLower followed by ByAction for any action, ASCII or
// not, long or short. Run it with
//
//	go test ./loader/route/ -run '^$' -fuzz '^FuzzFoldAction$' -fuzztime 30s
func FuzzFoldAction(f *testing.F) {
	for _, seed := range []string{"finmars:Portfolio:list", "FINMARS:portfolio:LIST_LIGHT", "finmars:Instrument:recalculate",
		"", "report", "finmars:Portfolio:list ", "finmars:İnstrument:list", "finmars:\u212aey:list", strings.Repeat("A", 200)} {
		f.Add(seed)
	}
	table := route.NewTable(portfolios, instruments)
	f.Fuzz(func(t *testing.T, action string) {
		lower, m, ok := table.FoldAction(action)
		want := strings.ToLower(action)
		wantMatch, wantOK := table.ByAction(want)
		if lower != want || m != wantMatch || ok != wantOK {
			t.Fatalf("FoldAction(%q) = %q, %+v, %v; want %q, %+v, %v", action, lower, m, ok, want, wantMatch, wantOK)
		}
	})
}
