package decision

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/loader/route"
)

// The messages Rego leaves to Go, each with the arguments it is rendered
// from. TestGoldenDecisions holds them, rendered, to the messages Rego
// gave before they moved (every reason of 8,860 recorded answers); this
// table names the template of every code, including those no generated
// world reaches.
func TestRenderMessages(t *testing.T) {
	statement := 2
	users := &route.Match{Service: "users", Template: "/users", Method: "POST", Action: "svc:users:post"}
	mf := messageFacts{
		tenant: "bank", member: "user_a", action: "finmars:Portfolio:retrieve",
		resource:   &Resource{FRN: "frn:finmars:portfolios:portfolio:Bonds"},
		keyPackage: "GOLD", packageRoute: users,
	}
	noObject := mf
	noObject.resource = nil
	noTenant := mf
	noTenant.tenant = ""
	tests := []struct {
		name string
		mf   messageFacts
		r    Reason
		acl  string
		want string
	}{
		{"unknown tenant", mf, Reason{Layer: "tenant", Code: "tenant.unknown"}, "", `Unknown tenant "bank".`},
		{"no tenant", noTenant, Reason{Layer: "tenant", Code: "tenant.unknown"}, "", "The request names no tenant."},
		{"key", mf, Reason{Layer: "tenant", Code: "key.invalid", SoajsCode: 132}, "", "A valid key is needed to access any API."},
		{"route", mf, Reason{Layer: "route", Code: "route.unknown", SoajsCode: 130}, "", "Unknown service."},
		{"service denied", mf, Reason{Layer: "package", Code: "package.service_denied", SoajsCode: 154}, "", "Access denied: The service is not available in your current package."},
		{"group denied", mf, Reason{Layer: "package", Code: "package.group_denied", SoajsCode: 157}, "", "You do not belong to a group with access to this System."},
		{"login", mf, Reason{Layer: "package", Code: "package.login_required", SoajsCode: 158}, "", "You need to be logged in to access this System."},
		{"restricted", mf, Reason{Layer: "package", Code: "package.api_restricted", SoajsCode: 159}, "", "System api access is restricted. api is not in provision."},
		{"api group", mf, Reason{Layer: "package", Code: "package.api_group_denied", SoajsCode: 160}, "", "You do not belong to a group with access to this system API."},
		{"api login", mf, Reason{Layer: "package", Code: "package.api_login_required", SoajsCode: 161}, "", "You need to be logged in to access this API."},
		{"package allow names the judged route", mf, Reason{Layer: "package", Code: "package.allow"}, "member key", "The member key ACL of package GOLD allows POST /users on service users."},
		{"anonymous", mf, Reason{Layer: "iam", Code: "iam.anonymous"}, "", "Authentication is required: the request names no member."},
		{"unknown member", mf, Reason{Layer: "iam", Code: "iam.unknown_member"}, "", `Member "user_a" is not a member of tenant "bank".`},
		{"admin", mf, Reason{Layer: "iam", Code: "iam.admin"}, "", `Member "user_a" is an admin: access policies are not evaluated.`},
		{"no allow names the model", mf, Reason{Layer: "iam", Code: "iam.no_allow"}, "", "User: frn:finmars:users:member:user_a is not authorized to perform: retrieve on resource: finmars:Portfolio because no access policy allows the 'retrieve' action."},
		{"explicit deny on an object", mf, Reason{Layer: "iam", Code: "iam.explicit_deny", Policy: "p-deny", Statement: &statement}, "", `User: frn:finmars:users:member:user_a is not authorized to perform: retrieve on resource: frn:finmars:portfolios:portfolio:Bonds with an explicit deny in access policy "p-deny", statement 2.`},
		{"explicit deny without object", noObject, Reason{Layer: "iam", Code: "iam.explicit_deny", Policy: "p-deny", Statement: &statement}, "", `User: frn:finmars:users:member:user_a is not authorized to perform: retrieve on resource: finmars:Portfolio with an explicit deny in access policy "p-deny", statement 2.`},
		{"owner", mf, Reason{Layer: "iam", Code: "resource.owner"}, "", `Member "user_a" owns the object.`},
		{"allow", mf, Reason{Layer: "iam", Code: "iam.allow", Policy: "p", Statement: &statement}, "", `Access policy "p", statement 2, allows finmars:Portfolio:retrieve.`},
		{"any object", mf, Reason{Layer: "iam", Code: "resource.any"}, "", "The statement covers every object."},
		{"no object", noObject, Reason{Layer: "iam", Code: "resource.any"}, "", "The request names no object; the statement covers the action."},
		{"object", mf, Reason{Layer: "iam", Code: "resource.object"}, "", "The statement names the object frn:finmars:portfolios:portfolio:Bonds."},
		{"group", mf, Reason{Layer: "iam", Code: "resource.group", ResourceGroup: "bonds"}, "", `The object is in resource group "bonds".`},
		{"public", mf, Reason{Layer: "iam", Code: "resource.public"}, "", "frn:finmars:portfolios:portfolio:Bonds is a reference to an object the member may not read: only its public fields (id, user_code, public_name) are visible."},
		{"not covered", mf, Reason{Layer: "iam", Code: "resource.not_covered"}, "", "User: frn:finmars:users:member:user_a is not authorized to perform: retrieve on resource: frn:finmars:portfolios:portfolio:Bonds because no access policy that allows the 'retrieve' action covers this object."},
		{"incomplete", mf, Reason{Layer: "engine", Code: "error.internal"}, "", errIncompleteMessage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			got, err := tc.mf.render(reasonArgs{Reason: &r, aclSource: tc.acl})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("message\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// A reason Rego leaves without a message and whose arguments are missing,
// or whose code no template knows, is an error (and so a deny), never a
// message made up.
func TestRenderRefusesWhatItCannotRender(t *testing.T) {
	mf := messageFacts{tenant: "bank", member: "user_a", action: "a:b:c"}
	for _, r := range []Reason{
		{Layer: "iam", Code: "iam.made_up"},
		{Layer: "ext", Code: "ext.deny"},
		{Layer: "iam", Code: "iam.allow"},                       // no statement
		{Layer: "iam", Code: "iam.explicit_deny"},               // no statement
		{Layer: "iam", Code: "resource.group"},                  // no group
		{Layer: "package", Code: "package.allow"},               // no route judged, no source
		{Layer: "package", Code: "package.group_denied"},        // no SOAJS code
		{Layer: "iam", Code: "error.internal"},                  // only the engine's
		{Layer: "delegation", Code: "delegation.not_requested"}, // Rego renders these
	} {
		if msg, err := mf.render(reasonArgs{Reason: &r}); err == nil {
			t.Errorf("%s (%s): rendered %q, want an error", r.Code, r.Layer, msg)
		}
	}
}

// The Data API's engine documents carry the messages /v1/decide gives,
// wherever the reasons sit in them, and lose the arguments that are not
// part of an answer.
func TestRenderDocument(t *testing.T) {
	mf := messageFacts{tenant: "bank", member: "user_a", action: "finmars:Portfolio:retrieve",
		keyPackage: "GOLD", packageRoute: &route.Match{Service: "svc", Template: "/users/{id}", Method: "GET"}}
	var doc any
	dec := json.NewDecoder(strings.NewReader(`{
		"decision": {"allow": false, "reasons": [
			{"layer": "package", "code": "package.allow", "effect": "allow", "acl_source": "package"},
			{"layer": "iam", "code": "iam.no_allow", "effect": "deny"},
			{"layer": "ext", "code": "ext.x", "effect": "deny", "message": "kept"}
		]},
		"iam": {"denies": [{"layer": "iam", "code": "iam.explicit_deny", "effect": "deny", "policy": "p", "statement": 3}], "grants": []},
		"other": {"layer": 7, "code": "not a reason"}
	}`))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if err := mf.renderDocument(doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"decision": map[string]any{"allow": false, "reasons": []any{
			map[string]any{"layer": "package", "code": "package.allow", "effect": "allow", "message": "The package ACL of package GOLD allows GET /users/{id} on service svc."},
			map[string]any{"layer": "iam", "code": "iam.no_allow", "effect": "deny", "message": "User: frn:finmars:users:member:user_a is not authorized to perform: retrieve on resource: finmars:Portfolio because no access policy allows the 'retrieve' action."},
			map[string]any{"layer": "ext", "code": "ext.x", "effect": "deny", "message": "kept"},
		}},
		"iam": map[string]any{"denies": []any{map[string]any{"layer": "iam", "code": "iam.explicit_deny", "effect": "deny", "policy": "p", "statement": json.Number("3"),
			"message": `User: frn:finmars:users:member:user_a is not authorized to perform: retrieve on resource: finmars:Portfolio with an explicit deny in access policy "p", statement 3.`}}, "grants": []any{}},
		"other": map[string]any{"layer": json.Number("7"), "code": "not a reason"},
	}
	if !reflect.DeepEqual(doc, want) {
		got, _ := json.MarshalIndent(doc, "", "  ")
		t.Errorf("rendered document:\n%s", got)
	}
}
