package e2eruntime

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/verdict-authz/verdict/test/e2eutil"
)

// The Fineract CN world before provisioning: the tenant, its members and
// policies, and the accounting service, which the bundle declares (with a
// delegation to portfolio that imhotep enabled). identity, rhythm and
// portfolio register themselves at run time, as the provisioner adds them.
var playground = map[string]string{
	".manifest": `{"revision": "playground-1", "roots": ["verdict"]}`,
	"verdict/catalog/data.yaml": `
services:
  accounting:
    routes:
      - {method: POST, path: /accounting/v1/journal, action: "accounting:journal:create"}
    permittable_groups:
      accounting__v1__journal: [{method: POST, path: /accounting/v1/journal}]
`,
	"verdict/tenants/playground/data.yaml": `
name: Fineract CN playground
members:
  antony: {is_admin: true}
  imhotep: {policies: [imhotep]}
access_policies:
  imhotep:
    Statement:
      - Effect: Allow
        Action: ["identity:permissions:*", "rhythm:beats:*", "portfolio:*", "accounting:*"]
        Resource: "*"
delegations:
  portfolio:
    accounting__v1__journal: {operations: [CHANGE], enabled_by: [imhotep]}
`,
}

const (
	identityDoc = `{
  "routes": [
    {"method": "POST", "path": "/identity/v1/users", "action": "identity:users:create"},
    {"method": "POST", "path": "/identity/v1/applications/{app}/permissions", "action": "identity:permissions:request"},
    {"method": "PUT", "path": "/identity/v1/applications/{app}/permissions/{group}/users/{user}/enabled", "action": "identity:permissions:enable"}
  ],
  "permittable_groups": {
    "identity__v1__app_self": [{"method": "POST", "path": "/identity/v1/applications/{applicationidentifier}/permissions"}]
  }
}`
	rhythmDoc = `{
  "routes": [
    {"method": "PUT", "path": "/rhythm/v1/applications/{app}/beats/{beat}", "action": "rhythm:beats:create"}
  ]
}`
	portfolioDoc = `{
  "routes": [
    {"method": "POST", "path": "/portfolio/v1/khepri/beats", "action": "portfolio:khepri:beat"}
  ],
  "permittable_groups": {
    "portfolio__v1__khepri": [{"method": "POST", "path": "/portfolio/v1/khepri/beats/"}]
  }
}`
	cnPerms = "/v1/tenants/playground/applications/rhythm/permissions"
)

