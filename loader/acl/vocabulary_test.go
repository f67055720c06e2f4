package acl_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/loader/acl"
)

func TestRouteActions(t *testing.T) {
	collection := acl.Route{Kind: acl.RouteCollection, Path: "/notes/", ViewSet: "Note"}
	want := []string{"finmars:Note:list", "finmars:Note:create", "finmars:Note:retrieve", "finmars:Note:update",
		"finmars:Note:partial_update", "finmars:Note:destroy"}
	if got := collection.Actions(); !reflect.DeepEqual(got, want) {
		t.Errorf("collection route actions = %v, want %v", got, want)
	}
	custom := acl.Route{Kind: acl.RouteCustom, Method: "GET", Path: "/buildName", Action: "example03:buildName:get"}
	if got := custom.Actions(); !reflect.DeepEqual(got, []string{"example03:buildName:get"}) {
		t.Errorf("custom route actions = %v", got)
	}
}

// TestCheckActions: a statement action that matches no action of the
// services' routes is a typo; in a Deny it silently widens access, so it
// rejects the bundle (strict) with the closest known action; in an Allow it
// is a warning.
func TestCheckActions(t *testing.T) {
	const f = "verdict/tenants/acme/data.yaml: "
	notes := &acl.Service{Name: "notes", Routes: []acl.Route{
		{Kind: acl.RouteCollection, Path: "/notes/", ViewSet: "Note"},
		{Kind: acl.RouteCustom, Method: "GET", Path: "/notes/light/", ViewSet: "Note", Action: "finmars:Note:list_light"},
	}}
	build := &acl.Service{Name: "example03", Routes: []acl.Route{
		{Kind: acl.RouteCustom, Method: "GET", Path: "/buildName", Action: "example03:buildName:get"},
	}}
	tests := []struct {
		name      string
		statement string
		services  []*acl.Service
		strict    bool
		errors    []string
		warnings  []string
	}{
		{
			name:      "misspelt Deny",
			statement: `{"Effect": "Deny", "Action": ["finmars:Note:list", "finmars:Note:destory"], "Resource": "*"}`,
			services:  []*acl.Service{notes, build}, strict: true,
			errors: []string{f + `access_policies.p.Statement[0].Action[1]: action "finmars:Note:destory" matches no action of the catalog's routes or of a registered service, so this Deny would forbid nothing; did you mean "finmars:Note:destroy"?`},
		},
		{
			name:      "misspelt Deny of a bundle accepted earlier is a warning",
			statement: `{"Effect": "Deny", "Action": "finmars:Note:destory", "Resource": "*"}`,
			services:  []*acl.Service{notes}, strict: false,
			warnings: []string{f + `access_policies.p.Statement[0].Action[0]: action "finmars:Note:destory" matches no action of the catalog's routes or of a registered service: this Deny forbids nothing; did you mean "finmars:Note:destroy"?`},
		},
		{
			name:      "misspelt Allow is a warning",
			statement: `{"Effect": "Allow", "Action": "FINMARS:note:retreive", "Resource": "*"}`,
			services:  []*acl.Service{notes}, strict: true,
			warnings: []string{f + `access_policies.p.Statement[0].Action[0]: action "FINMARS:note:retreive" matches no action of the catalog's routes or of a registered service: this Allow grants nothing; did you mean "finmars:Note:retrieve"?`},
		},
		{
			name:      "wildcard that matches nothing, with the suggestion in the pattern's shape",
			statement: `{"Effect": "Deny", "Action": "finmars:Notes:*", "Resource": "*"}`,
			services:  []*acl.Service{notes}, strict: true,
			errors: []string{f + `access_policies.p.Statement[0].Action[0]: action "finmars:Notes:*" matches no action of the catalog's routes or of a registered service, so this Deny would forbid nothing; did you mean "finmars:Note:*"?`},
		},
		{
			name:      "nothing near enough: no suggestion",
			statement: `{"Effect": "Deny", "Action": "billing:invoice:void", "Resource": "*"}`,
			services:  []*acl.Service{notes}, strict: true,
			errors: []string{f + `access_policies.p.Statement[0].Action[0]: action "billing:invoice:void" matches no action of the catalog's routes or of a registered service, so this Deny would forbid nothing`},
		},
		{
			name:      "case, wildcards inside parts and whole last parts match as the engine does",
			statement: `{"Effect": "Deny", "Action": ["FINMARS:NOTE:DESTROY", "finmars:*:list_*", "finmars:*", "*", "example03:*", "*:buildname:get", "finmars:Note:*update"], "Resource": "*"}`,
			services:  []*acl.Service{notes, build}, strict: true,
		},
		{
			name:      "a part wildcard does not cross parts",
			statement: `{"Effect": "Deny", "Action": "finmars:*", "Resource": "*"}`,
			services:  []*acl.Service{build}, strict: true,
			errors: []string{f + `access_policies.p.Statement[0].Action[0]: action "finmars:*" matches no action of the catalog's routes or of a registered service, so this Deny would forbid nothing`},
		},
		{
			name:      "no service: the vocabulary is unknown and nothing is checked",
			statement: `{"Effect": "Deny", "Action": "finmars:Note:destory", "Resource": "*"}`,
			strict:    true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant := decode(t, validTenant)
			set(tenant, "access_policies", map[string]any{"p": map[string]any{"Statement": []any{decodeAny(t, tt.statement)}}})
			set(tenant, "members.bob.policies", []any{"p"})
			set(tenant, "groups.staff.policies", []any{"p"})
			set(tenant, "roles.viewer.policies", []any{"p"})
			doc, ps := parse(t, map[string]any{"tenants": map[string]any{"acme": tenant}})
			if err := ps.Err(); err != nil {
				t.Fatalf("the test tenant does not parse: %v", err)
			}
			var got acl.Problems
			acl.CheckActions(doc, files, acl.NewVocabulary(tt.services...), tt.strict, &got)
			if errs := problemStrings(&got); !reflect.DeepEqual(errs, tt.errors) {
				t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(errs, "\n  "), strings.Join(tt.errors, "\n  "))
			}
			var warnings []string
			for _, w := range got.Warnings() {
				warnings = append(warnings, w.String())
			}
			if !reflect.DeepEqual(warnings, tt.warnings) {
				t.Errorf("warnings:\n  %s\nwant:\n  %s", strings.Join(warnings, "\n  "), strings.Join(tt.warnings, "\n  "))
			}
		})
	}
}

