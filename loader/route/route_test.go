package route_test

import (
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/loader/route"
)

func collection(path, viewset string) acl.Route {
	return acl.Route{Kind: acl.RouteCollection, Path: path, ViewSet: viewset}
}

func custom(method, path, viewset, action string) acl.Route {
	return acl.Route{Kind: acl.RouteCustom, Method: method, Path: path, ViewSet: viewset, Action: action}
}

// The demo catalog's services, with the collection of instruments written
// without a trailing slash.
var (
	portfolios = &acl.Service{Name: "portfolios", Routes: []acl.Route{
		collection("/api/v1/portfolios/portfolio/", "Portfolio"),
		collection("/api/v1/portfolios/portfolio-type/", "PortfolioType"),
		custom("GET", "/api/v1/portfolios/portfolio/light/", "Portfolio", "finmars:Portfolio:list_light"),
	}}
	instruments = &acl.Service{Name: "instruments", Routes: []acl.Route{
		collection("/api/v1/instruments/instrument", "Instrument"),
		custom("POST", "/api/v1/instruments/instrument/:id/recalculate/", "Instrument", "finmars:Instrument:recalculate"),
	}}
	example03 = &acl.Service{Name: "example03", Routes: []acl.Route{
		custom("GET", "/buildName", "", "example03:buildName:get"),
	}}
	example04 = &acl.Service{Name: "example04", Routes: []acl.Route{
		custom("GET", "/users/{id}", "", "example04:users:get"),
		custom("POST", "/users", "", "example04:users:post"),
	}}
)

type want struct {
	service, template, method, action string
}

