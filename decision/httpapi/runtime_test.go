package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/bundles"
	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/httpapi"
	"github.com/verdict-authz/verdict/loader"
)

const adminToken = "s3cret-admin-token"

// runtimeAPI serves the demo bundle with run-time registration and
// delegation, state kept in a temporary directory, on an engine made with
// opts.
func runtimeAPI(t *testing.T, token string, opts ...decision.EngineOption) http.Handler {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	engine := decision.NewEngine(quiet, opts...)
	ld, err := loader.New(engine, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ld.Close)
	if err := ld.OpenState(context.Background(), t.TempDir(), loader.StateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ld.LoadAll(context.Background(), []loader.Source{{Name: "demo", FS: bundles.Demo()}}); err != nil {
		t.Fatal(err)
	}
	o := httpapi.Options{Log: quiet, Bundles: ld, Runtime: ld}
	if token != "" {
		o.AdminToken = []byte(token)
	}
	return httpapi.New(engine, o)
}

type answer struct {
	code   int
	header http.Header
	body   string
}

func call(t *testing.T, h http.Handler, method, path, body, auth string) answer {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: Content-Type %q: %s", method, path, ct, rec.Body)
	}
	return answer{code: rec.Code, header: rec.Header(), body: rec.Body.String()}
}

func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(a.body), v); err != nil {
		t.Fatalf("decode %s: %v", a.body, err)
	}
}

const (
	requisitionDoc = `{"routes": [{"method": "POST", "path": "/api/requisitions/{id}/approve", "action": "requisition:requisitions:approve"}]}`
	khepriPerms    = "/v1/tenants/fineract/applications/rhythm/permissions"
	khepriConsent  = khepriPerms + "/portfolio__v1__khepri/users/imhotep/enabled"
)

func TestWriteEndpointsNeedTheAdminToken(t *testing.T) {
	h := runtimeAPI(t, adminToken)
	writes := []struct{ method, path, body string }{
		{http.MethodPut, "/v1/services/requisition", requisitionDoc},
		{http.MethodPost, khepriPerms, `{"group": "portfolio__v1__khepri", "operations": ["CHANGE"]}`},
		{http.MethodPut, khepriConsent, `true`},
	}
	for _, w := range writes {
		for _, auth := range []string{"", "Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer wrong", "Bearer " + adminToken + "x", "Bearer s3cret"} {
			a := call(t, h, w.method, w.path, w.body, auth)
			if a.code != http.StatusUnauthorized {
				t.Fatalf("%s %s with %q: %d %s", w.method, w.path, auth, a.code, a.body)
			}
			challenge := a.header.Get("WWW-Authenticate")
			if !strings.HasPrefix(challenge, `Bearer realm="verdict"`) {
				t.Errorf("WWW-Authenticate = %q", challenge)
			}
			if given := strings.HasPrefix(auth, "Bearer ") && len(auth) > len("Bearer "); given != strings.Contains(challenge, "invalid_token") {
				t.Errorf("with %q the challenge is %q", auth, challenge)
			}
		}
	}
	// The scheme is case-insensitive; white space around the token is not
	// part of it.
	for i, w := range writes {
		auth := []string{"Bearer " + adminToken, "bearer " + adminToken, "BEARER  " + adminToken + " "}[i]
		if a := call(t, h, w.method, w.path, w.body, auth); a.code/100 != 2 {
			t.Fatalf("%s %s with the token: %d %s", w.method, w.path, a.code, a.body)
		}
	}
	// Reads and decisions need no token.
	for _, path := range []string{"/v1/services", "/v1/services/requisition", khepriPerms, khepriPerms + "/portfolio__v1__khepri", khepriConsent, "/v1/status"} {
		if a := call(t, h, http.MethodGet, path, "", ""); a.code != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, a.code, a.body)
		}
	}
	a := call(t, h, http.MethodPost, "/v1/decide", `{"tenant":"fineract","member":"imhotep","application":"rhythm","request":{"method":"POST","path":"/portfolio/v1/khepri/beats"}}`, "")
	var d decision.Decision
	a.decode(t, &d)
	if a.code != http.StatusOK || !d.Allow {
		t.Errorf("decision after request and consent: %d %s", a.code, a.body)
	}
}

