package loader

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/internal/testfiles"
	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/loader/state"
)

// A Fineract CN world split in two bundles: the catalog declares identity
// (with the group rhythm needs to ask for permissions); portfolio is
// registered at run time by the tests.
var cnCatalog = map[string]string{
	".manifest": `{"revision": "c1", "roots": ["verdict/catalog"]}`,
	"verdict/catalog/data.yaml": `
services:
  identity:
    routes:
      - {method: POST, path: "/identity/v1/applications/{app}/permissions", action: "identity:permissions:request"}
    permittable_groups:
      identity__v1__app_self: [{method: POST, path: "/identity/v1/applications/{app}/permissions"}]
`,
}

func cnTenant(revision, delegations string) map[string]string {
	return map[string]string{
		".manifest": `{"revision": "` + revision + `", "roots": ["verdict/tenants/cn"]}`,
		"verdict/tenants/cn/data.yaml": `
name: Fineract CN
members:
  antony: {is_admin: true}
  imhotep: {policies: [self]}
access_policies:
  self:
    Statement:
      - {Effect: Allow, Action: ["identity:*", "portfolio:*"], Resource: "*"}
` + delegations,
	}
}

const appSelf = `
delegations:
  rhythm:
    identity__v1__app_self: {operations: [CHANGE], enabled_by: [imhotep]}
`