// TestFineractCNProvisioningReplay replays the demo server's provisioning
// workflow of seed 000 against verdict, step by step, and checks every
// decision on the way. Each "demo_server ->" or "provisioner ->" line of
// the seed is either a change to verdict (a registration, a permission
// request, a consent) or a call that a service asks verdict about.
func TestFineractCNProvisioningReplay(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	s := start(t, "--bundle", e2eutil.WriteFiles(t, playground), "--state-dir", state, "--admin-token-file", tokenFile(t, "provisioner"))
	s.token = "provisioner"
	as := func(member, application, method, path string) ask {
		return ask{tenant: "playground", member: member, application: application, method: method, path: path}
	}
	createUser := as("antony", "", "POST", "/identity/v1/users")
	rhythmAsksIdentity := as("imhotep", "rhythm", "POST", "/identity/v1/applications/rhythm/permissions")
	rhythmBeat := as("imhotep", "rhythm", "POST", "/portfolio/v1/khepri/beats")
	portfolioBooks := as("imhotep", "portfolio", "POST", "/accounting/v1/journal")

	// demo_server -> provisioner: add identity service to the tenant
	s.expect(t, "identity is not there yet", createUser, false, 404, "route.unknown")
	s.must(t, http.StatusOK, http.MethodPut, "/v1/services/identity", identityDoc)

	// demo_server -> identity: add user imhotep (as user antony)
	s.expect(t, "antony adds imhotep", createUser, true, 200, "iam.admin")
	s.expect(t, "imhotep may not add users", as("imhotep", "", "POST", "/identity/v1/users"), false, 403, "iam.no_allow")

	// demo_server -> provisioner: add rhythm service to the tenant
	s.must(t, http.StatusOK, http.MethodPut, "/v1/services/rhythm", rhythmDoc)
	//   provisioner -> rhythm: ask what permissions rhythm needs
	//   provisioner -> identity: create permission request for rhythm to
	//   access identity to create permission requests
	s.expect(t, "rhythm has not asked yet", rhythmAsksIdentity, false, 403, "iam.allow", "resource.any", "delegation.not_requested")
	s.must(t, http.StatusCreated, http.MethodPost, cnPerms, `{"group": "identity__v1__app_self", "operations": ["CHANGE"]}`)
	s.expect(t, "rhythm asked, imhotep has not agreed", rhythmAsksIdentity, false, 403, "iam.allow", "resource.any", "delegation.not_enabled")

	// demo_server -> identity: grant rhythm's request to create permission
	// requests via the user imhotep (as user antony)
	s.expect(t, "antony may grant for imhotep",
		as("antony", "", "PUT", "/identity/v1/applications/rhythm/permissions/identity__v1__app_self/users/imhotep/enabled"),
		true, 200, "iam.admin")
	s.must(t, http.StatusOK, http.MethodPut, cnPerms+"/identity__v1__app_self/users/imhotep/enabled", `true`)
	s.expect(t, "rhythm may now ask identity as imhotep", rhythmAsksIdentity, true, 200, "iam.allow", "resource.any", "delegation.allow")

	// demo_server -> provisioner: add accounting to the tenant (the bundle
	// declares it) and portfolio
	var acc struct{ Source string }
	s.must(t, http.StatusOK, http.MethodGet, "/v1/services/accounting", "").decode(t, &acc)
	if acc.Source != "bundle" {
		t.Fatalf("accounting: %+v", acc)
	}
	s.expect(t, "portfolio is not there yet", rhythmBeat, false, 404, "route.unknown")
	s.must(t, http.StatusOK, http.MethodPut, "/v1/services/portfolio", portfolioDoc)

	//   provisioner -> portfolio: provision for the given tenant
	//     portfolio -> rhythm: request that rhythm make a callback once an
	//     hour to portfolio (with system token: the tenant's administrator)
	s.expect(t, "portfolio asks rhythm for a beat", as("antony", "", "PUT", "/rhythm/v1/applications/portfolio/beats/interest"),
		true, 200, "iam.admin")
	//       rhythm -> identity: create a permission request for rhythm to
	//       access portfolio__v1__khepri (as user imhotep)
	s.expect(t, "rhythm asks identity as imhotep", rhythmAsksIdentity, true, 200, "iam.allow", "resource.any", "delegation.allow")
	s.expect(t, "before the request, a beat is not requested", rhythmBeat, false, 403, "iam.allow", "resource.any", "delegation.not_requested")
	s.must(t, http.StatusCreated, http.MethodPost, cnPerms, `{"group": "portfolio__v1__khepri", "operations": ["CHANGE"]}`)
	s.expect(t, "requested, not yet allowed by imhotep", rhythmBeat, false, 403, "iam.allow", "resource.any", "delegation.not_enabled")

	// demo_server -> identity: allow rhythm to call portfolio__v1__khepri as
	// imhotep (as user imhotep)
	s.expect(t, "imhotep may enable for himself",
		as("imhotep", "", "PUT", "/identity/v1/applications/rhythm/permissions/portfolio__v1__khepri/users/imhotep/enabled"),
		true, 200, "iam.allow", "resource.any")
	s.must(t, http.StatusOK, http.MethodPut, cnPerms+"/portfolio__v1__khepri/users/imhotep/enabled", `true`)

	// rhythm (internally): react to a scheduled event
	//   rhythm -> portfolio: trigger beat (as user imhotep)
	s.expect(t, "the beat", rhythmBeat, true, 200, "iam.allow", "resource.any", "delegation.allow")
	//     portfolio -> accounting: transfer interest, late fees, etc (as user imhotep)
	s.expect(t, "portfolio books as imhotep", portfolioBooks, true, 200, "iam.allow", "resource.any", "delegation.allow")

	// What was not granted stays denied.
	s.expect(t, "rhythm may not book", as("imhotep", "rhythm", "POST", "/accounting/v1/journal"),
		false, 403, "iam.allow", "resource.any", "delegation.not_requested")
	s.expect(t, "antony never enabled rhythm", as("antony", "rhythm", "POST", "/portfolio/v1/khepri/beats"),
		false, 403, "iam.admin", "delegation.not_enabled")
	s.expect(t, "portfolio may not beat for itself", as("imhotep", "portfolio", "POST", "/portfolio/v1/khepri/beats"),
		false, 403, "iam.allow", "resource.any", "delegation.not_requested")

	// The next hour, after a restart: still provisioned.
	s = s.restart(t)
	s.expect(t, "the beat after a restart", rhythmBeat, true, 200, "iam.allow", "resource.any", "delegation.allow")
	s.expect(t, "booking after a restart", portfolioBooks, true, 200, "iam.allow", "resource.any", "delegation.allow")
	s.expect(t, "identity after a restart", createUser, true, 200, "iam.admin")
}
