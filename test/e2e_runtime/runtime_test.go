package e2eruntime

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/decision/client"
)

const requisitionDoc = `{"routes": [
  {"method": "POST", "path": "/api/requisitions/{id}/approve", "action": "requisition:requisitions:approve"},
  {"path": "/api/requisitionTemplates/", "viewset": "RequisitionTemplate"}
]}`

var approve = ask{tenant: "bank", member: "admin", method: "POST", path: "/api/requisitions/42/approve"}

// Register, decide, restart with the same state directory, decide again
// (OpenLMIS, seed 002).
func TestRegisterDecideRestartDecide(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	s := start(t, "--bundle", demoBundle, "--state-dir", state)
	s.expect(t, "before registration", approve, false, 404, "route.unknown")

	r := s.must(t, http.StatusOK, http.MethodPut, "/v1/services/requisition", requisitionDoc)
	var reg struct {
		Created, Changed, Persisted bool
		Source                      string
	}
	r.decode(t, &reg)
	if !reg.Created || !reg.Changed || !reg.Persisted || reg.Source != "registration" {
		t.Fatalf("PUT: %s", r.body)
	}
	s.expect(t, "after registration", approve, true, 200, "iam.admin")
	// The collection route works too (a Finmars view set).
	s.expect(t, "collection route", ask{tenant: "bank", member: "intern", method: "GET", path: "/api/requisitionTemplates/"},
		false, 403, "iam.no_allow")
	// Idempotent.
	r = s.must(t, http.StatusOK, http.MethodPut, "/v1/services/requisition", requisitionDoc)
	if !strings.Contains(string(r.body), `"changed":false`) {
		t.Errorf("repeat PUT: %s", r.body)
	}
	// A registration overrides the bundle's service of the same name.
	s.must(t, http.StatusOK, http.MethodPut, "/v1/services/example03",
		`{"routes": [{"method": "GET", "path": "/buildName2", "action": "example03:buildName:get"}]}`)
	s.expect(t, "overridden route gone", ask{tenant: "bank", member: "admin", method: "GET", path: "/buildName"}, false, 404, "route.unknown")

	s = s.restart(t)
	s.expect(t, "after restart", approve, true, 200, "iam.admin")
	s.expect(t, "override after restart", ask{tenant: "bank", member: "admin", method: "GET", path: "/buildName2"}, true, 200, "iam.admin")
	var got struct {
		Name, Source, Bundle string
		Document             json.RawMessage
	}
	s.must(t, http.StatusOK, http.MethodGet, "/v1/services/example03", "").decode(t, &got)
	if got.Source != "registration" || got.Bundle != "demo" || !strings.Contains(string(got.Document), "buildName2") {
		t.Errorf("GET after restart: %+v", got)
	}
	s.must(t, http.StatusMethodNotAllowed, http.MethodDelete, "/v1/services/requisition", "")
	s.expect(t, "DELETE changes nothing", approve, true, 200, "iam.admin")
}

const (
	perms       = "/v1/tenants/fineract/applications/rhythm/permissions"
	consentPath = perms + "/portfolio__v1__khepri/users/imhotep/enabled"
)

var beat = ask{tenant: "fineract", member: "imhotep", application: "rhythm", method: "POST", path: "/portfolio/v1/khepri/beats"}

// Request, consent, withdraw, across restarts (Fineract CN, seed 000).
func TestDelegationRequestConsentWithdrawAcrossRestarts(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	s := start(t, "--bundle", demoBundle, "--state-dir", state, "--admin-token-file", tokenFile(t, "t0ken"))
	s.token = "t0ken"
	s.expect(t, "not requested", beat, false, 403, "iam.allow", "resource.any", "delegation.not_requested")

	s.must(t, http.StatusCreated, http.MethodPost, perms, `{"group": "portfolio__v1__khepri", "operations": ["CHANGE"]}`)
	s.expect(t, "requested", beat, false, 403, "iam.allow", "resource.any", "delegation.not_enabled")
	s = s.restart(t)
	s.expect(t, "requested, after restart", beat, false, 403, "iam.allow", "resource.any", "delegation.not_enabled")

	s.must(t, http.StatusOK, http.MethodPut, consentPath, `true`)
	s.expect(t, "consented", beat, true, 200, "iam.allow", "resource.any", "delegation.allow")
	s = s.restart(t)
	s.expect(t, "consented, after restart", beat, true, 200, "iam.allow", "resource.any", "delegation.allow")
	if r := s.must(t, http.StatusOK, http.MethodGet, consentPath, ""); strings.TrimSpace(string(r.body)) != "true" {
		t.Errorf("GET consent: %s", r.body)
	}

	s.must(t, http.StatusOK, http.MethodPut, consentPath, `false`)
	s.expect(t, "withdrawn", beat, false, 403, "iam.allow", "resource.any", "delegation.not_enabled")
	s = s.restart(t)
	s.expect(t, "withdrawn, after restart", beat, false, 403, "iam.allow", "resource.any", "delegation.not_enabled")
	var list struct {
		Permissions []struct {
			Group     string
			EnabledBy []string `json:"enabled_by"`
			InBundle  bool     `json:"in_bundle"`
		}
	}
	s.must(t, http.StatusOK, http.MethodGet, perms, "").decode(t, &list)
	if len(list.Permissions) != 2 || list.Permissions[1].Group != "portfolio__v1__khepri" || len(list.Permissions[1].EnabledBy) != 0 ||
		!list.Permissions[0].InBundle {
		t.Errorf("GET permissions: %+v", list)
	}
}