func TestWithoutAdminTokenWritesAreOpen(t *testing.T) {
	h := runtimeAPI(t, "")
	if a := call(t, h, http.MethodPut, "/v1/services/requisition", requisitionDoc, ""); a.code != http.StatusOK {
		t.Fatalf("%d %s", a.code, a.body)
	}
}

func TestServiceEndpoints(t *testing.T) {
	h := runtimeAPI(t, "")
	decide := func() decision.Decision {
		a := call(t, h, http.MethodPost, "/v1/decide", `{"tenant":"bank","member":"admin","request":{"method":"POST","path":"/api/requisitions/42/approve"}}`, "")
		var d decision.Decision
		a.decode(t, &d)
		return d
	}
	if d := decide(); d.Allow || d.Reasons[0].Code != "route.unknown" {
		t.Fatalf("before registration: %+v", d)
	}

	a := call(t, h, http.MethodPut, "/v1/services/requisition", `{"routes": [{"method": "POST", "path": "/api/requisitions/{id}/approve", "action": "requisition:requisitions:approve"}], "rights": ["APPROVE"]}`, "")
	var reg httpapi.RegistrationResponse
	a.decode(t, &reg)
	if a.code != http.StatusOK || !reg.Created || !reg.Changed || !reg.Persisted || reg.Source != "registration" ||
		reg.RegisteredAt == nil || reg.Generation == 0 || len(reg.Warnings) != 1 || reg.Warnings[0].Entry != "rights" {
		t.Fatalf("PUT: %d %s", a.code, a.body)
	}
	if d := decide(); !d.Allow {
		t.Fatalf("after registration: %+v", d)
	}
	again := call(t, h, http.MethodPut, "/v1/services/requisition", `{"rights": ["APPROVE"], "routes": [{"action": "requisition:requisitions:approve", "path": "/api/requisitions/{id}/approve", "method": "POST"}]}`, "")
	var reg2 httpapi.RegistrationResponse
	again.decode(t, &reg2)
	if again.code != http.StatusOK || reg2.Created || reg2.Changed || !reg2.RegisteredAt.Equal(*reg.RegisteredAt) || reg2.Generation != reg.Generation {
		t.Fatalf("idempotent PUT: %d %s", again.code, again.body)
	}

	// A registration overrides the demo bundle's service of the same name.
	over := call(t, h, http.MethodPut, "/v1/services/example03", `{"routes": [{"method": "GET", "path": "/buildName", "action": "example03:buildName:get"}]}`, "")
	var reg3 httpapi.RegistrationResponse
	over.decode(t, &reg3)
	if over.code != http.StatusOK || reg3.Bundle != "demo" {
		t.Fatalf("override: %d %s", over.code, over.body)
	}

	var one loader.ServiceInfo
	call(t, h, http.MethodGet, "/v1/services/requisition", "", "").decode(t, &one)
	if one.Name != "requisition" || one.Source != "registration" || !strings.Contains(string(one.Document), "approve") {
		t.Errorf("GET one: %+v", one)
	}
	var list struct{ Services []loader.ServiceInfo }
	call(t, h, http.MethodGet, "/v1/services", "", "").decode(t, &list)
	sources := map[string]string{}
	for _, s := range list.Services {
		sources[s.Name] = s.Source
	}
	if sources["requisition"] != "registration" || sources["example03"] != "registration" || sources["portfolios"] != "bundle" {
		t.Errorf("GET list: %v", sources)
	}

	for _, method := range []string{http.MethodDelete, http.MethodPatch, http.MethodPost} {
		a := call(t, h, method, "/v1/services/requisition", "", "")
		if a.code != http.StatusMethodNotAllowed || a.header.Get("Allow") != "GET, HEAD, PUT" || !strings.Contains(a.body, "never deleted") {
			t.Errorf("%s: %d %v %s", method, a.code, a.header, a.body)
		}
	}
	if d := decide(); !d.Allow {
		t.Error("DELETE removed the registration")
	}

	if a := call(t, h, http.MethodGet, "/v1/services/nope", "", ""); a.code != http.StatusNotFound {
		t.Errorf("GET unknown: %d %s", a.code, a.body)
	}
	bad := call(t, h, http.MethodPut, "/v1/services/requisition", `{"routes": [{"method": "GET", "path": "no-slash"}]}`, "")
	var problems struct {
		Code     string
		Problems []struct{ Entry, Message string }
	}
	bad.decode(t, &problems)
	if bad.code != http.StatusBadRequest || problems.Code != "invalid_service" || len(problems.Problems) != 2 ||
		problems.Problems[0].Entry != "routes[0].path" {
		t.Errorf("invalid document: %d %s", bad.code, bad.body)
	}
	for _, body := range []string{`[]`, `null`, `"x"`, `{`, `{} {}`} {
		if a := call(t, h, http.MethodPut, "/v1/services/requisition", body, ""); a.code != http.StatusBadRequest {
			t.Errorf("PUT %s: %d %s", body, a.code, a.body)
		}
	}
	if a := call(t, h, http.MethodPut, "/v1/services/bad%20name", `{}`, ""); a.code != http.StatusBadRequest {
		t.Errorf("PUT a bad name: %d %s", a.code, a.body)
	}
	if d := decide(); !d.Allow {
		t.Error("a refused PUT changed the registration")
	}
}

