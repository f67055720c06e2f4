package decision_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/loader/generation"
	"github.com/verdict-authz/verdict/loader/store"

	policy "github.com/verdict-authz/verdict/rego"
)

// FuzzSOAJSPackageLayer checks layer 3 (SOAJS packages, README "How a decision is made") against a
// plain reading of the SPEC. The fuzzer's bytes drive a generator of ACL
// documents - a package's, an application's override, a member's overrides
// by package and by key - including malformed ones. For each:
//   - acl.Parse (plus the loader's reference checks) accepts exactly the
//     well-formed documents;
//   - on a world built from an accepted one, every decision for a set of
//     members, keys and requests equals what the SPEC's rules give: allow or
//     the deny with its SOAJS code and status 401 - in particular never an
//     allow when no ACL names the service (154);
//   - no decision panics or fails with error.internal.
//
// Run it with
//
//	go test ./decision/ -run '^$' -fuzz '^FuzzSOAJSPackageLayer$' -fuzztime 90s
func FuzzSOAJSPackageLayer(f *testing.F) {
	for _, seed := range []string{
		"",
		"\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01",
		"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17",
		"\x03\x02\x00\x00\x01\x01\x02\x00\x00\x03\x02\x01\x00\x00\x01\x00\x02\x00\x00\x00\x01\x00\x00\x01\x00",
		"\x05\x00\x01\x00\x03\x02\x02\x01\x00\x00\x00\x00\x00\x00\x02\x01\x00\x01\x03\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
		"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4\xf3\xf2\xf1\xf0\xef\xee\xed\xec\xeb\xea\xe9\xe8\xe7\xe6",
	} {
		f.Add([]byte(seed))
	}
	engine, pol := soajsEngine(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSOAJSWorld(t, engine, pol, data)
	})
}

// TestSOAJSPackageLayerRandom runs the fuzz target's check on random inputs,
// so that plain go test covers more than the seeds: 60 worlds (20 with
// -short), or VERDICT_SOAJS_WORLDS.
func TestSOAJSPackageLayerRandom(t *testing.T) {
	n := 60
	if testing.Short() {
		n = 20
	}
	if s := os.Getenv("VERDICT_SOAJS_WORLDS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatalf("VERDICT_SOAJS_WORLDS: %v", err)
		}
	}
	engine, pol := soajsEngine(t)
	rng := rand.New(rand.NewPCG(11, 12))
	for range n {
		data := make([]byte, 40+rng.IntN(120))
		for i := range data {
			data[i] = byte(rng.IntN(256))
		}
		checkSOAJSWorld(t, engine, pol, data)
	}
}

