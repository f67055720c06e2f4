package decision_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/loader/store"
	"github.com/verdict-authz/verdict/test/worldgen"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/golden/*.jsonl.gz from the current engine")

// goldenMid is a world between worldgen.Small and worldgen.Bench: large
// enough for members with many statements, wildcard and denied actions,
// objects in several groups; small enough to load in a second.
var goldenMid = worldgen.Spec{Seed: 5, Tenants: 2, Members: 1500, Policies: 300, ResourceGroups: 150, ObjectsPerRG: 6, ViewSets: 20}

// TestGoldenDecisions holds every answer the engine gives on generated
// worlds and on the demo bundle to a recorded set: every field of every
// decision (messages included, decision ids left out), of every list plan,
// and of data.verdict.engine.decision through the Data API (QueryEngine).
// Any change to an answer fails it and shows the first differences. A
// change that is meant to change answers rewrites the set with
//
//	go test ./decision/ -run '^TestGoldenDecisions$' -update-golden
//
// and the diff of the set (zcat) is reviewed with the change. A change
// that is meant to make decisions cheaper must leave the set as it is.
func TestGoldenDecisions(t *testing.T) {
	if testing.Short() {
		t.Skip("the golden decisions load three worlds")
	}
	for _, tc := range []struct {
		name     string
		scenario func(t *testing.T) (*decision.Engine, goldenQuestions)
	}{
		{"small", func(t *testing.T) (*decision.Engine, goldenQuestions) {
			engine, w := loadWorld(t, worldgen.Small)
			return engine, worldQuestions(w, 700, 120)
		}},
		{"mid", func(t *testing.T) (*decision.Engine, goldenQuestions) {
			engine, w := loadWorld(t, goldenMid)
			qs := worldQuestions(w, 2000, 250)
			qs.decide = append(qs.decide, denyQuestions(w, 150)...)
			return engine, qs
		}},
		{"demo", func(t *testing.T) (*decision.Engine, goldenQuestions) {
			engine := demoEngine(t)
			return engine, demoQuestions(t, engine, 2500, 250)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			engine, qs := tc.scenario(t)
			got := answerGolden(t, engine, qs)
			file := filepath.Join("testdata", "golden", tc.name+".jsonl.gz")
			if *updateGolden {
				writeGolden(t, file, got)
				return
			}
			compareGolden(t, file, got)
		})
	}
}

// goldenQuestions are the questions of one scenario.
type goldenQuestions struct {
	decide []decision.Request
	plan   []decision.PlanRequest
}

// answerGolden answers every question, one JSON line per answer. The
// Data API is asked data.verdict.engine.decision for every fifth decision.
func answerGolden(t *testing.T, engine *decision.Engine, qs goldenQuestions) [][]byte {
	t.Helper()
	ctx := context.Background()
	var lines [][]byte
	add := func(v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, b)
	}
	for i, r := range qs.decide {
		req := cloneDeep(&r)
		d, err := engine.Decide(ctx, req)
		if err != nil {
			add(map[string]any{"decide": r, "error": err.Error()})
			continue
		}
		d.DecisionID = ""
		add(map[string]any{"decide": r, "decision": d})
		if i%5 == 0 {
			path := []string{"verdict", "engine", "decision"}
			res, err := engine.QueryEngine(ctx, path, func() (*decision.Request, error) { return cloneDeep(&r), nil })
			if err != nil {
				add(map[string]any{"data": r, "error": err.Error()})
				continue
			}
			add(map[string]any{"data": r, "defined": res.Defined, "result": res.Result})
		}
	}
	for _, pr := range qs.plan {
		req := pr
		if pr.Request != nil {
			hr := *pr.Request
			req.Request = &hr
		}
		p, err := engine.Plan(ctx, &req)
		if err != nil {
			add(map[string]any{"plan": pr, "error": err.Error()})
			continue
		}
		p.DecisionID = ""
		add(map[string]any{"plan": pr, "answer": p})
	}
	return lines
}

// cloneDeep copies a request so that Validate's normalisation in place
// does not change the recorded question.
func cloneDeep(r *decision.Request) *decision.Request {
	c := clone(r)
	if r.Resource != nil {
		res := *r.Resource
		res.ResourceGroups = slices.Clone(r.Resource.ResourceGroups)
		c.Resource = &res
	}
	return c
}

func writeGolden(t *testing.T, file string, lines [][]byte) {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		zw.Write(l)
		zw.Write([]byte{'\n'})
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d answers to %s", len(lines), file)
}

func compareGolden(t *testing.T, file string, got [][]byte) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatalf("%v (record the set with -update-golden)", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		want = append(want, slices.Clone(sc.Bytes()))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("%d answers, the recorded set has %d", len(got), len(want))
	}
	shown := 0
	for i := range min(len(got), len(want)) {
		if !bytes.Equal(got[i], want[i]) {
			if shown++; shown <= 5 {
				t.Errorf("answer %d differs:\n got: %s\nwant: %s", i+1, got[i], want[i])
			}
		}
	}
	if shown > 5 {
		t.Errorf("… and %d more answers differ", shown-5)
	}
}

// worldQuestions draws decisions and plans over a generated world: its
// requests by action, the same by route (collection and object paths),
// owners, references, groups named by the request, unknown members and
// tenants, anonymous requests.
func worldQuestions(w *worldgen.World, decisions, plans int) goldenQuestions {
	rng := rand.New(rand.NewPCG(w.Spec.Seed, 2026))
	spec := w.Spec
	var qs goldenQuestions
	methods := []struct {
		method string
		object bool
	}{{"GET", false}, {"POST", false}, {"GET", true}, {"PUT", true}, {"PATCH", true}, {"DELETE", true}}
	for i, r := range w.Requests(spec.Seed+1, decisions) {
		req := decision.Request{Tenant: r.Tenant, Member: r.Member, Action: r.Action}
		if r.FRN != "" {
			req.Resource = &decision.Resource{FRN: r.FRN}
		}
		switch i % 10 {
		case 1, 2: // by route instead of action
			var vs int
			fmt.Sscanf(r.Action, "finmars:ViewSet%03d:", &vs)
			m := methods[rng.IntN(len(methods))]
			path := worldgen.CollectionPath(vs)
			if m.object {
				path += fmt.Sprintf("%d/", rng.IntN(100))
			}
			req.Action = ""
			req.Request = &decision.HTTPRequest{Method: m.method, Path: path}
		case 3: // the member owns the object
			if req.Resource != nil {
				req.Resource.Owner = r.Member
			}
		case 4: // a reference, and a group named by the request
			if req.Resource == nil {
				req.Resource = &decision.Resource{}
			}
			req.Resource.Reference = true
			req.Resource.ResourceGroups = []string{fmt.Sprintf("RG%04d", rng.IntN(spec.ResourceGroups))}
		case 5:
			switch rng.IntN(4) {
			case 0:
				req.Member = "nobody"
			case 1:
				req.Member = ""
			case 2:
				req.Tenant = "t99"
			default:
				req.Action = strings.ToUpper(req.Action)
			}
		}
		qs.decide = append(qs.decide, req)
	}
	for range plans {
		vs := rng.IntN(spec.ViewSets)
		pr := decision.PlanRequest{
			Tenant: worldgen.TenantCode(rng.IntN(spec.Tenants)),
			Member: worldgen.MemberName(rng.IntN(spec.Members)),
			Action: fmt.Sprintf("finmars:%s:list", worldgen.ViewSet(vs)),
		}
		switch rng.IntN(3) {
		case 0:
			pr.Model = fmt.Sprintf("vs%03d:item", vs)
		case 1:
			pr.Action = ""
			pr.Request = &decision.HTTPRequest{Method: "GET", Path: worldgen.CollectionPath(vs)}
		}
		qs.plan = append(qs.plan, pr)
	}
	return qs
}

// denyQuestions asks, for up to n (member, Deny statement) pairs of the
// world, for the statement's action on the object it denies: random
// requests almost never name the one object a Deny covers, so without
// these the set would hold no iam.explicit_deny. Members and policies are
// walked in name order, so the questions are the same on every run.
func denyQuestions(w *worldgen.World, n int) []decision.Request {
	var out []decision.Request
	for _, code := range slices.Sorted(maps.Keys(w.Tenants)) {
		tenant := w.Tenants[code]
		policies := tenant["access_policies"].(map[string]any)
		members := tenant["members"].(map[string]any)
		for _, name := range slices.Sorted(maps.Keys(members)) {
			for _, p := range heldPolicies(tenant, members[name].(map[string]any)) {
				for _, st := range policies[p].(map[string]any)["Statement"].([]any) {
					st := st.(map[string]any)
					if st["Effect"] != "Deny" {
						continue
					}
					action := strings.Replace(st["Action"].([]any)[0].(string), ":*", ":retrieve", 1)
					out = append(out, decision.Request{Tenant: code, Member: name, Action: action,
						Resource: &decision.Resource{FRN: st["Resource"].(string)}})
					if len(out) == n {
						return out
					}
				}
			}
		}
	}
	return out
}

// heldPolicies are the policies a generated world's member holds, sorted:
// its own, its roles', its groups' and their roles'.
func heldPolicies(tenant, member map[string]any) []string {
	roles := tenant["roles"].(map[string]any)
	groups := tenant["groups"].(map[string]any)
	held := map[string]bool{}
	add := func(owner map[string]any) {
		for _, p := range listed(owner, "policies") {
			held[p] = true
		}
		for _, r := range listed(owner, "roles") {
			for _, p := range listed(roles[r].(map[string]any), "policies") {
				held[p] = true
			}
		}
	}
	add(member)
	for _, g := range listed(member, "groups") {
		add(groups[g].(map[string]any))
	}
	return slices.Sorted(maps.Keys(held))
}

// listed is the list of names under key in a generated world's object
// (none when the key is absent).
func listed(v map[string]any, key string) []string {
	list, _ := v[key].([]any)
	names := make([]string, len(list))
	for i, x := range list {
		names[i] = x.(string)
	}
	return names
}

// pathParam is a parameter of a route template (":id", "{id}").
var pathParam = regexp.MustCompile(`:[A-Za-z_]+|\{[A-Za-z_]+\}`)

// demoCatalog is a reader of engine's current snapshot, its tenants by
// code and its services by name.
func demoCatalog(t *testing.T, engine *decision.Engine) (*store.Reader, []*store.TenantRecord, []*store.ServiceRecord) {
	t.Helper()
	r := engine.Current().Facts.Read()
	tenants, err := r.Tenants()
	if err != nil {
		t.Fatal(err)
	}
	services, err := r.Services()
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(tenants, func(a, b *store.TenantRecord) int { return strings.Compare(a.Code, b.Code) })
	slices.SortFunc(services, func(a, b *store.ServiceRecord) int { return strings.Compare(a.Name, b.Name) })
	return r, tenants, services
}

// demoQuestions draws decisions and plans over the demo bundle's own
// tenants, members, keys, applications, routes and objects, plus unknown
// ones, so that every layer (SOAJS packages, delegations, IAM, resources)
// is asked about.
func demoQuestions(t *testing.T, engine *decision.Engine, decisions, plans int) goldenQuestions {
	t.Helper()
	r, tenants, services := demoCatalog(t, engine)

	type route struct {
		service string
		http    decision.HTTPRequest
		action  string
	}
	var routes []route
	for _, s := range services {
		for _, rt := range s.Service.Routes {
			path := pathParam.ReplaceAllString(rt.Path, "7")
			if rt.Kind == acl.RouteCustom {
				routes = append(routes, route{s.Name, decision.HTTPRequest{Method: rt.Method, Path: path}, rt.Action})
				continue
			}
			for _, m := range []string{"GET", "POST"} {
				routes = append(routes, route{s.Name, decision.HTTPRequest{Method: m, Path: path}, ""})
			}
			for _, m := range []string{"GET", "PUT", "PATCH", "DELETE"} {
				routes = append(routes, route{s.Name, decision.HTTPRequest{Method: m, Path: path + "7/"}, ""})
			}
			for _, a := range []string{"list", "retrieve", "create", "update", "destroy"} {
				routes = append(routes, route{s.Name, decision.HTTPRequest{}, "finmars:" + rt.ViewSet + ":" + a})
			}
		}
	}
	var custom []route
	for _, rt := range routes {
		if rt.http.Method != "" && rt.action != "" {
			custom = append(custom, rt)
		}
	}
	routes = append(routes, route{"nosuch", decision.HTTPRequest{Method: "GET", Path: "/nowhere"}, "finmars:Nothing:list"})

	type tenantFacts struct {
		code                      string
		members, keys, apps, frns []string
	}
	var ts []tenantFacts
	for _, tn := range tenants {
		members, err := r.MemberNames(tn.Code)
		if err != nil {
			t.Fatal(err)
		}
		tf := tenantFacts{code: tn.Code, members: members}
		for name, app := range tn.Tenant.Applications {
			tf.apps = append(tf.apps, name)
			for _, k := range app.Keys {
				tf.keys = append(tf.keys, k.Key)
			}
		}
		for app := range tn.Tenant.Delegations {
			tf.apps = append(tf.apps, app)
		}
		for _, rg := range tn.Tenant.ResourceGroups {
			tf.frns = append(tf.frns, rg.Assignments...)
		}
		for _, s := range []*[]string{&tf.members, &tf.keys, &tf.apps, &tf.frns} {
			slices.Sort(*s)
			*s = slices.Compact(*s)
		}
		tf.members = append(tf.members, "nobody")
		tf.frns = append(tf.frns, "frn:finmars:portfolios:portfolio:nothing")
		ts = append(ts, tf)
	}
	ts = append(ts, tenantFacts{code: "nosuch", members: []string{"nobody"}})

	rng := rand.New(rand.NewPCG(17, 2026))
	pick := func(s []string) string {
		if len(s) == 0 {
			return ""
		}
		return s[rng.IntN(len(s))]
	}
	var qs goldenQuestions
	for range decisions {
		tf := ts[rng.IntN(len(ts))]
		rt := routes[rng.IntN(len(routes))]
		if rng.IntN(2) == 0 { // as often a custom route (SOAJS, Fineract) as a Finmars one
			rt = custom[rng.IntN(len(custom))]
		}
		req := decision.Request{Tenant: tf.code, Member: pick(tf.members)}
		if rt.http.Method != "" && rng.IntN(4) != 0 {
			hr := rt.http
			if rng.IntN(2) == 0 {
				hr.Service = rt.service
			}
			req.Request = &hr
			if rt.action != "" && rng.IntN(4) == 0 {
				req.Action = rt.action
			}
		} else {
			req.Action = rt.action
			if req.Action == "" {
				req.Action = "finmars:Portfolio:retrieve"
			}
		}
		switch k := rng.IntN(6); {
		case len(tf.keys) > 0 && k <= 2: // by key only: the key names the tenant
			req.Key = pick(tf.keys)
			req.Tenant = ""
		case len(tf.keys) > 0 && k == 3:
			req.Key = pick(tf.keys)
		case k == 4:
			req.Key = "0123456789abcdef"
		}
		if rng.IntN(3) == 0 {
			req.Member = ""
		}
		if rng.IntN(4) == 0 {
			req.Application = pick(tf.apps)
		}
		if rng.IntN(2) == 0 {
			res := &decision.Resource{FRN: pick(tf.frns)}
			switch rng.IntN(4) {
			case 0:
				res.Owner = req.Member
			case 1:
				res.Reference = true
			case 2:
				res.ResourceGroups = []string{"portfolio_group_a"}
			}
			req.Resource = res
		}
		if rng.IntN(3) == 0 {
			req.Context = map[string]any{"hour": rng.IntN(24)}
		}
		qs.decide = append(qs.decide, req)
	}
	for range plans {
		tf := ts[rng.IntN(len(ts))]
		rt := routes[rng.IntN(len(routes))]
		pr := decision.PlanRequest{Tenant: tf.code, Member: pick(tf.members), Action: rt.action}
		if pr.Action == "" {
			hr := rt.http
			pr.Request = &hr
		}
		if rng.IntN(3) == 0 {
			pr.Model = "portfolios:portfolio"
		}
		if rng.IntN(3) == 0 {
			pr.Context = map[string]any{"hour": rng.IntN(24)}
		}
		qs.plan = append(qs.plan, pr)
	}
	return qs
}