func TestDelegationEndpoints(t *testing.T) {
	h := runtimeAPI(t, "")
	beat := func() decision.Decision {
		a := call(t, h, http.MethodPost, "/v1/decide", `{"tenant":"fineract","member":"imhotep","application":"rhythm","request":{"method":"POST","path":"/portfolio/v1/khepri/beats"}}`, "")
		var d decision.Decision
		a.decode(t, &d)
		return d
	}
	last := func(d decision.Decision) string { return d.Reasons[len(d.Reasons)-1].Code }
	if d := beat(); last(d) != "delegation.not_requested" {
		t.Fatalf("before: %+v", d.Reasons)
	}
	// Before the request, a consent is refused: the application never asked.
	if a := call(t, h, http.MethodPut, khepriConsent, `true`, ""); a.code != http.StatusNotFound || !strings.Contains(a.body, "never asked") {
		t.Fatalf("consent before the request: %d %s", a.code, a.body)
	}

	a := call(t, h, http.MethodPost, khepriPerms, `{"group": "portfolio__v1__khepri", "operations": ["CHANGE"]}`, "")
	var resp httpapi.DelegationResponse
	a.decode(t, &resp)
	if a.code != http.StatusCreated || !resp.Created || !resp.Persisted || resp.Group != "portfolio__v1__khepri" ||
		len(resp.Operations) != 1 || resp.RequestedAt == nil {
		t.Fatalf("POST: %d %s", a.code, a.body)
	}
	if a := call(t, h, http.MethodPost, khepriPerms, `{"group": "portfolio__v1__khepri", "operations": ["CHANGE"]}`, ""); a.code != http.StatusOK ||
		!strings.Contains(a.body, `"created":false`) || !strings.Contains(a.body, `"changed":false`) {
		t.Errorf("POST again: %d %s", a.code, a.body)
	}
	if d := beat(); last(d) != "delegation.not_enabled" {
		t.Fatalf("after the request: %+v", d.Reasons)
	}

	if a := call(t, h, http.MethodGet, khepriConsent, "", ""); a.code != http.StatusOK || strings.TrimSpace(a.body) != "false" {
		t.Errorf("GET consent: %d %s", a.code, a.body)
	}
	c := call(t, h, http.MethodPut, khepriConsent, ` true `, "")
	var cr httpapi.ConsentResponse
	c.decode(t, &cr)
	if c.code != http.StatusOK || !cr.Enabled || !cr.Changed || !cr.Persisted || cr.Member != "imhotep" {
		t.Fatalf("PUT consent: %d %s", c.code, c.body)
	}
	if a := call(t, h, http.MethodGet, khepriConsent, "", ""); strings.TrimSpace(a.body) != "true" {
		t.Errorf("GET consent: %s", a.body)
	}
	if d := beat(); !d.Allow {
		t.Fatalf("after the consent: %+v", d.Reasons)
	}

	var list httpapi.PermissionsResponse
	call(t, h, http.MethodGet, khepriPerms, "", "").decode(t, &list)
	if list.Tenant != "fineract" || list.Application != "rhythm" || len(list.Permissions) != 2 {
		t.Errorf("GET list: %+v", list)
	}
	var one loader.DelegationInfo
	call(t, h, http.MethodGet, khepriPerms+"/portfolio__v1__khepri", "", "").decode(t, &one)
	if len(one.EnabledBy) != 1 || one.EnabledBy[0] != "imhotep" || !one.Consents["imhotep"].Enabled {
		t.Errorf("GET one: %+v", one)
	}

	if a := call(t, h, http.MethodPut, khepriConsent, `false`, ""); a.code != http.StatusOK {
		t.Fatalf("withdraw: %d %s", a.code, a.body)
	}
	if d := beat(); last(d) != "delegation.not_enabled" {
		t.Fatalf("after the withdrawal: %+v", d.Reasons)
	}

	notFound := []struct{ method, path, body, mention string }{
		{http.MethodPost, "/v1/tenants/nope/applications/rhythm/permissions", `{"group": "portfolio__v1__khepri", "operations": ["READ"]}`, "unknown tenant"},
		{http.MethodPost, khepriPerms, `{"group": "nope__v1__x", "operations": ["READ"]}`, "unknown permittable group"},
		{http.MethodPut, khepriPerms + "/portfolio__v1__khepri/users/nobody/enabled", `true`, "no member"},
		{http.MethodPut, "/v1/tenants/fineract/applications/accounting/permissions/portfolio__v1__khepri/users/imhotep/enabled", `true`, "never asked"},
		{http.MethodGet, "/v1/tenants/fineract/applications/accounting/permissions/portfolio__v1__khepri/users/imhotep/enabled", ``, "never asked"},
		{http.MethodGet, "/v1/tenants/fineract/applications/accounting/permissions/portfolio__v1__khepri", ``, "never asked"},
		{http.MethodGet, "/v1/tenants/nope/applications/rhythm/permissions", ``, "unknown tenant"},
		{http.MethodPut, "/v1/tenants/nope/applications/rhythm/permissions/portfolio__v1__khepri/users/imhotep/enabled", `true`, "unknown tenant"},
	}
	for _, n := range notFound {
		a := call(t, h, n.method, n.path, n.body, "")
		var e httpapi.ErrorBody
		a.decode(t, &e)
		if a.code != http.StatusNotFound || e.Code != "not_found" || !strings.Contains(e.Message, n.mention) {
			t.Errorf("%s %s: %d %s", n.method, n.path, a.code, a.body)
		}
	}
	badRequests := []struct{ method, path, body, field string }{
		{http.MethodPost, khepriPerms, `{"group": "portfolio__v1__khepri", "operations": ["WRITE"]}`, "operations"},
		{http.MethodPost, khepriPerms, `{"group": "portfolio__v1__khepri"}`, "operations"},
		{http.MethodPost, khepriPerms, `{"operations": ["READ"]}`, "group"},
		{http.MethodPost, khepriPerms, `{"group": "portfolio__v1__khepri", "operations": ["READ"], "extra": 1}`, "extra"},
		{http.MethodPut, khepriConsent, `"yes"`, ""},
		{http.MethodPut, khepriConsent, `null`, ""},
		{http.MethodPut, khepriConsent, ``, ""},
		{http.MethodPut, khepriConsent, `true false`, ""},
	}
	for _, b := range badRequests {
		a := call(t, h, b.method, b.path, b.body, "")
		var e httpapi.ErrorBody
		a.decode(t, &e)
		if a.code != http.StatusBadRequest || e.Field != b.field {
			t.Errorf("%s %s %s: %d %s", b.method, b.path, b.body, a.code, a.body)
		}
	}
}

func TestRuntimeEndpointsWithoutRuntime(t *testing.T) {
	h := demoAPI(t)
	for _, c := range []struct{ method, path, body string }{
		{http.MethodGet, "/v1/services", ""},
		{http.MethodPut, "/v1/services/x", "{}"},
		{http.MethodGet, khepriPerms, ""},
	} {
		if a := call(t, h, c.method, c.path, c.body, ""); a.code != http.StatusNotFound {
			t.Errorf("%s %s: %d %s", c.method, c.path, a.code, a.body)
		}
	}
}