// checkSOAJSWorld generates the world the bytes describe and checks it.
func checkSOAJSWorld(t *testing.T, engine *decision.Engine, pol *policy.Policy, data []byte) {
	t.Helper()
	g := &soajsGen{data: data, valid: true}
	w := g.world()

	var ps acl.Problems
	doc := acl.Parse(w.tree, nil, &ps)
	err := ps.Err()
	if err == nil {
		err = unresolvedRefs(doc)
	}
	if (err == nil) != g.valid {
		tree, _ := json.MarshalIndent(w.tree, "", " ")
		t.Fatalf("well-formed = %v, but Parse says: %v\n%s", g.valid, err, tree)
	}
	if err != nil {
		return
	}
	st, err := store.New()
	if err != nil {
		t.Fatal(err)
	}
	snap, err := st.Update(func(txn *store.WriteTxn) error {
		for _, s := range doc.Catalog.Services {
			if err := txn.PutService("fuzz", s); err != nil {
				return err
			}
		}
		for _, p := range doc.Catalog.Packages {
			if err := txn.PutPackage("fuzz", p); err != nil {
				return err
			}
		}
		for _, tn := range doc.Tenants {
			if err := txn.PutTenant("fuzz", tn); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	engine.Install(&generation.Generation{Number: 1, Facts: snap, Policy: pol, Revisions: map[string]string{"fuzz": "1"}})

	for _, q := range w.soajsQuestions() {
		d, err := engine.Decide(context.Background(), q.req)
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		for _, r := range d.Reasons {
			if r.Code == "error.internal" {
				t.Fatalf("%s: %s", q.name, r.Message)
			}
		}
		if d.Allow != q.want.allow || (!q.want.allow && lastDeny(d).Code != q.want.code) ||
			(!q.want.allow && lastDeny(d).SoajsCode != q.want.soajs) || d.Status != q.want.status {
			tree, _ := json.MarshalIndent(w.tree, "", " ")
			got, _ := json.MarshalIndent(d, "", " ")
			t.Fatalf("%s: want %+v, got\n%s\nworld:\n%s", q.name, q.want, got, tree)
		}
	}
}

var (
	soajsOnce   sync.Once
	soajsPolicy *policy.Policy
	soajsErr    error
)

func soajsEngine(tb testing.TB) (*decision.Engine, *policy.Policy) {
	soajsOnce.Do(func() {
		soajsPolicy, soajsErr = policy.CompilePolicy(context.Background(), nil, nil)
	})
	if soajsErr != nil {
		tb.Fatal(soajsErr)
	}
	return decision.NewEngine(slog.New(slog.NewTextHandler(io.Discard, nil))), soajsPolicy
}

// unresolvedRefs does what the loader's assembly does for one bundle: every
// package and service an ACL names must exist.
func unresolvedRefs(doc *acl.Document) error {
	for _, ref := range doc.Refs {
		switch ref.Kind {
		case acl.RefPackage:
			if doc.Catalog.Packages[ref.Name] == nil {
				return fmt.Errorf("unknown package %q", ref.Name)
			}
		case acl.RefService:
			if doc.Catalog.Services[ref.Name] == nil {
				return fmt.Errorf("unknown service %q", ref.Name)
			}
		}
	}
	return nil
}

func lastDeny(d *decision.Decision) decision.Reason {
	for i := len(d.Reasons) - 1; i >= 0; i-- {
		if d.Reasons[i].Effect == "deny" {
			return d.Reasons[i]
		}
	}
	return decision.Reason{}
}

// --- the generator ----------------------------------------------------------------

// soajsGen turns bytes into choices; past the end every choice is 0, and
// choice 0 is never a malformed one.
type soajsGen struct {
	data  []byte
	i     int
	valid bool
}

func (g *soajsGen) n(k int) int {
	if g.i >= len(g.data) {
		return 0
	}
	v := int(g.data[g.i]) % k
	g.i++
	return v
}

func (g *soajsGen) access() any {
	switch g.n(48) {
	case 0, 1:
		return false
	case 2, 3, 4:
		return true
	case 5:
		return []any{}
	case 6, 7:
		return []any{"gold"}
	case 8:
		return []any{"silver"}
	case 9:
		return []any{"gold", "silver"}
	case 10:
		return []any{"bronze"}
	case 11, 12:
		return []any{"silver", "gold"}
	case 46:
		g.valid = false
		return "yes"
	case 47:
		g.valid = false
		return []any{json.Number("1")}
	default:
		return g.n(2) == 0
	}
}

var aclTemplates = []string{"/a", "/b/{id}", "/b/:id", "/c", "/c/", "/d/{x}", "/zz", "/a/"}

func (g *soajsGen) apis() map[string]any {
	apis := map[string]any{}
	seen := map[string]bool{}
	for k := g.n(4); k > 0; k-- {
		tmpl := aclTemplates[g.n(len(aclTemplates))]
		if g.n(64) == 63 {
			tmpl = "nope"
			g.valid = false
		}
		if _, dup := apis[tmpl]; dup {
			continue
		}
		if key := specAPIKey(tmpl); seen[key] {
			if g.n(8) != 7 {
				continue
			}
			g.valid = false // the same route written twice
		} else {
			seen[key] = true
		}
		switch g.n(5) {
		case 0:
			apis[tmpl] = nil
		case 1:
			apis[tmpl] = map[string]any{}
		default:
			apis[tmpl] = map[string]any{"access": g.access()}
		}
	}
	return apis
}

func (g *soajsGen) permission() any {
	switch g.n(64) {
	case 0, 1, 2:
		return "restricted"
	case 3:
		return "all"
	case 4:
		return "open"
	case 5:
		g.valid = false
		return "bogus"
	case 6:
		g.valid = false
		return ""
	}
	return "restricted"
}

func (g *soajsGen) entry() map[string]any {
	e := map[string]any{}
	if g.n(3) != 0 {
		e["access"] = g.access()
	}
	if g.n(2) == 0 {
		e["apisPermission"] = g.permission()
	}
	if g.n(2) == 0 {
		e["apis"] = g.apis()
	}
	for _, m := range []string{"get", "post", "head", "delete", "put"} {
		if g.n(4) != 0 {
			continue
		}
		sec := map[string]any{}
		if g.n(2) == 0 {
			sec["apis"] = g.apis()
		}
		if g.n(2) == 0 {
			sec["apisPermission"] = g.permission()
		}
		e[m] = sec
	}
	if g.n(16) == 0 {
		e["comment"] = "an unknown field is a warning"
	}
	return e
}

func (g *soajsGen) acl() map[string]any {
	a := map[string]any{}
	if g.n(4) != 0 {
		a["svc"] = g.entry()
	}
	if g.n(3) == 0 {
		a["other"] = g.entry()
	}
	if g.n(96) == 95 {
		a["ghostsvc"] = map[string]any{}
		g.valid = false
	}
	return a
}

const (
	keyOne   = "k1-4ea5db4c70b6168aeede6a8a56cb4624"
	keyTwo   = "k2-4ea5db4c70b6168aeede6a8a56cb4624"
	keyOther = "kx-4ea5db4c70b6168aeede6a8a56cb4624"
)

// soajsWorld is a generated world: its data tree and what the questions
// need to know about it.
type soajsWorld struct {
	tree    map[string]any
	withIAM bool
	// ACLs by where they come from; nil when absent.
	pkg         map[string]map[string]any // by package code
	app         map[string]map[string]any // by application
	memberPkg   map[string]map[string]map[string]any
	memberKey   map[string]map[string]map[string]any
	groups      map[string][]string
	keyApp      map[string]string
	appPackage  map[string]string
	memberNames []string
}

func (g *soajsGen) world() *soajsWorld {
	w := &soajsWorld{
		pkg:        map[string]map[string]any{},
		app:        map[string]map[string]any{},
		memberPkg:  map[string]map[string]map[string]any{},
		memberKey:  map[string]map[string]map[string]any{},
		groups:     map[string][]string{"goldie": {"gold"}, "silvia": {"silver"}, "both": {"gold", "silver"}, "newbie": nil},
		keyApp:     map[string]string{keyOne: "app1", keyTwo: "app2"},
		appPackage: map[string]string{"app1": "PKG", "app2": "PKG2"},
	}
	w.withIAM = g.n(3) == 0
	w.pkg["PKG"] = g.acl()
	w.pkg["PKG2"] = g.acl()
	if g.n(3) == 0 {
		w.app["app1"] = g.acl()
	}
	members := map[string]any{}
	for _, name := range []string{"both", "goldie", "newbie", "silvia"} {
		m := map[string]any{}
		groups := make([]any, len(w.groups[name]))
		for i, gr := range w.groups[name] {
			groups[i] = gr
		}
		m["groups"] = groups
		if name == "goldie" {
			m["is_admin"] = true // IAM lets goldie through, when it applies
		}
		memberACL := map[string]any{}
		if g.n(4) == 0 {
			pkg := []string{"PKG", "PKG2"}[g.n(2)]
			a := g.acl()
			w.memberPkg[name] = map[string]map[string]any{pkg: a}
			memberACL["packages"] = map[string]any{pkg: a}
		}
		if g.n(4) == 0 {
			key := []string{keyOne, keyTwo}[g.n(2)]
			if g.n(64) == 63 {
				key = "no-such-key"
				g.valid = false
			}
			a := g.acl()
			w.memberKey[name] = map[string]map[string]any{key: a}
			memberACL["keys"] = map[string]any{key: a}
		}
		if len(memberACL) > 0 {
			m["acl"] = memberACL
		}
		members[name] = m
		w.memberNames = append(w.memberNames, name)
	}
	checks := []any{"package"}
	if w.withIAM {
		checks = append(checks, "iam")
	}
	apps := map[string]any{
		"app1": map[string]any{"package": "PKG", "keys": []any{map[string]any{"key": keyOne}}},
		"app2": map[string]any{"package": "PKG2", "keys": []any{map[string]any{"key": keyTwo}}},
	}
	if a := w.app["app1"]; a != nil {
		apps["app1"].(map[string]any)["acl"] = a
	}
	route := func(method, path, action string) any {
		return map[string]any{"method": method, "path": path, "action": action}
	}
	w.tree = map[string]any{
		"catalog": map[string]any{
			"services": map[string]any{
				"svc": map[string]any{"routes": []any{
					route("GET", "/a", "svc:a:get"),
					route("POST", "/a", "svc:a:post"),
					route("GET", "/b/{id}", "svc:b:get"),
					route("DELETE", "/b/{id}", "svc:b:delete"),
					route("GET", "/c/", "svc:c:get"),
					route("PUT", "/d/:id", "svc:d:put"),
				}},
				"other": map[string]any{"routes": []any{route("GET", "/o", "other:o:get")}},
			},
			"products": map[string]any{"PROD": map[string]any{"packages": map[string]any{
				"PKG":  map[string]any{"acl": w.pkg["PKG"]},
				"PKG2": map[string]any{"acl": w.pkg["PKG2"]},
			}}},
		},
		"tenants": map[string]any{
			"tn": map[string]any{
				"checks":       checks,
				"groups":       map[string]any{"gold": map[string]any{}, "silver": map[string]any{}},
				"applications": apps,
				"members":      members,
			},
			"tx": map[string]any{
				"checks":       []any{"package"},
				"applications": map[string]any{"appx": map[string]any{"package": "PKG2", "keys": []any{map[string]any{"key": keyOther}}}},
			},
		},
	}
	return w
}

// --- the SPEC's layer 3, written out -------------------------------------------------

// specAPIKey is how an ACL's API template names a route: without a trailing
// slash, every parameter segment alike.
func specAPIKey(tmpl string) string {
	if len(tmpl) > 1 {
		tmpl = strings.TrimSuffix(tmpl, "/")
	}
	segs := strings.Split(tmpl, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			segs[i] = "{}"
		}
	}
	return strings.Join(segs, "/")
}

func specTruthy(access any) bool {
	if access == true {
		return true
	}
	_, isList := access.([]any)
	return isList
}

// specMissed: the access is a group list and the member is in none of them.
func specMissed(access any, groups []string) bool {
	list, ok := access.([]any)
	if !ok {
		return false
	}
	for _, g := range list {
		for _, mine := range groups {
			if g == mine {
				return false
			}
		}
	}
	return true
}

type soajsOutcome struct {
	allow  bool
	status int
	code   string
	soajs  int
}

func soajsDeny(code int) soajsOutcome {
	return soajsOutcome{status: 401, soajs: code, code: map[int]string{
		154: "package.service_denied", 157: "package.group_denied", 158: "package.login_required",
		159: "package.api_restricted", 160: "package.api_group_denied", 161: "package.api_login_required",
	}[code]}
}

var soajsAllowed = soajsOutcome{allow: true, status: 200}

// specPackageLayer is layer 3 of README "How a decision is made". acls are the candidate ACLs in
// precedence order (member by key, member by package, application,
// package); method and template are the matched route's.
func specPackageLayer(acls []map[string]any, service, method, template, member string, groups []string) soajsOutcome {
	var entry map[string]any
	for _, a := range acls {
		if e, ok := a[service].(map[string]any); ok {
			entry = e
			break
		}
	}
	if entry == nil {
		return soajsDeny(154)
	}
	apis, restricted := entry["apis"], entry["apisPermission"] == "restricted"
	if section, ok := entry[strings.ToLower(method)].(map[string]any); ok {
		if a, ok := section["apis"]; ok {
			apis = a
		}
		if r, ok := section["apisPermission"]; ok {
			restricted = r == "restricted"
		}
	}
	var api map[string]any
	hasAPI := false
	if list, ok := apis.(map[string]any); ok {
		for tmpl, v := range list {
			if specAPIKey(tmpl) == specAPIKey(template) {
				hasAPI = true
				api, _ = v.(map[string]any)
			}
		}
	}
	apiAccess := api["access"]
	loggedIn := member != ""
	checkAPI := func() soajsOutcome {
		switch {
		case restricted && !hasAPI:
			return soajsDeny(159)
		case !hasAPI, !specTruthy(apiAccess):
			return soajsAllowed
		case !loggedIn:
			return soajsDeny(161)
		case specMissed(apiAccess, groups):
			return soajsDeny(160)
		}
		return soajsAllowed
	}
	access := entry["access"]
	if specTruthy(access) {
		if loggedIn && specMissed(access, groups) {
			return soajsDeny(157)
		}
		if !loggedIn && (!hasAPI || specTruthy(apiAccess)) {
			return soajsDeny(158)
		}
		return checkAPI()
	}
	if hasAPI || restricted {
		return checkAPI()
	}
	return soajsAllowed
}

type soajsQuestion struct {
	name string
	req  *decision.Request
	want soajsOutcome
}

func (w *soajsWorld) soajsQuestions() []soajsQuestion {
	type call struct {
		service, method, path, action string
		// what the route resolves to
		routeService, routeMethod, template string
	}
	calls := []call{
		{"svc", "GET", "/a", "", "svc", "GET", "/a"},
		{"svc", "POST", "/a/", "", "svc", "POST", "/a"},
		{"svc", "HEAD", "/a", "", "svc", "GET", "/a"}, // HEAD is judged as the GET route it matches
		{"svc", "GET", "/b/7", "", "svc", "GET", "/b/{id}"},
		{"", "DELETE", "/b/7?x=1", "", "svc", "DELETE", "/b/{id}"},
		{"svc", "GET", "/c", "", "svc", "GET", "/c/"},
		{"svc", "PUT", "/d/1", "", "svc", "PUT", "/d/:id"},
		{"", "GET", "/o", "", "other", "GET", "/o"},
		{"", "", "", "svc:b:get", "svc", "GET", "/b/{id}"},
	}
	var out []soajsQuestion
	for _, key := range []string{keyOne, keyTwo} {
		app := w.keyApp[key]
		pkg := w.appPackage[app]
		for _, member := range append([]string{"", "ghost"}, w.memberNames...) {
			for _, c := range calls {
				req := &decision.Request{Tenant: "tn", Key: key, Member: member, Action: c.action}
				if c.method != "" {
					req.Request = &decision.HTTPRequest{Service: c.service, Method: c.method, Path: c.path}
				}
				acls := []map[string]any{w.memberKey[member][key], w.memberPkg[member][pkg], w.app[app], w.pkg[pkg]}
				want := specPackageLayer(acls, c.routeService, c.routeMethod, c.template, member, w.groups[member])
				if want.allow && w.withIAM {
					switch {
					case member == "":
						want = soajsOutcome{status: 401, code: "iam.anonymous"}
					case member == "ghost":
						want = soajsOutcome{status: 403, code: "iam.unknown_member"}
					case member != "goldie": // goldie is an admin
						want = soajsOutcome{status: 403, code: "iam.no_allow"}
					}
				}
				name := fmt.Sprintf("key %s, member %q, %s %s %s (service %q)", key[:2], member, c.method, c.path, c.action, c.service)
				out = append(out, soajsQuestion{name: name, req: req, want: want})
			}
		}
	}
	// A key of another tenant, an unknown key and no key never pass layer 1.
	keyInvalid := soajsOutcome{status: 403, code: "key.invalid", soajs: 132}
	for _, key := range []string{keyOther, "no-such-key", ""} {
		out = append(out, soajsQuestion{
			name: fmt.Sprintf("tenant tn with key %q", key),
			req:  &decision.Request{Tenant: "tn", Key: key, Member: "goldie", Request: &decision.HTTPRequest{Service: "svc", Method: "GET", Path: "/a"}},
			want: keyInvalid,
		})
	}
	return out
}
