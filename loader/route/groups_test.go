package route_test

import (
	"reflect"
	"testing"

	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/loader/route"
)

func TestRouteGroups(t *testing.T) {
	portfolio := &acl.Service{Name: "portfolio", Routes: []acl.Route{
		custom("POST", "/portfolio/v1/khepri/beats", "", "portfolio:khepri:beat"),
		custom("GET", "/portfolio/v1/products/{product}/cases/{case}", "", "portfolio:cases:get"),
		collection("/portfolio/v1/customers/", "Customer"),
	}, PermittableGroups: map[string][]acl.Endpoint{
		"portfolio__v1__khepri": {{Method: "POST", Path: "/portfolio/v1/khepri/beats/"}},
		// Parameters may be named differently and written :name.
		"portfolio__v1__cases": {{Method: "GET", Path: "/portfolio/v1/products/:p/cases/:c"}},
		"portfolio__v1__read":  {{Method: "GET", Path: "/portfolio/v1/products/{x}/cases/{y}/"}, {Method: "GET", Path: "/portfolio/v1/customers/{id}/"}},
		// A group may name endpoints no route has.
		"portfolio__v1__ghost": {{Method: "DELETE", Path: "/portfolio/v1/ghost"}},
	}}
	other := &acl.Service{Name: "other", Routes: []acl.Route{custom("GET", "/other", "", "other:x:get")}}
	table := route.NewTable(portfolio, other)
	tests := []struct {
		method, path string
		want         []string
	}{
		{"POST", "/portfolio/v1/khepri/beats", []string{"portfolio__v1__khepri"}},
		{"POST", "/portfolio/v1/khepri/beats/", []string{"portfolio__v1__khepri"}},
		{"GET", "/portfolio/v1/products/7/cases/9", []string{"portfolio__v1__cases", "portfolio__v1__read"}},
		{"HEAD", "/portfolio/v1/products/7/cases/9", []string{"portfolio__v1__cases", "portfolio__v1__read"}},
		{"GET", "/portfolio/v1/customers/3/", []string{"portfolio__v1__read"}},
		{"GET", "/portfolio/v1/customers/", nil},     // the collection's list is not in a group
		{"DELETE", "/portfolio/v1/customers/3", nil}, // another method of the same path
		{"GET", "/other", nil},
	}
	for _, tt := range tests {
		m, ok := table.Match(tt.method, tt.path)
		if !ok {
			t.Fatalf("%s %s matches no route", tt.method, tt.path)
		}
		if got := table.Groups(m); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Groups(%s %s) = %q, want %q", tt.method, tt.path, got, tt.want)
		}
	}
	if m, ok := table.ByAction("portfolio:khepri:beat"); !ok || !reflect.DeepEqual(table.Groups(m), []string{"portfolio__v1__khepri"}) {
		t.Errorf("an action-only request does not find the route's groups")
	}
	var nilTable *route.Table
	if nilTable.Groups(nil) != nil {
		t.Error("a nil table has groups")
	}
	// The per-service table knows the groups too.
	single := route.NewTable(portfolio)
	if m, _ := single.Match("POST", "/portfolio/v1/khepri/beats"); !reflect.DeepEqual(single.Groups(m), []string{"portfolio__v1__khepri"}) {
		t.Error("the service's own table lost the groups")
	}
}
