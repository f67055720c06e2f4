// Package isolation holds a property test of tenant isolation (issue 8): in
// random multi-tenant worlds, no edit to tenant B - members added, removed or
// made admins (including members named like A's), policies and statements
// added, resource groups reassigned to A's objects, checks changed, an
// application added, B's bundle rejected or removed - changes any decision
// for tenant A.
package isolation

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/test/worldgen"
)

const (
	tenantA = "t00"
	tenantB = "t01"
	keyA    = "key-of-tenant-a-0123456789"
	keyB    = "key-of-tenant-b-0123456789"
)

// newcomers are member names A never has; edits give them to B.
var newcomers = []string{"newbie1", "newbie2"}

// trials is how many random worlds to try: 4 (2 with -short), or
// VERDICT_ISOLATION_TRIALS.
func trials(t *testing.T) int {
	if s := os.Getenv("VERDICT_ISOLATION_TRIALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("VERDICT_ISOLATION_TRIALS: %v", err)
		}
		return n
	}
	if testing.Short() {
		return 2
	}
	return 4
}

func TestEditsToTenantBNeverChangeTenantA(t *testing.T) {
	for trial := range trials(t) {
		t.Run(fmt.Sprintf("world%d", trial), func(t *testing.T) {
			runTrial(t, uint64(trial)+1)
		})
	}
}

func runTrial(t *testing.T, seed uint64) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 8))
	spec := worldgen.Spec{Seed: seed, Tenants: 2, Members: 30, Policies: 24, ResourceGroups: 10, ObjectsPerRG: 4, ViewSets: 5, Groups: 6}
	w := worldgen.Generate(spec)
	dir := t.TempDir()

	// The catalog offers a package so that tenants can have keys; A has one.
	w.Catalog["products"] = map[string]any{"P": map[string]any{"packages": map[string]any{
		"PK": map[string]any{"acl": map[string]any{"svc000": map[string]any{"access": false}}},
	}}}
	w.Tenants[tenantA]["applications"] = map[string]any{
		"appA": map[string]any{"package": "PK", "keys": []any{map[string]any{"key": keyA}}},
	}
	writeBundle(t, filepath.Join(dir, "catalog"), "c1", []string{"verdict/catalog"}, "verdict/catalog", w.Catalog)
	for _, code := range []string{tenantA, tenantB} {
		writeBundle(t, filepath.Join(dir, code), "r0", []string{"verdict/tenants/" + code}, "verdict/tenants/"+code, w.Tenants[code])
	}

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	engine := decision.NewEngine(quiet)
	ld, err := loader.New(engine, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer ld.Close()
	srcB := loader.Source{Name: tenantB, Location: filepath.Join(dir, tenantB)}
	if _, err := ld.LoadAll(ctx, []loader.Source{
		{Name: "catalog", Location: filepath.Join(dir, "catalog")},
		{Name: tenantA, Location: filepath.Join(dir, tenantA)},
		srcB,
	}); err != nil {
		t.Fatal(err)
	}

	questionsA := sampleQuestions(rng, w, tenantA, 160)
	questionsB := sampleQuestions(rng, w, tenantB, 80)
	baseA := answers(t, engine, questionsA)
	baseB := answers(t, engine, questionsB)
	allows := 0
	for _, a := range baseA {
		if strings.HasPrefix(a, `{"allow":true`) {
			allows++
		}
	}
	if allows == 0 || allows == len(baseA) {
		t.Fatalf("the sample of A's questions has %d allows of %d: it cannot show a change", allows, len(baseA))
	}

	tree := clone(t, w.Tenants[tenantB])
	changedB := 0
	for step := range 14 {
		next := clone(t, tree)
		what, valid := edit(rng, next, w, step)
		writeBundle(t, srcB.Location, fmt.Sprintf("r%d", step+1), []string{"verdict/tenants/" + tenantB}, "verdict/tenants/"+tenantB, next)
		err := ld.Reload(ctx, srcB)
		if valid && err != nil {
			t.Fatalf("step %d (%s): a valid edit was rejected: %v", step, what, err)
		}
		if !valid && err == nil {
			t.Fatalf("step %d (%s): an invalid edit was accepted", step, what)
		}
		if valid {
			tree = next
		}
		compare(t, fmt.Sprintf("step %d (%s)", step, what), baseA, answers(t, engine, questionsA), questionsA)
		if !reflect.DeepEqual(baseB, answers(t, engine, questionsB)) {
			changedB++
		}
	}
	if changedB == 0 {
		t.Fatal("no edit changed any of B's decisions: the edits are not reaching the engine")
	}

	// B's bundle removed altogether.
	if err := os.RemoveAll(srcB.Location); err != nil {
		t.Fatal(err)
	}
	if err := ld.Reload(ctx, srcB); err != nil {
		t.Fatalf("removing B: %v", err)
	}
	if d, _ := engine.Decide(ctx, &decision.Request{Tenant: tenantB, Member: worldgen.MemberName(0), Action: "finmars:ViewSet000:list"}); d.Reasons[0].Code != "tenant.unknown" {
		t.Fatalf("B still served after its bundle was removed: %+v", d.Reasons)
	}
	compare(t, "B removed", baseA, answers(t, engine, questionsA), questionsA)
}