func TestMatch(t *testing.T) {
	table := route.NewTable(portfolios, instruments, example03, example04)
	const (
		pcol = "/api/v1/portfolios/portfolio/"
		pdet = "/api/v1/portfolios/portfolio/{id}/"
		icol = "/api/v1/instruments/instrument"
		idet = "/api/v1/instruments/instrument/{id}"
	)
	tests := []struct {
		method, path string
		want         *want // nil: no route
	}{
		// A collection: list and create on its path ...
		{"GET", "/api/v1/portfolios/portfolio/", &want{"portfolios", pcol, "GET", "finmars:Portfolio:list"}},
		{"POST", "/api/v1/portfolios/portfolio/", &want{"portfolios", pcol, "POST", "finmars:Portfolio:create"}},
		{"PUT", "/api/v1/portfolios/portfolio/", nil},
		{"PATCH", "/api/v1/portfolios/portfolio/", nil},
		{"DELETE", "/api/v1/portfolios/portfolio/", nil},
		// ... and retrieve/update/partial_update/destroy on {id} below it.
		{"GET", "/api/v1/portfolios/portfolio/7/", &want{"portfolios", pdet, "GET", "finmars:Portfolio:retrieve"}},
		{"PUT", "/api/v1/portfolios/portfolio/7/", &want{"portfolios", pdet, "PUT", "finmars:Portfolio:update"}},
		{"PATCH", "/api/v1/portfolios/portfolio/7/", &want{"portfolios", pdet, "PATCH", "finmars:Portfolio:partial_update"}},
		{"DELETE", "/api/v1/portfolios/portfolio/7/", &want{"portfolios", pdet, "DELETE", "finmars:Portfolio:destroy"}},
		{"POST", "/api/v1/portfolios/portfolio/7/", nil},
		{"GET", "/api/v1/portfolios/portfolio/bonds-portfolio/", &want{"portfolios", pdet, "GET", "finmars:Portfolio:retrieve"}},
		{"GET", "/api/v1/portfolios/portfolio-type/3/", &want{"portfolios", "/api/v1/portfolios/portfolio-type/{id}/", "GET", "finmars:PortfolioType:retrieve"}},
		// Trailing slash optional in the request.
		{"GET", "/api/v1/portfolios/portfolio", &want{"portfolios", pcol, "GET", "finmars:Portfolio:list"}},
		{"DELETE", "/api/v1/portfolios/portfolio/7", &want{"portfolios", pdet, "DELETE", "finmars:Portfolio:destroy"}},
		// ... and in the template.
		{"GET", "/api/v1/instruments/instrument", &want{"instruments", icol, "GET", "finmars:Instrument:list"}},
		{"GET", "/api/v1/instruments/instrument/", &want{"instruments", icol, "GET", "finmars:Instrument:list"}},
		{"PATCH", "/api/v1/instruments/instrument/5", &want{"instruments", idet, "PATCH", "finmars:Instrument:partial_update"}},
		{"PATCH", "/api/v1/instruments/instrument/5/", &want{"instruments", idet, "PATCH", "finmars:Instrument:partial_update"}},
		{"GET", "/buildName/", &want{"example03", "/buildName", "GET", "example03:buildName:get"}},
		// A custom route beats {id}; other methods on that path still reach {id}.
		{"GET", "/api/v1/portfolios/portfolio/light/", &want{"portfolios", "/api/v1/portfolios/portfolio/light/", "GET", "finmars:Portfolio:list_light"}},
		{"GET", "/api/v1/portfolios/portfolio/light", &want{"portfolios", "/api/v1/portfolios/portfolio/light/", "GET", "finmars:Portfolio:list_light"}},
		{"PUT", "/api/v1/portfolios/portfolio/light/", &want{"portfolios", pdet, "PUT", "finmars:Portfolio:update"}},
		{"GET", "/api/v1/portfolios/portfolio/lights/", &want{"portfolios", pdet, "GET", "finmars:Portfolio:retrieve"}},
		// :id and {id} templates.
		{"POST", "/api/v1/instruments/instrument/5/recalculate/", &want{"instruments", "/api/v1/instruments/instrument/:id/recalculate/", "POST", "finmars:Instrument:recalculate"}},
		{"POST", "/api/v1/instruments/instrument/5/recalculate", &want{"instruments", "/api/v1/instruments/instrument/:id/recalculate/", "POST", "finmars:Instrument:recalculate"}},
		{"GET", "/api/v1/instruments/instrument/5/recalculate/", nil},
		{"GET", "/users/42", &want{"example04", "/users/{id}", "GET", "example04:users:get"}},
		{"GET", "/users/42/", &want{"example04", "/users/{id}", "GET", "example04:users:get"}},
		{"POST", "/users", &want{"example04", "/users", "POST", "example04:users:post"}},
		{"POST", "/users/", &want{"example04", "/users", "POST", "example04:users:post"}},
		{"GET", "/users", nil},
		// HEAD matches GET routes.
		{"HEAD", "/api/v1/portfolios/portfolio/", &want{"portfolios", pcol, "GET", "finmars:Portfolio:list"}},
		{"HEAD", "/api/v1/portfolios/portfolio/7", &want{"portfolios", pdet, "GET", "finmars:Portfolio:retrieve"}},
		{"HEAD", "/api/v1/portfolios/portfolio/light/", &want{"portfolios", "/api/v1/portfolios/portfolio/light/", "GET", "finmars:Portfolio:list_light"}},
		{"HEAD", "/buildName", &want{"example03", "/buildName", "GET", "example03:buildName:get"}},
		{"HEAD", "/users", nil},
		// Unknown methods and paths match nothing.
		{"OPTIONS", "/api/v1/portfolios/portfolio/", nil},
		{"GET", "/", nil},
		{"GET", "/api/v1/portfolios/", nil},
		{"GET", "/api/v1/portfolios/portfolio/7/extra/", nil},
		{"GET", "/api/v1/portfolios/portfolios/", nil},
		{"GET", "/api/v1/portfolios/portfolio/light/7/", nil},
		{"GET", "/nope", nil},
		{"GET", "/buildName/extra", nil},
		{"GET", "/Users/42", nil},
		{"GET", "/BuildName", nil},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			m, ok := table.Match(tt.method, tt.path)
			if tt.want == nil {
				if ok || m != nil {
					t.Fatalf("Match = %+v, %v; want no route", m, ok)
				}
				return
			}
			if !ok || m == nil {
				t.Fatalf("Match = %v, %v; want %+v", m, ok, *tt.want)
			}
			got := want{m.Service, m.Template, m.Method, m.Action}
			if got != *tt.want {
				t.Errorf("Match = %+v\nwant    %+v", got, *tt.want)
			}
		})
	}
}

func TestMatchViewSet(t *testing.T) {
	table := route.NewTable(portfolios, example03)
	if m, ok := table.Match("GET", "/api/v1/portfolios/portfolio/7/"); !ok || m.ViewSet != "Portfolio" {
		t.Errorf("ViewSet of a collection route = %+v", m)
	}
	if m, ok := table.Match("GET", "/buildName"); !ok || m.ViewSet != "" {
		t.Errorf("ViewSet of a plain API = %+v", m)
	}
}

