package e2e

import "testing"

// Keys of the demo's SOAJS tenants (bundles/demo/verdict/tenants/tnt*).
const (
	keyApp1    = "4ea5db4c70b6168aeede6a8a56cb4624efdb6cb2cf3c7b88cbc1f5d97080a44f18083fa195e20dcc0b42496ae268ea91c657dd9b252b72de14c862e64f8522a9dbdaa1ce0f48ba2d5ed5eff49b47d0f728bddb2080c8cbc7bde3771116192b51"
	keyApp2    = "4ea5db4c70b6168aeede6a8a56cb46246ca38b1b4f801f090d5821bd76b339e34b8ddb9ac2cb7ffee220cf3e463ac9cdf3902e91720c8f56684d7d88287affc0092eeb37648e7bde4f565f509b1b384127022bc2c1c1581f4ba50e28564d1c5c"
	keyUrac    = "4232477ed993d167ec13ccf8836c29c400fef7eb3d175b1f2192b82ebef6fb2d129cdd25fe23c04f856157184e11f7f57b65759191908cb5c664df136c7ad16a56a5917fdeabfc97c92a1f199e457e31f2450a810769ff1b29269bcb3f01e3d2"
	keyApp3    = "2423205b6ccd825aaa3dbf7f248f807996c1f39f4e128801107a10ea55eac9686f23b883b778b1763876fe47f7cc651fea232f7aa9dae3dfd1978d4948a3f26b948ebc1b71a9d6cacf08852312866d757b22392d8d3c0e28ee47edb0e7478157"
	keyApp4    = "7bc1e66d003a3b2acfce1557cbda7320ec45057be0505fd7e9dec19e9fe74c194b109a48568f53449c1cc607a3cb23d70de86831a2ac4b87f1c0c5d57d19702a74ac22a64531185af11f75967f9ba54cb930149ed8a1384f924be9baa4ed5b0b"
	keyExpired = "0ld0ld0ld0ld0ld0ld0ld0ld0ld0ld0l"
)

// soajsReq builds a request with a key (and optionally a tenant and member).
func soajsReq(tenant, key, member, method, path string) string {
	b := req(tenant, member, `{"method": "`+method+`", "path": "`+path+`"}`, "", "", "")
	if key == "" {
		return b
	}
	return `{"key": "` + key + `", ` + b[1:]
}

// soajsDeny checks the SOAJS code and message of the deciding reason
// (README "How a decision is made", layers 1-3).
func soajsDeny(code int) func(t *testing.T, d *Decision) {
	messages := map[int]string{
		130: "Unknown service.",
		132: "A valid key is needed to access any API.",
		154: "Access denied: The service is not available in your current package.",
		157: "You do not belong to a group with access to this System.",
		158: "You need to be logged in to access this System.",
		159: "System api access is restricted. api is not in provision.",
		160: "You do not belong to a group with access to this system API.",
		161: "You need to be logged in to access this API.",
	}
	return func(t *testing.T, d *Decision) {
		t.Helper()
		if len(d.Reasons) == 0 {
			t.Fatal("no reasons")
		}
		r := d.Reasons[len(d.Reasons)-1]
		if r.SoajsCode != code || r.Message != messages[code] {
			t.Errorf("deciding reason = %+v; want soajs_code %d, message %q", r, code, messages[code])
		}
	}
}

// TestDecideDemoSOAJS covers the demo's SOAJS tenants: keys (layer 1) and
// product packages with application and member overrides (layer 3). The
// reason codes are verdict's own; status, soajs_code and message are the
// SPEC's.
func TestDecideDemoSOAJS(t *testing.T) {
	s := demo(t)
	deny := func(name, body string, status, code int, reasonCode string) decideCase {
		return decideCase{name: name, body: body, allow: false, status: status, codes: []string{reasonCode}, check: soajsDeny(code)}
	}
	allow := func(name, body string) decideCase {
		return decideCase{name: name, body: body, allow: true, status: 200, codes: []string{"package.allow"}}
	}
	cases := []decideCase{
		// Layer 1: keys.
		deny("no key for a package tenant", soajsReq("tnt1", "", "", "GET", "/buildName"), 403, 132, "key.invalid"),
		deny("unknown key", soajsReq("", "bogus", "", "GET", "/buildName"), 403, 132, "key.invalid"),
		deny("expired key", soajsReq("", keyExpired, "", "GET", "/buildName"), 403, 132, "key.invalid"),
		deny("a key of another tenant", soajsReq("tnt2", keyApp1, "", "GET", "/buildName"), 403, 132, "key.invalid"),
		// Layer 2 comes before the package.
		deny("unknown route with a key", soajsReq("", keyApp3, "", "GET", "/nope"), 404, 130, "route.unknown"),
		// Layer 3: the package, then the overrides.
		deny("package 1 has no example03", soajsReq("", keyApp1, "", "GET", "/buildName"), 401, 154, "package.service_denied"),
		allow("the application's ACL overrides the package", soajsReq("", keyApp2, "", "GET", "/buildName")),
		allow("the member's package ACL overrides the package", soajsReq("", keyApp1, "user2", "GET", "/buildName")),
		allow("the request's tenant is the key's", soajsReq("tnt1", keyApp1, "user2", "GET", "/buildName")),
		{name: "the key names the tenant when the request does not", body: soajsReq("", keyApp3, "goldie", "GET", "/users/5"),
			allow: true, status: 200, codes: []string{"package.allow"}, check: func(t *testing.T, d *Decision) {
				if d.Tenant != "tnt2" {
					t.Errorf("tenant = %q, want tnt2 (the key's)", d.Tenant)
				}
			}},
		deny("the member's key ACL is restricted", soajsReq("", keyUrac, "user3", "GET", "/testGet"), 401, 159, "package.api_restricted"),
		allow("the member's key ACL lists buildName", soajsReq("", keyUrac, "user3", "GET", "/buildName")),
		deny("example04 needs a logged-in member", soajsReq("", keyApp1, "", "GET", "/users/5"), 401, 158, "package.login_required"),
		allow("example04 with a member", soajsReq("", keyApp1, "user1", "GET", "/users/5")),
		deny("package 2: newbie is in neither gold nor silver", soajsReq("", keyApp3, "newbie", "POST", "/users"), 401, 157, "package.group_denied"),
		allow("package 2: silvia may POST /users", soajsReq("", keyApp3, "silvia", "POST", "/users")),
		deny("package 2: GET /users/{id} is for gold", soajsReq("", keyApp3, "silvia", "GET", "/users/5"), 401, 160, "package.api_group_denied"),
		allow("package 2: goldie may GET /users/{id}", soajsReq("", keyApp3, "goldie", "GET", "/users/5/")),
		allow("package 2: HEAD is a GET", soajsReq("", keyApp3, "goldie", "HEAD", "/users/5")),
		deny("package 3: only buildName of example03", soajsReq("", keyApp4, "", "GET", "/testGet"), 401, 159, "package.api_restricted"),
		allow("package 3: buildName", soajsReq("", keyApp4, "", "GET", "/buildName")),
		deny("package 3: GET /users/{id} needs a member", soajsReq("", keyApp4, "", "GET", "/users/1"), 401, 161, "package.api_login_required"),
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runDecideCase(t, s, tc)
		})
	}
}