// An unknown tenant, member, group or application is a 404 with a message.
func TestUnknownTenantMemberGroupApplication(t *testing.T) {
	s := start(t, "--bundle", demoBundle, "--state-dir", filepath.Join(t.TempDir(), "state"))
	s.must(t, http.StatusCreated, http.MethodPost, perms, `{"group": "portfolio__v1__khepri", "operations": ["READ"]}`)
	cases := []struct{ name, method, path, body, mention string }{
		{"unknown member", http.MethodPut, perms + "/portfolio__v1__khepri/users/nobody/enabled", `true`, `no member "nobody"`},
		{"unknown group", http.MethodPost, perms, `{"group": "nope__v1__x", "operations": ["READ"]}`, `unknown permittable group "nope__v1__x"`},
		{"unknown group (consent)", http.MethodPut, perms + "/nope__v1__x/users/imhotep/enabled", `true`, `unknown permittable group`},
		{"application that never asked", http.MethodPut, "/v1/tenants/fineract/applications/accounting/permissions/portfolio__v1__khepri/users/imhotep/enabled", `true`, `application "accounting" never asked`},
		{"application that never asked (GET)", http.MethodGet, "/v1/tenants/fineract/applications/accounting/permissions/portfolio__v1__khepri/users/imhotep/enabled", ``, `never asked`},
		{"unknown tenant", http.MethodPost, "/v1/tenants/atlantis/applications/rhythm/permissions", `{"group": "portfolio__v1__khepri", "operations": ["READ"]}`, `unknown tenant "atlantis"`},
		{"unknown tenant (list)", http.MethodGet, "/v1/tenants/atlantis/applications/rhythm/permissions", ``, `unknown tenant`},
		{"unknown service", http.MethodGet, "/v1/services/nothing", ``, `"nothing"`},
	}
	for _, c := range cases {
		r := s.call(t, c.method, c.path, c.body)
		var e struct{ Code, Message string }
		r.decode(t, &e)
		if r.status != http.StatusNotFound || e.Code != "not_found" || !strings.Contains(e.Message, c.mention) {
			t.Errorf("%s: HTTP %d %s", c.name, r.status, r.body)
		}
	}
}