func TestServiceScoping(t *testing.T) {
	only := map[string]*route.Table{
		"portfolios": route.NewTable(portfolios),
		"example04":  route.NewTable(example04),
	}
	all := route.NewTable(example04, portfolios, instruments) // any order
	tests := []struct {
		table        string
		method, path string
		service      string // "" for no match
	}{
		{"portfolios", "GET", "/api/v1/portfolios/portfolio/", "portfolios"},
		{"portfolios", "GET", "/users/42", ""},
		{"portfolios", "GET", "/api/v1/instruments/instrument/", ""},
		{"example04", "GET", "/users/42", "example04"},
		{"example04", "GET", "/api/v1/portfolios/portfolio/", ""},
		{"all", "GET", "/api/v1/portfolios/portfolio/", "portfolios"},
		{"all", "GET", "/users/42", "example04"},
		{"all", "POST", "/api/v1/instruments/instrument/1/recalculate", "instruments"},
		{"all", "GET", "/buildName", ""},
	}
	for _, tt := range tests {
		t.Run(tt.table+" "+tt.method+" "+tt.path, func(t *testing.T) {
			table := all
			if tt.table != "all" {
				table = only[tt.table]
			}
			m, ok := table.Match(tt.method, tt.path)
			switch {
			case tt.service == "" && ok:
				t.Errorf("Match = %+v, want no route", m)
			case tt.service != "" && !ok:
				t.Errorf("no route, want service %s", tt.service)
			case tt.service != "" && m.Service != tt.service:
				t.Errorf("service = %s, want %s", m.Service, tt.service)
			}
		})
	}
}

func TestEmptyAndNilTables(t *testing.T) {
	var nilTable *route.Table
	if m, ok := nilTable.Match("GET", "/"); ok || m != nil {
		t.Errorf("nil table Match = %+v, %v", m, ok)
	}
	if m, ok := nilTable.ByAction("finmars:portfolio:list"); ok || m != nil {
		t.Errorf("nil table ByAction = %+v, %v", m, ok)
	}
	empty := route.NewTable()
	if m, ok := empty.Match("GET", "/api/v1/portfolios/portfolio/"); ok {
		t.Errorf("empty table Match = %+v", m)
	}
	if empty.IsGetAction("finmars:portfolio:list") {
		t.Error("empty table knows a GET action")
	}
}

// TestFirstRoutePlacedWins covers the documented precedence: custom routes
// before generated ones, then services in name order.
func TestFirstRoutePlacedWins(t *testing.T) {
	override := &acl.Service{Name: "portfolios", Routes: []acl.Route{
		collection("/api/v1/portfolios/portfolio/", "Portfolio"),
		custom("GET", "/api/v1/portfolios/portfolio/{pk}/", "Portfolio", "finmars:Portfolio:retrieve_detailed"),
	}}
	table := route.NewTable(override)
	if m, _ := table.Match("GET", "/api/v1/portfolios/portfolio/7/"); m == nil || m.Action != "finmars:Portfolio:retrieve_detailed" {
		t.Errorf("an explicit route on a generated path: GET gave %+v, want retrieve_detailed", m)
	}
	if m, _ := table.Match("PUT", "/api/v1/portfolios/portfolio/7/"); m == nil || m.Action != "finmars:Portfolio:update" {
		t.Errorf("an explicit GET must leave the generated PUT: got %+v", m)
	}

	alpha := &acl.Service{Name: "alpha", Routes: []acl.Route{custom("GET", "/shared", "", "alpha:shared:get")}}
	beta := &acl.Service{Name: "beta", Routes: []acl.Route{custom("GET", "/shared", "", "beta:shared:get")}}
	for _, table := range []*route.Table{route.NewTable(alpha, beta), route.NewTable(beta, alpha)} {
		if m, _ := table.Match("GET", "/shared"); m == nil || m.Service != "alpha" {
			t.Errorf("two services on one route: got %+v, want alpha's (name order)", m)
		}
	}
}

func TestIsGetAction(t *testing.T) {
	table := route.NewTable(portfolios, instruments, example03, example04)
	tests := []struct {
		action string
		want   bool
	}{
		{"finmars:portfolio:list", true},
		{"finmars:portfolio:retrieve", true},
		{"finmars:portfolio:list_light", true},
		{"finmars:portfoliotype:list", true},
		{"finmars:instrument:retrieve", true},
		{"example03:buildname:get", true},
		{"example04:users:get", true},
		{"finmars:portfolio:create", false},
		{"finmars:portfolio:update", false},
		{"finmars:portfolio:partial_update", false},
		{"finmars:portfolio:destroy", false},
		{"finmars:instrument:recalculate", false},
		{"example04:users:post", false},
		{"finmars:transaction:list", false},
	}
	for _, tt := range tests {
		if got := table.IsGetAction(tt.action); got != tt.want {
			t.Errorf("IsGetAction(%q) = %v, want %v", tt.action, got, tt.want)
		}
	}
}