// edit changes B's tenant document in place and says what it did and
// whether the result is valid. The first steps cover every kind of edit
// once; later ones are random.
func edit(rng *rand.Rand, tn map[string]any, w *worldgen.World, step int) (string, bool) {
	kind := step
	if step >= 12 {
		kind = rng.IntN(12)
	}
	members := obj(tn, "members")
	policies := obj(tn, "access_policies")
	groups := obj(tn, "groups")
	rgs := obj(tn, "resource_groups")
	spec := w.Spec
	memberOfA := worldgen.MemberName(rng.IntN(spec.Members))
	allowAll := map[string]any{"Effect": "Allow", "Action": "*", "Resource": "*"}
	switch kind {
	case 0:
		name := newcomers[rng.IntN(len(newcomers))]
		members[name] = map[string]any{"is_admin": true}
		return "add admin " + name + ", a name A does not have", true
	case 1:
		members[memberOfA] = map[string]any{"is_admin": true}
		return "make " + memberOfA + " (also a member of A) an admin", true
	case 2:
		delete(members, memberOfA)
		return "remove " + memberOfA, true
	case 3:
		policies["everything"] = map[string]any{"Statement": []any{allowAll}}
		for name := range members {
			m := members[name].(map[string]any)
			m["policies"] = appendOnce(list(m, "policies"), "everything")
		}
		return "give every member a policy that allows everything", true
	case 4:
		code := slices.Sorted(maps.Keys(policies))[rng.IntN(len(policies))]
		p := policies[code].(map[string]any)
		p["Statement"] = append(list(p, "Statement"), map[string]any{
			"Effect": "Deny", "Action": "finmars:*", "Resource": []any{"*"},
		})
		return "add a Deny of everything to policy " + code, true
	case 5:
		code := slices.Sorted(maps.Keys(groups))[rng.IntN(len(groups))]
		policies["group-all"] = map[string]any{"Statement": []any{map[string]any{
			"Effect": "Allow", "Action": "finmars:*:*", "Resource": "*", "Principal": "group:" + code,
		}}}
		g := groups[code].(map[string]any)
		g["policies"] = appendOnce(list(g, "policies"), "group-all")
		return "let group " + code + " (a group name A also has) do everything", true
	case 6:
		// Assign every object of the world to B's groups.
		for _, code := range slices.Sorted(maps.Keys(rgs)) {
			var all []any
			for vs := range spec.ViewSets {
				for j := range spec.ResourceGroups * spec.ObjectsPerRG {
					if j%3 == 0 {
						all = append(all, worldgen.ObjectFRN(vs, j))
					}
				}
			}
			rgs[code] = map[string]any{"assignments": all}
		}
		return "assign A's objects to all of B's resource groups", true
	case 7:
		for _, code := range slices.Sorted(maps.Keys(rgs)) {
			rgs[code] = map[string]any{"assignments": []any{}}
		}
		return "empty B's resource groups", true
	case 8:
		tn["checks"] = []any{"package", "iam"}
		return "make B check packages too", true
	case 9:
		tn["applications"] = map[string]any{"appB": map[string]any{"package": "PK", "keys": []any{map[string]any{"key": keyB}}}}
		members[memberOfA] = map[string]any{"is_admin": true, "acl": map[string]any{"keys": map[string]any{keyB: map[string]any{"svc000": map[string]any{}}}}}
		return "give B an application with a key, and " + memberOfA + " an ACL for it", true
	case 10:
		tn["applications"] = map[string]any{"thief": map[string]any{"package": "PK", "keys": []any{map[string]any{"key": keyA}}}}
		return "claim A's key for B (must be rejected)", false
	default:
		m := members[slices.Sorted(maps.Keys(members))[0]].(map[string]any)
		m["roles"] = append(list(m, "roles"), "no-such-role")
		return "a dangling role (must be rejected)", false
	}
}