// TestResourceGroupPatternsMatchingNoGroup: a resource-group wildcard that
// covers no group of the tenant rejects a Deny and warns about an Allow, like
// an action that matches nothing.
func TestResourceGroupPatternsMatchingNoGroup(t *testing.T) {
	const f = "verdict/tenants/acme/data.yaml: "
	tests := []struct {
		name      string
		statement string
		errors    []string
		warnings  []string
	}{
		{
			name:      "Deny on a wildcard that covers no group",
			statement: `{"Effect": "Deny", "Action": "finmars:Portfolio:list", "Resource": "frn:finmars:iam:resourcegroup:grop_*"}`,
			errors:    []string{f + `access_policies.read.Statement[0].Resource[0]: resource "frn:finmars:iam:resourcegroup:grop_*" matches no resource group of the tenant, so this Deny would forbid nothing`},
		},
		{
			name:      "Allow on a wildcard that covers no group",
			statement: `{"Effect": "Allow", "Action": "finmars:Portfolio:list", "Resource": ["*", "frn:finmars:iam:resourcegroup:grop_*"]}`,
			warnings:  []string{f + `access_policies.read.Statement[0].Resource[1]: resource "frn:finmars:iam:resourcegroup:grop_*" matches no resource group of the tenant: this Allow grants nothing`},
		},
		{
			name:      "a wildcard that covers a group, ignoring case",
			statement: `{"Effect": "Deny", "Action": "finmars:Portfolio:list", "Resource": "frn:finmars:iam:resourcegroup:GROUP_*"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant := decode(t, validTenant)
			set(tenant, "access_policies.read.Statement", []any{decodeAny(t, tt.statement)})
			_, ps := parse(t, map[string]any{"tenants": map[string]any{"acme": tenant}})
			if errs := problemStrings(ps); !reflect.DeepEqual(errs, tt.errors) {
				t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(errs, "\n  "), strings.Join(tt.errors, "\n  "))
			}
			var warnings []string
			for _, w := range ps.Warnings() {
				warnings = append(warnings, w.String())
			}
			if !reflect.DeepEqual(warnings, tt.warnings) {
				t.Errorf("warnings:\n  %s\nwant:\n  %s", strings.Join(warnings, "\n  "), strings.Join(tt.warnings, "\n  "))
			}
		})
	}
}