func TestByAction(t *testing.T) {
	table := route.NewTable(portfolios, instruments, example03, example04)
	tests := []struct {
		action string
		want   *want
	}{
		{"finmars:portfolio:list", &want{"portfolios", "/api/v1/portfolios/portfolio/", "GET", "finmars:Portfolio:list"}},
		{"finmars:portfolio:destroy", &want{"portfolios", "/api/v1/portfolios/portfolio/{id}/", "DELETE", "finmars:Portfolio:destroy"}},
		{"finmars:instrument:recalculate", &want{"instruments", "/api/v1/instruments/instrument/:id/recalculate/", "POST", "finmars:Instrument:recalculate"}},
		{"example04:users:get", &want{"example04", "/users/{id}", "GET", "example04:users:get"}},
		{"finmars:transaction:list", nil},
	}
	for _, tt := range tests {
		m, ok := table.ByAction(tt.action)
		if tt.want == nil {
			if ok {
				t.Errorf("ByAction(%q) = %+v, want none", tt.action, m)
			}
			continue
		}
		if !ok {
			t.Errorf("ByAction(%q): none, want %+v", tt.action, *tt.want)
			continue
		}
		if got := (want{m.Service, m.Template, m.Method, m.Action}); got != *tt.want {
			t.Errorf("ByAction(%q) = %+v, want %+v", tt.action, got, *tt.want)
		}
	}
}

func TestDetailTemplate(t *testing.T) {
	for in, want := range map[string]string{
		"/api/v1/portfolios/portfolio/":  "/api/v1/portfolios/portfolio/{id}/",
		"/api/v1/instruments/instrument": "/api/v1/instruments/instrument/{id}",
		"/":                              "/{id}/",
	} {
		if got := route.DetailTemplate(in); got != want {
			t.Errorf("DetailTemplate(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestMatchAllocatesNothing holds the package's promise that Match
// allocates nothing.
func TestMatchAllocatesNothing(t *testing.T) {
	table := route.NewTable(portfolios, instruments, example03, example04)
	allocs := testing.AllocsPerRun(100, func() {
		table.Match("GET", "/api/v1/portfolios/portfolio/7/")
		table.Match("HEAD", "/api/v1/instruments/instrument/5/")
		table.Match("GET", "/nope/nothing")
	})
	if allocs != 0 {
		t.Errorf("Match allocates %.1f times per run", allocs)
	}
}

// ActionTerms hands out a route's own terms for its action spelled as the
// route spells it, and builds them for any other spelling or action: the
// values are the action and its parts either way.
func TestActionTerms(t *testing.T) {
	table := route.NewTable(portfolios)
	m, ok := table.ByAction("finmars:portfolio:list_light")
	if !ok {
		t.Fatal("no route for finmars:portfolio:list_light")
	}
	cases := []struct {
		match                  *route.Match
		action                 string
		shared                 bool
		wantName, wantResource string
	}{
		{m, "finmars:Portfolio:list_light", true, "list_light", "finmars:Portfolio"},
		{m, "FINMARS:portfolio:LIST_LIGHT", false, "LIST_LIGHT", "FINMARS:portfolio"},
		{nil, "finmars:Portfolio:list_light", false, "list_light", "finmars:Portfolio"},
		{m, "finmars:Instrument:list", false, "list", "finmars:Instrument"},
		{nil, "report", false, "report", "report"},
	}
	for _, tc := range cases {
		str, parts := table.ActionTerms(tc.match, tc.action)
		if want := ast.StringTerm(tc.action); !str.Equal(want) {
			t.Errorf("ActionTerms(%v, %q) string = %v", tc.match != nil, tc.action, str)
		}
		want := ast.ObjectTerm(ast.Item(ast.StringTerm("name"), ast.StringTerm(tc.wantName)),
			ast.Item(ast.StringTerm("resource"), ast.StringTerm(tc.wantResource)))
		if !parts.Equal(want) {
			t.Errorf("ActionTerms(%v, %q) parts = %v, want %v", tc.match != nil, tc.action, parts, want)
		}
		again, againParts := table.ActionTerms(tc.match, tc.action)
		if shared := again == str && againParts == parts; shared != tc.shared {
			t.Errorf("ActionTerms(%v, %q) hands out the same terms twice: %v, want %v", tc.match != nil, tc.action, shared, tc.shared)
		}
	}
	if facts := table.Facts(m).Value.(ast.Object).Get(ast.StringTerm("action")); facts != nil {
		if str, _ := table.ActionTerms(m, m.Action); str != facts {
			t.Error("the route's facts and ActionTerms hold two terms of its action")
		}
	}
}

// Looking up a route's action in any case allocates nothing.
func TestFoldActionAllocatesNothing(t *testing.T) {
	table := route.NewTable(portfolios)
	if lower, m, ok := table.FoldAction("finmars:Portfolio:LIST_light"); !ok || lower != "finmars:portfolio:list_light" || m.Action != "finmars:Portfolio:list_light" {
		t.Fatalf("FoldAction = %q, %+v, %v", lower, m, ok)
	}
	if allocs := testing.AllocsPerRun(100, func() { table.FoldAction("finmars:Portfolio:LIST_light") }); allocs != 0 {
		t.Errorf("FoldAction allocates %.0f times, want 0", allocs)
	}
}