// question is one decision request, kept as JSON so that every asking
// starts from the same value.
type question string

func sampleQuestions(rng *rand.Rand, w *worldgen.World, tenant string, n int) []question {
	spec := w.Spec
	actions := []string{"list", "retrieve", "create", "update", "partial_update", "destroy"}
	var out []question
	for range n {
		vs := rng.IntN(spec.ViewSets)
		req := &decision.Request{Tenant: tenant}
		switch rng.IntN(10) {
		case 0:
			req.Member = newcomers[rng.IntN(len(newcomers))]
		case 1:
			req.Member = "" // anonymous
		default:
			req.Member = worldgen.MemberName(rng.IntN(spec.Members))
		}
		switch rng.IntN(4) {
		case 0:
			req.Request = &decision.HTTPRequest{Method: "GET", Path: worldgen.CollectionPath(vs)}
		case 1:
			method := []string{"GET", "PUT", "DELETE"}[rng.IntN(3)]
			req.Request = &decision.HTTPRequest{Method: method, Path: worldgen.CollectionPath(vs) + "17/"}
		default:
			req.Action = fmt.Sprintf("finmars:%s:%s", worldgen.ViewSet(vs), actions[rng.IntN(len(actions))])
		}
		if rng.IntN(4) != 0 {
			req.Resource = &decision.Resource{FRN: worldgen.ObjectFRN(vs, rng.IntN(spec.ResourceGroups*spec.ObjectsPerRG))}
			switch rng.IntN(8) {
			case 0:
				req.Resource.Owner = worldgen.MemberName(rng.IntN(spec.Members))
			case 1:
				req.Resource.ResourceGroups = []string{fmt.Sprintf("rg%04d", rng.IntN(spec.ResourceGroups))}
			case 2:
				req.Resource.Reference = true
			}
		}
		switch rng.IntN(12) {
		case 0:
			req.Key = keyA
		case 1:
			req.Key = keyB
		}
		b, _ := json.Marshal(req)
		out = append(out, question(b))
	}
	return out
}

// answers decides every question and keeps what a caller relies on:
// allow, status, visibility, fields, action and every reason (not the
// decision id or the bundle revisions).
func answers(t *testing.T, engine *decision.Engine, qs []question) []string {
	t.Helper()
	out := make([]string, len(qs))
	for i, q := range qs {
		var req decision.Request
		if err := json.Unmarshal([]byte(q), &req); err != nil {
			t.Fatal(err)
		}
		d, err := engine.Decide(context.Background(), &req)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		b, _ := json.Marshal(struct {
			Allow      bool              `json:"allow"`
			Status     int               `json:"status"`
			Tenant     string            `json:"tenant"`
			Action     string            `json:"action"`
			Visibility string            `json:"visibility"`
			Fields     []string          `json:"fields"`
			Reasons    []decision.Reason `json:"reasons"`
		}{d.Allow, d.Status, d.Tenant, d.Action, d.Visibility, d.Fields, d.Reasons})
		out[i] = string(b)
	}
	return out
}

func compare(t *testing.T, when string, base, now []string, qs []question) {
	t.Helper()
	for i := range base {
		if base[i] != now[i] {
			t.Fatalf("%s changed a decision for tenant A:\nquestion %s\nbefore   %s\nafter    %s", when, qs[i], base[i], now[i])
		}
	}
}

// writeBundle writes a one-document bundle: a manifest and data.json at
// dataDir, replacing what the directory held.
func writeBundle(t *testing.T, dir, revision string, roots []string, dataDir string, doc any) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	manifest, _ := json.Marshal(map[string]any{"revision": revision, "roots": roots})
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, filepath.FromSlash(dataDir), "data.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".manifest"), manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func clone(t *testing.T, v map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func obj(m map[string]any, key string) map[string]any {
	o, ok := m[key].(map[string]any)
	if !ok {
		o = map[string]any{}
		m[key] = o
	}
	return o
}

func list(m map[string]any, key string) []any {
	l, _ := m[key].([]any)
	return l
}

func appendOnce(l []any, v string) []any {
	for _, x := range l {
		if x == v {
			return l
		}
	}
	return append(l, v)
}