// Write endpoints need the admin token; decisions and reads do not.
func TestAdminToken(t *testing.T) {
	s := start(t, "--bundle", demoBundle, "--state-dir", filepath.Join(t.TempDir(), "state"), "--admin-token-file", tokenFile(t, "t0ken"))
	for _, token := range []string{"", "wrong"} {
		s.token = token
		for _, w := range []struct{ method, path, body string }{
			{http.MethodPut, "/v1/services/requisition", requisitionDoc},
			{http.MethodPost, perms, `{"group": "portfolio__v1__khepri", "operations": ["READ"]}`},
			{http.MethodPut, consentPath, `true`},
		} {
			r := s.must(t, http.StatusUnauthorized, w.method, w.path, w.body)
			if ch := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer") {
				t.Errorf("%s %s: WWW-Authenticate %q", w.method, w.path, ch)
			}
		}
	}
	s.expect(t, "no registration happened", approve, false, 404, "route.unknown")
	s.must(t, http.StatusOK, http.MethodGet, "/v1/services", "")
	s.token = "t0ken"
	s.must(t, http.StatusOK, http.MethodPut, "/v1/services/requisition", requisitionDoc)
	s.token = ""
	s.expect(t, "decisions stay open", approve, true, 200, "iam.admin")

	// An empty token file is refused at start.
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	bad := startAt(t, freeAddr(t), "--bundle", demoBundle, "--admin-token-file", empty)
	select {
	case <-bad.Done:
		if !strings.Contains(bad.Out.String(), "--admin-token-file") {
			t.Errorf("exit message: %s", bad.Out.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("verdict run started with an empty admin token file")
	}
}

// The issue 14 replay: a withdrawn consent is recorded in a state file; the
// file is truncated (a disk that lied, an operator's slip). verdict run
// refuses to start, naming the file and the fix, and leaves the file as it
// is: leaving it out would give the consent back. With --state-quarantine
// it moves the file aside, starts, and says so in the log and the status.
func TestUnusableStateFileRefusesStart(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	rhythmAsksIdentity := ask{tenant: "fineract", member: "imhotep", application: "rhythm", method: "POST", path: "/identity/v1/applications/rhythm/permissions"}
	s := start(t, "--bundle", demoBundle, "--state-dir", state)
	s.expect(t, "the bundle's consent", rhythmAsksIdentity, true, 200, "iam.allow", "resource.any", "delegation.allow")
	s.must(t, http.StatusOK, http.MethodPut, perms+"/identity__v1__app_self/users/imhotep/enabled", `false`)
	s.expect(t, "withdrawn", rhythmAsksIdentity, false, 403, "iam.allow", "resource.any", "delegation.not_enabled")
	s.Stop()
	file := filepath.Join(state, "delegations", "fineract,rhythm,identity__v1__app_self.json")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	truncated := data[:len(data)/2]
	if err := os.WriteFile(file, truncated, 0o600); err != nil {
		t.Fatal(err)
	}

	refused := startAt(t, freeAddr(t), "--bundle", demoBundle, "--state-dir", state)
	select {
	case <-refused.Done:
		out := refused.Out.String()
		for _, want := range []string{file + ": not a valid state file: unexpected EOF", "--state-quarantine", "restore the files from a backup"} {
			if !strings.Contains(out, want) {
				t.Errorf("the exit message lacks %q:\n%s", want, out)
			}
		}
		if refused.WaitErr == nil {
			t.Errorf("verdict run exited 0")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("verdict run started with a truncated state file")
	}
	if got, err := os.ReadFile(file); err != nil || string(got) != string(truncated) {
		t.Fatalf("the truncated file was changed: %q, %v", got, err)
	}

	s = start(t, "--bundle", demoBundle, "--state-dir", state, "--state-quarantine")
	var st struct {
		Ready   bool
		Runtime struct {
			StateProblems []struct{ File, Message string } `json:"state_problems"`
		}
	}
	s.must(t, http.StatusOK, http.MethodGet, "/v1/status", "").decode(t, &st)
	if len(st.Runtime.StateProblems) != 1 || st.Runtime.StateProblems[0].File != file ||
		!strings.Contains(st.Runtime.StateProblems[0].Message, "moved to "+filepath.Join(state, "quarantine")) {
		t.Errorf("status: %+v", st)
	}
	if !strings.Contains(s.Out.String(), "state entry quarantined") {
		t.Errorf("the log does not report the file:\n%s", s.Out.String())
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("the file is still in place (%v)", err)
	}
	// The next start is clean.
	s = s.restart(t)
	s.must(t, http.StatusOK, http.MethodGet, "/v1/status", "").decode(t, &st)
	if len(st.Runtime.StateProblems) != 0 {
		t.Errorf("status after the quarantine: %+v", st)
	}
}

// The Go client's RegisterService tries again until the sidecar answers
// (OpenLMIS: "the service will try again until successful").
func TestClientRegistersBeforeTheSidecarIsUp(t *testing.T) {
	addr := freeAddr(t)

	c := client.New("http://"+addr, client.WithAdminToken("t0ken"),
		client.WithBackoff(client.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond, Multiplier: 2}))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.RegisterService(ctx, "requisition", &client.Service{Routes: []client.Route{
			{Method: "POST", Path: "/api/requisitions/{id}/approve", Action: "requisition:requisitions:approve"}}})
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	s := startAt(t, addr, "--bundle", demoBundle, "--state-dir", filepath.Join(t.TempDir(), "state"), "--admin-token-file", tokenFile(t, "t0ken"))
	if err := s.Wait("/health/ready", 20*time.Second); err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("RegisterService did not return")
	}
	s.expect(t, "registered through the client", approve, true, 200, "iam.admin")
}