func portfolioDoc(t *testing.T, extra string) map[string]any {
	t.Helper()
	src := `{"routes": [
	    {"method": "POST", "path": "/portfolio/v1/khepri/beats", "action": "portfolio:khepri:beat"},
	    {"method": "GET", "path": "/portfolio/v1/cases/{id}", "action": "portfolio:cases:get"}` + extra + `],
	  "permittable_groups": {"portfolio__v1__khepri": [{"method": "POST", "path": "/portfolio/v1/khepri/beats"}]}}`
	var doc map[string]any
	dec := json.NewDecoder(strings.NewReader(src))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// cnWorld loads the catalog and the cn tenant from directories and returns
// the loader, the engine and the tenant bundle's directory.
func cnWorld(t *testing.T, stateDir string) (*Loader, *decision.Engine, Source) {
	t.Helper()
	l, engine := newTestLoader(t)
	if stateDir != "" {
		if err := l.OpenState(context.Background(), stateDir, StateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tenant := loadCN(t, l)
	return l, engine, tenant
}

// loadCN loads the catalog and the cn tenant into l.
func loadCN(t *testing.T, l *Loader) Source {
	t.Helper()
	root := t.TempDir()
	testfiles.Write(t, filepath.Join(root, "catalog"), cnCatalog)
	testfiles.Write(t, filepath.Join(root, "cn"), cnTenant("t1", appSelf))
	catalog := Source{Name: "catalog", Location: filepath.Join(root, "catalog")}
	tenant := Source{Name: "cn", Location: filepath.Join(root, "cn")}
	if _, err := l.LoadAll(context.Background(), []Source{catalog, tenant}); err != nil {
		t.Fatal(err)
	}
	return tenant
}

func decide(t *testing.T, engine *decision.Engine, member, app, method, path string) *decision.Decision {
	t.Helper()
	d, err := engine.Decide(context.Background(), &decision.Request{Tenant: "cn", Member: member, Application: app,
		Request: &decision.HTTPRequest{Method: method, Path: path}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func codes(d *decision.Decision) []string {
	out := make([]string, len(d.Reasons))
	for i, r := range d.Reasons {
		out[i] = r.Code
	}
	return out
}

func wantCodes(t *testing.T, d *decision.Decision, allow bool, want ...string) {
	t.Helper()
	if d.Allow != allow || !reflect.DeepEqual(codes(d), want) {
		t.Fatalf("decision allow=%v %v, want allow=%v %v\n%+v", d.Allow, codes(d), allow, want, d.Reasons)
	}
}

func TestRegisterServiceTakesEffectForTheNextDecision(t *testing.T) {
	l, engine, _ := cnWorld(t, "")
	ctx := t.Context()
	wantCodes(t, decide(t, engine, "antony", "", "POST", "/portfolio/v1/khepri/beats"), false, "route.unknown")
	before := engine.Current().Number

	c, gen, err := l.RegisterService(ctx, "portfolio", portfolioDoc(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Stored || c.Previous != nil || c.Persisted || gen != before+1 || engine.Current().Number != gen {
		t.Fatalf("registration: stored=%v previous=%v persisted=%v generation %d (was %d)", c.Stored, c.Previous, c.Persisted, gen, before)
	}
	wantCodes(t, decide(t, engine, "antony", "", "POST", "/portfolio/v1/khepri/beats"), true, "iam.admin")
	if d := decide(t, engine, "antony", "", "POST", "/portfolio/v1/khepri/beats"); d.Revision["catalog"] != "c1" {
		t.Errorf("revisions after a registration: %v", d.Revision)
	}

	// The same document again changes nothing.
	c, gen2, err := l.RegisterService(ctx, "portfolio", portfolioDoc(t, ""))
	if err != nil || c.Stored || c.Previous == nil || gen2 != gen {
		t.Fatalf("repeat: stored=%v previous=%v generation %d, %v", c.Stored, c.Previous != nil, gen2, err)
	}

	// An invalid document is refused with every problem; nothing changes.
	bad := portfolioDoc(t, `, {"method": "FETCH", "path": "nowhere", "action": "x:y:z"}`)
	_, _, err = l.RegisterService(ctx, "portfolio", bad)
	var ve *acl.ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 2 || ve.Problems[0].Entry != "routes[2].path" {
		t.Fatalf("invalid document: %v", err)
	}
	if engine.Current().Number != gen {
		t.Error("a refused registration installed a generation")
	}
	wantCodes(t, decide(t, engine, "antony", "", "POST", "/portfolio/v1/khepri/beats"), true, "iam.admin")

	// A registration overrides the bundle's service of the same name.
	c, _, err = l.RegisterService(ctx, "identity", map[string]any{"routes": []any{
		map[string]any{"method": "GET", "path": "/identity/v2/whoami", "action": "identity:me:get"}}})
	if err != nil || c.OverridesBundle != "catalog" {
		t.Fatalf("override: %v, overrides %q", err, c.OverridesBundle)
	}
	wantCodes(t, decide(t, engine, "antony", "", "POST", "/identity/v1/applications/rhythm/permissions"), false, "route.unknown")
	wantCodes(t, decide(t, engine, "antony", "", "GET", "/identity/v2/whoami"), true, "iam.admin")

	info, err := l.Service("identity")
	if err != nil || info.Source != "registration" || info.Bundle != "catalog" || info.RegisteredAt == nil {
		t.Fatalf("Service(identity) = %+v, %v", info, err)
	}
	all, err := l.Services()
	if err != nil || len(all) != 2 || all[0].Name != "identity" || all[1].Name != "portfolio" {
		t.Fatalf("Services() = %+v, %v", all, err)
	}
	var nf *NotFoundError
	if _, err := l.Service("nope"); !errors.As(err, &nf) {
		t.Errorf("Service(nope) = %v", err)
	}

	st := flush(t, l)
	if st.Runtime.Registrations != 2 || st.Runtime.Applied != 2 || st.Runtime.Rejected != 1 || st.Runtime.Persistent ||
		st.Runtime.LastRejection == nil || st.Runtime.LastRejection.Subject.Type != SubjectService {
		t.Errorf("runtime status = %+v", st.Runtime)
	}
}

func TestRegisteredGroupsResolveBundleReferences(t *testing.T) {
	l, engine, tenant := cnWorld(t, "")
	ctx := t.Context()
	// The tenant now delegates a group no service declares yet: rejected,
	// the last good version keeps serving.
	khepri := appSelf + "    portfolio__v1__khepri: {operations: [CHANGE], enabled_by: [imhotep]}\n"
	testfiles.Write(t, tenant.Location, cnTenant("t2", khepri))
	err := l.Reload(ctx, tenant)
	if err == nil || !strings.Contains(err.Error(), `unknown permittable group "portfolio__v1__khepri"`) ||
		!strings.Contains(err.Error(), "delegations.rhythm.portfolio__v1__khepri") {
		t.Fatalf("reload = %v", err)
	}
	if d := decide(t, engine, "imhotep", "", "GET", "/x"); d.Revision["cn"] != "t1" {
		t.Fatalf("revision %v", d.Revision)
	}
	// Registering portfolio declares the group: the rejected version fits
	// now and is accepted without another file event.
	if _, _, err := l.RegisterService(ctx, "portfolio", portfolioDoc(t, "")); err != nil {
		t.Fatal(err)
	}
	if d := decide(t, engine, "imhotep", "rhythm", "POST", "/portfolio/v1/khepri/beats"); d.Revision["cn"] != "t2" {
		t.Fatalf("the tenant was not retried: %v", d.Revision)
	} else {
		wantCodes(t, d, true, "iam.allow", "resource.any", "delegation.allow")
	}
	if st := flush(t, l); len(st.Failing) != 0 {
		t.Errorf("still failing: %v", st.Failing)
	}
}

func TestDelegationRequestConsentWithdraw(t *testing.T) {
	l, engine, tenant := cnWorld(t, "")
	ctx := t.Context()
	if _, _, err := l.RegisterService(ctx, "portfolio", portfolioDoc(t, "")); err != nil {
		t.Fatal(err)
	}
	beat := func() *decision.Decision {
		return decide(t, engine, "imhotep", "rhythm", "POST", "/portfolio/v1/khepri/beats")
	}
	wantCodes(t, beat(), false, "iam.allow", "resource.any", "delegation.not_requested")
	// The bundle-declared entry works as is.
	wantCodes(t, decide(t, engine, "imhotep", "rhythm", "POST", "/identity/v1/applications/rhythm/permissions"),
		true, "iam.allow", "resource.any", "delegation.allow")

	c, err := l.RequestDelegation(ctx, "cn", "rhythm", "portfolio__v1__khepri", []string{"change"})
	if err != nil || !c.Created || !c.Stored || !reflect.DeepEqual(c.Operations, []string{"CHANGE"}) {
		t.Fatalf("request: %+v, %v", c, err)
	}
	wantCodes(t, beat(), false, "iam.allow", "resource.any", "delegation.not_enabled")
	// Asking again is idempotent.
	if c, err := l.RequestDelegation(ctx, "cn", "rhythm", "portfolio__v1__khepri", []string{"CHANGE"}); err != nil || c.Created || c.Stored {
		t.Fatalf("repeat request: %+v, %v", c, err)
	}

	if _, err := l.SetConsent(ctx, "cn", "rhythm", "portfolio__v1__khepri", "imhotep", true); err != nil {
		t.Fatal(err)
	}
	wantCodes(t, beat(), true, "iam.allow", "resource.any", "delegation.allow")
	if ok, err := l.Consent("cn", "rhythm", "portfolio__v1__khepri", "imhotep"); !ok || err != nil {
		t.Errorf("Consent = %v, %v", ok, err)
	}

	// A bundle reload keeps run-time entries.
	testfiles.Write(t, tenant.Location, cnTenant("t2", appSelf))
	if err := l.Reload(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	wantCodes(t, beat(), true, "iam.allow", "resource.any", "delegation.allow")

	// Withdraw, also from the bundle-declared entry.
	if _, err := l.SetConsent(ctx, "cn", "rhythm", "portfolio__v1__khepri", "imhotep", false); err != nil {
		t.Fatal(err)
	}
	if _, err := l.SetConsent(ctx, "cn", "rhythm", "identity__v1__app_self", "imhotep", false); err != nil {
		t.Fatal(err)
	}
	wantCodes(t, beat(), false, "iam.allow", "resource.any", "delegation.not_enabled")
	wantCodes(t, decide(t, engine, "imhotep", "rhythm", "POST", "/identity/v1/applications/rhythm/permissions"),
		false, "iam.allow", "resource.any", "delegation.not_enabled")

	list, err := l.Delegations("cn", "rhythm")
	if err != nil || len(list) != 2 {
		t.Fatalf("Delegations = %+v, %v", list, err)
	}
	if d := list[0]; d.Group != "identity__v1__app_self" || !d.InBundle || len(d.EnabledBy) != 0 || d.Consents["imhotep"].Enabled {
		t.Errorf("app_self = %+v", d)
	}
	if d := list[1]; d.Group != "portfolio__v1__khepri" || d.InBundle || d.RequestedAt == nil || len(d.EnabledBy) != 0 {
		t.Errorf("khepri = %+v", d)
	}
	if none, err := l.Delegations("cn", "someone"); err != nil || len(none) != 0 {
		t.Errorf("an application that asked nothing: %+v, %v", none, err)
	}
}

func TestDelegationRefusals(t *testing.T) {
	l, _, _ := cnWorld(t, "")
	ctx := t.Context()
	notFound := func(what string, err error) {
		t.Helper()
		var nf *NotFoundError
		if !errors.As(err, &nf) || nf.What != what {
			t.Errorf("want a 404 about the %s, got %v", what, err)
		}
	}
	_, err := l.RequestDelegation(ctx, "nope", "rhythm", "identity__v1__app_self", []string{"READ"})
	notFound("tenant", err)
	_, err = l.RequestDelegation(ctx, "cn", "rhythm", "portfolio__v1__khepri", []string{"READ"})
	notFound("permittable group", err)
	_, err = l.SetConsent(ctx, "cn", "rhythm", "identity__v1__app_self", "nobody", true)
	notFound("member", err)
	_, err = l.SetConsent(ctx, "cn", "portfolio", "identity__v1__app_self", "imhotep", true)
	notFound("request", err)
	_, err = l.Consent("cn", "portfolio", "identity__v1__app_self", "imhotep")
	notFound("request", err)
	_, err = l.Delegation("cn", "portfolio", "identity__v1__app_self")
	notFound("request", err)
	_, err = l.Delegations("nope", "rhythm")
	notFound("tenant", err)

	var re *RequestError
	if _, err := l.RequestDelegation(ctx, "cn", "rhythm", "identity__v1__app_self", []string{"WRITE"}); !errors.As(err, &re) || re.Field != "operations" {
		t.Errorf("bad operation: %v", err)
	}
	if _, err := l.RequestDelegation(ctx, "cn", "rhythm", "identity__v1__app_self", nil); !errors.As(err, &re) {
		t.Errorf("no operation: %v", err)
	}
	if _, err := l.RequestDelegation(ctx, "cn", "rhy/thm", "identity__v1__app_self", []string{"READ"}); !errors.As(err, &re) || re.Field != "application" {
		t.Errorf("bad name: %v", err)
	}
	if st := flush(t, l); st.Runtime.Rejected != 6 || st.Runtime.Applied != 0 {
		t.Errorf("runtime status = %+v", st.Runtime)
	}
}

func TestStateSurvivesARestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	ctx := t.Context()
	{
		l, engine, _ := cnWorld(t, dir)
		if _, _, err := l.RegisterService(ctx, "portfolio", portfolioDoc(t, "")); err != nil {
			t.Fatal(err)
		}
		if c, err := l.RequestDelegation(ctx, "cn", "rhythm", "portfolio__v1__khepri", []string{"CHANGE"}); err != nil || !c.Persisted {
			t.Fatalf("request: %+v, %v", c, err)
		}
		if c, err := l.SetConsent(ctx, "cn", "rhythm", "portfolio__v1__khepri", "imhotep", true); err != nil || !c.Persisted {
			t.Fatalf("consent: %+v, %v", c, err)
		}
		if _, err := l.SetConsent(ctx, "cn", "rhythm", "identity__v1__app_self", "imhotep", false); err != nil {
			t.Fatal(err)
		}
		wantCodes(t, decide(t, engine, "imhotep", "rhythm", "POST", "/portfolio/v1/khepri/beats"), true, "iam.allow", "resource.any", "delegation.allow")
		if st := flush(t, l); !st.Runtime.Persistent || st.Runtime.StateDir == "" {
			t.Errorf("runtime status = %+v", st.Runtime)
		}
	}
	l, engine, _ := cnWorld(t, dir)
	wantCodes(t, decide(t, engine, "imhotep", "rhythm", "POST", "/portfolio/v1/khepri/beats"), true, "iam.allow", "resource.any", "delegation.allow")
	wantCodes(t, decide(t, engine, "imhotep", "rhythm", "POST", "/identity/v1/applications/rhythm/permissions"),
		false, "iam.allow", "resource.any", "delegation.not_enabled")
	st := flush(t, l)
	if len(st.Runtime.StateProblems) != 0 {
		t.Errorf("state problems = %+v", st.Runtime.StateProblems)
	}
	if st.Runtime.Registrations != 1 || st.Runtime.DelegationRequests != 1 || st.Runtime.Consents != 2 {
		t.Errorf("runtime status = %+v", st.Runtime)
	}
}

// A state entry that cannot be read or restored never widens access: the
// state is refused (verdict run does not start) and the file is left as it
// is, unless the operator asks for it to be quarantined, which moves it
// aside and says so in the status.
func TestUnusableStateEntryIsRefusedOrQuarantined(t *testing.T) {
	ctx := t.Context()
	// The withdrawal of imhotep's consent, which the bundle declares.
	const withdrawal = "cn,rhythm,identity__v1__app_self.json"
	tests := []struct {
		name    string
		content string // the withdrawal file's new content
		want    string // in the problem's message
	}{
		{"truncated", `{"version":1,"tenant":"cn","applica`, "not a valid state file: unexpected EOF"},
		{"empty", ``, "not a valid state file: EOF"},
		{"garbage", "\x00\x01not json", "not a valid state file"},
		{"a future format", `{"version":2,"tenant":"cn","application":"rhythm","group":"identity__v1__app_self"}`, "format version 2"},
		{"an operation no longer known", `{"version":1,"tenant":"cn","application":"rhythm","group":"identity__v1__app_self",` +
			`"request":{"operations":["FLY"],"at":"2026-01-01T00:00:00Z"},"consents":{"imhotep":{"enabled":false,"at":"2026-01-01T00:00:00Z"}}}`,
			`unknown operation "FLY"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			{
				l, engine, _ := cnWorld(t, dir)
				if _, err := l.SetConsent(ctx, "cn", "rhythm", "identity__v1__app_self", "imhotep", false); err != nil {
					t.Fatal(err)
				}
				wantCodes(t, decide(t, engine, "imhotep", "rhythm", "POST", "/identity/v1/applications/rhythm/permissions"),
					false, "iam.allow", "resource.any", "delegation.not_enabled")
			}
			file := filepath.Join(dir, state.DelegationsDir, withdrawal)
			if err := os.WriteFile(file, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}

			// Refused, naming the file and the problem; nothing is written.
			l, _ := newTestLoader(t)
			err := l.OpenState(ctx, dir, StateOptions{})
			var unusable *UnusableStateError
			if !errors.As(err, &unusable) || len(unusable.Problems) != 1 || unusable.Problems[0].File != file ||
				!strings.Contains(unusable.Problems[0].Message, tt.want) || !strings.Contains(err.Error(), file) {
				t.Fatalf("OpenState = %v, want an *UnusableStateError naming %s and %q", err, file, tt.want)
			}
			if data, err := os.ReadFile(file); err != nil || string(data) != tt.content {
				t.Errorf("the file was changed: %q, %v", data, err)
			}
			if l.StateDir() != "" {
				t.Errorf("the refused state directory takes changes")
			}

			// Quarantined on request: moved aside, reported in the status.
			l, engine := newTestLoader(t)
			if err := l.OpenState(ctx, dir, StateOptions{Quarantine: true}); err != nil {
				t.Fatal(err)
			}
			loadCN(t, l)
			if _, err := os.Stat(file); !os.IsNotExist(err) {
				t.Errorf("the file is still in place (%v)", err)
			}
			st := flush(t, l)
			if len(st.Runtime.StateProblems) != 1 || st.Runtime.StateProblems[0].File != file {
				t.Fatalf("state problems = %+v", st.Runtime.StateProblems)
			}
			msg := st.Runtime.StateProblems[0].Message
			_, moved, ok := strings.Cut(msg, " (moved to ")
			moved = strings.TrimSuffix(moved, ")")
			if !ok || !strings.HasPrefix(moved, filepath.Join(dir, state.QuarantineDir)) {
				t.Fatalf("state problem %q does not say where the file went", msg)
			}
			if data, err := os.ReadFile(moved); err != nil || string(data) != tt.content {
				t.Errorf("quarantined file %s: %q, %v", moved, data, err)
			}
			// What the entry held is lost, as the flag says: the bundle's
			// consent applies again.
			wantCodes(t, decide(t, engine, "imhotep", "rhythm", "POST", "/identity/v1/applications/rhythm/permissions"),
				true, "iam.allow", "resource.any", "delegation.allow")
			// The next start finds nothing wrong.
			again, _ := newTestLoader(t)
			if err := again.OpenState(ctx, dir, StateOptions{}); err != nil {
				t.Errorf("after the quarantine: %v", err)
			}
		})
	}
}

func TestRegistrationThatNoLongerValidatesIsRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	d, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.PutService(&state.ServiceFile{Name: "old", Document: json.RawMessage(`{"routes": [{"path": "no-slash", "viewset": "X"}]}`)}); err != nil {
		t.Fatal(err)
	}
	l, _ := newTestLoader(t)
	err = l.OpenState(t.Context(), dir, StateOptions{})
	var unusable *UnusableStateError
	if !errors.As(err, &unusable) || len(unusable.Problems) != 1 || unusable.Problems[0].File != d.ServicePath("old") ||
		!strings.Contains(unusable.Problems[0].Message, "service old: the registered document no longer validates") {
		t.Fatalf("OpenState = %v", err)
	}
	l, _ = newTestLoader(t)
	if err := l.OpenState(t.Context(), dir, StateOptions{Quarantine: true}); err != nil {
		t.Fatal(err)
	}
	if st := flush(t, l); st.Runtime.Registrations != 0 || len(st.Runtime.StateProblems) != 1 {
		t.Errorf("runtime status = %+v", st.Runtime)
	}
}

func TestAChangeThatCannotBeWrittenIsRolledBack(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	l, engine, _ := cnWorld(t, dir)
	// Make the services directory unusable: a file where it should be.
	services := filepath.Join(dir, state.ServicesDir)
	if err := os.RemoveAll(services); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(services, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	gen := engine.Current().Number
	_, _, err := l.RegisterService(t.Context(), "portfolio", portfolioDoc(t, ""))
	var pe *ProcessorError
	if !errors.As(err, &pe) || pe.Processor != "state-write" {
		t.Fatalf("RegisterService = %v, want a state-write error", err)
	}
	if engine.Current().Number != gen {
		t.Error("a change that was not written was installed")
	}
	wantCodes(t, decide(t, engine, "antony", "", "POST", "/portfolio/v1/khepri/beats"), false, "route.unknown")
	if all, _ := l.Services(); len(all) != 1 {
		t.Errorf("services after the failed write: %+v", all)
	}
}

func TestRuntimeChangesGoThroughThePipeline(t *testing.T) {
	l, _, _ := cnWorld(t, "")
	flush(t, l) // the bundle load's NOTIFY is not ours
	var mu sync.Mutex
	var log []string
	l.Pipeline().RegisterAsync(asyncRecorder{name: "rec", order: 999, mu: &mu, log: &log})
	ctx := t.Context()
	l.RegisterService(ctx, "portfolio", portfolioDoc(t, ""))
	l.RegisterService(ctx, "portfolio", portfolioDoc(t, ""))
	l.RequestDelegation(ctx, "cn", "rhythm", "portfolio__v1__khepri", []string{"READ"})
	l.SetConsent(ctx, "cn", "rhythm", "portfolio__v1__khepri", "imhotep", true)
	flush(t, l)
	want := []string{
		"rec:portfolio:NOTIFY",
		"rec:portfolio:NOTIFY",
		"rec:cn/rhythm/portfolio__v1__khepri:NOTIFY",
		"rec:cn/rhythm/portfolio__v1__khepri/imhotep:NOTIFY",
	}
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(log, want) {
		t.Errorf("NOTIFY events = %q, want %q", log, want)
	}
	names := map[string]bool{}
	for _, p := range l.Processors() {
		names[p.Name] = true
	}
	for _, n := range []string{"service-validate", "service-unchanged", "service-store", "delegation-check", "delegation-unchanged",
		"delegation-store", "state-restore", "state-write"} {
		if !names[n] {
			t.Errorf("GET /v1/processors does not list %s", n)
		}
	}
	if err := l.Pipeline().Disable("state-write"); err == nil {
		t.Error("state-write could be disabled")
	}
}

func TestConcurrentRuntimeChanges(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	l, engine, _ := cnWorld(t, dir)
	ctx := t.Context()
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			name := "svc" + string(rune('a'+i))
			doc := map[string]any{"routes": []any{map[string]any{"method": "GET", "path": "/" + name, "action": name + ":x:get"}}}
			if _, _, err := l.RegisterService(ctx, name, doc); err != nil {
				t.Error(err)
			}
			decide(t, engine, "antony", "", "GET", "/"+name)
		}(i)
	}
	wg.Wait()
	for i := 0; i < 16; i++ {
		name := "svc" + string(rune('a'+i))
		wantCodes(t, decide(t, engine, "antony", "", "GET", "/"+name), true, "iam.admin")
	}
	if c, err := mustOpen(t, dir).Load(); err != nil || len(c.Services) != 16 {
		t.Errorf("%d services on disk", len(c.Services))
	}
}

func mustOpen(t *testing.T, dir string) *state.Dir {
	t.Helper()
	d, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Services whose names once shared a state file (a name too long to spell
// out in a file name, and the name spelled like that name's hashed file)
// each survive a restart with their own document.
func TestRegisteredNamesKeepTheirOwnStateFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	ctx := t.Context()
	long := strings.Repeat("é", 60) // 120 bytes, 360 once escaped
	sum := sha256.Sum256([]byte(long))
	names := []string{long, "sha256-" + hex.EncodeToString(sum[:]),
		strings.TrimSuffix(filepath.Base(mustOpen(t, dir).ServicePath(long)), ".json")}
	doc := func(i int) map[string]any {
		return map[string]any{"routes": []any{map[string]any{"method": "GET", "path": fmt.Sprintf("/s%d", i), "action": fmt.Sprintf("s%d:x:get", i)}}}
	}
	{
		l, _, _ := cnWorld(t, dir)
		for i, name := range names {
			if _, _, err := l.RegisterService(ctx, name, doc(i)); err != nil {
				t.Fatalf("%q: %v", name, err)
			}
		}
	}
	l, _, _ := cnWorld(t, dir)
	for i, name := range names {
		info, err := l.Service(name)
		if err != nil || info.Source != "registration" || !strings.Contains(string(info.Document), fmt.Sprintf("/s%d", i)) {
			t.Errorf("after a restart, %q = %+v, %v", name, info, err)
		}
	}
}
