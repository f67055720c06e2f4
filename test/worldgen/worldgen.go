// Package worldgen generates synthetic verdict worlds (catalog, tenants,
// members, policies, resource groups) for benchmarks, the OPA comparison
// harness and property tests. Generation is deterministic for a seed.
package worldgen

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// Spec sizes a world.
type Spec struct {
	Seed           uint64
	Tenants        int
	Members        int // per tenant
	Policies       int // per tenant
	ResourceGroups int // per tenant
	ObjectsPerRG   int
	ViewSets       int
	Roles          int // per tenant (default Policies/10)
	Groups         int // per tenant (default 50)
}

// Small is a quick world for tests.
var Small = Spec{Seed: 1, Tenants: 2, Members: 50, Policies: 40, ResourceGroups: 20, ObjectsPerRG: 5, ViewSets: 10}

// Bench is the reference tenant: 10,000 members, 1,000 policies,
// 1,000 resource groups, routes for 50 view sets.
var Bench = Spec{Seed: 7, Tenants: 1, Members: 10000, Policies: 1000, ResourceGroups: 1000, ObjectsPerRG: 10, ViewSets: 50}

var actionNames = []string{"list", "retrieve", "create", "update", "partial_update", "destroy"}

func (s Spec) withDefaults() Spec {
	if s.Roles == 0 {
		s.Roles = max(1, s.Policies/10)
	}
	if s.Groups == 0 {
		s.Groups = 50
	}
	if s.ObjectsPerRG == 0 {
		s.ObjectsPerRG = 10
	}
	return s
}

// TenantCode names tenant i.
func TenantCode(i int) string { return fmt.Sprintf("t%02d", i) }

// MemberName names member i.
func MemberName(i int) string { return fmt.Sprintf("m%05d", i) }

// ViewSet names view set i.
func ViewSet(i int) string { return fmt.Sprintf("ViewSet%03d", i) }

// CollectionPath is the REST collection path of view set i.
func CollectionPath(i int) string { return fmt.Sprintf("/api/v1/vs%03d/item/", i) }

// ObjectFRN names object j of view set i.
func ObjectFRN(vs, j int) string { return fmt.Sprintf("frn:finmars:vs%03d:item:o%05d", vs, j) }

// World is a generated world as bundle data.
type World struct {
	Spec    Spec
	Catalog map[string]any            // the value of verdict.catalog
	Tenants map[string]map[string]any // verdict.tenants.<code>
}

// Generate builds a world.
func Generate(spec Spec) *World {
	spec = spec.withDefaults()
	w := &World{Spec: spec, Tenants: map[string]map[string]any{}}
	services := map[string]any{}
	for v := 0; v < spec.ViewSets; v++ {
		services[fmt.Sprintf("svc%03d", v)] = map[string]any{
			"routes": []any{map[string]any{"path": CollectionPath(v), "viewset": ViewSet(v)}},
		}
	}
	w.Catalog = map[string]any{"services": services}
	for t := 0; t < spec.Tenants; t++ {
		rng := rand.New(rand.NewPCG(spec.Seed, uint64(t)))
		w.Tenants[TenantCode(t)] = generateTenant(spec, rng)
	}
	return w
}

func generateTenant(spec Spec, rng *rand.Rand) map[string]any {
	rgs := map[string]any{}
	for g := 0; g < spec.ResourceGroups; g++ {
		vs := g % spec.ViewSets
		assignments := make([]any, spec.ObjectsPerRG)
		for j := range assignments {
			assignments[j] = ObjectFRN(vs, g*spec.ObjectsPerRG+j)
		}
		rgs[fmt.Sprintf("rg%04d", g)] = map[string]any{"assignments": assignments}
	}
	policies := map[string]any{}
	for p := 0; p < spec.Policies; p++ {
		n := 1 + rng.IntN(3)
		statements := make([]any, 0, n)
		for s := 0; s < n; s++ {
			vs := rng.IntN(spec.ViewSets)
			var actions []any
			switch rng.IntN(4) {
			case 0:
				actions = []any{fmt.Sprintf("finmars:%s:*", ViewSet(vs))}
			default:
				actions = []any{
					fmt.Sprintf("finmars:%s:%s", ViewSet(vs), actionNames[rng.IntN(len(actionNames))]),
					fmt.Sprintf("finmars:%s:%s", ViewSet(vs), actionNames[rng.IntN(len(actionNames))]),
				}
			}
			var resource any
			switch rng.IntN(4) {
			case 0:
				resource = "*"
			case 1:
				resource = ObjectFRN(vs, rng.IntN(spec.ResourceGroups*spec.ObjectsPerRG))
			default:
				g := rng.IntN(spec.ResourceGroups)
				resource = []any{fmt.Sprintf("frn:finmars:iam:resourcegroup:rg%04d", g)}
			}
			effect := "Allow"
			if rng.IntN(10) == 0 {
				effect = "Deny"
				resource = ObjectFRN(vs, rng.IntN(spec.ResourceGroups*spec.ObjectsPerRG))
			}
			statements = append(statements, map[string]any{"Effect": effect, "Action": actions, "Resource": resource})
		}
		policies[fmt.Sprintf("p%04d", p)] = map[string]any{"Version": "2023-01-01", "Statement": statements}
	}
	pick := func(prefix string, n, k int) []any {
		seen := map[int]bool{}
		out := []any{}
		for len(out) < min(k, n) {
			i := rng.IntN(n)
			if !seen[i] {
				seen[i] = true
				out = append(out, fmt.Sprintf(prefix, i))
			}
		}
		return out
	}
	roles := map[string]any{}
	for r := 0; r < spec.Roles; r++ {
		roles[fmt.Sprintf("r%03d", r)] = map[string]any{"policies": pick("p%04d", spec.Policies, 5)}
	}
	groups := map[string]any{}
	for g := 0; g < spec.Groups; g++ {
		groups[fmt.Sprintf("g%03d", g)] = map[string]any{
			"roles":    pick("r%03d", spec.Roles, 2),
			"policies": pick("p%04d", spec.Policies, 2),
		}
	}
	members := map[string]any{}
	for m := 0; m < spec.Members; m++ {
		member := map[string]any{
			"roles":    pick("r%03d", spec.Roles, 1),
			"groups":   pick("g%03d", spec.Groups, 1+rng.IntN(2)),
			"policies": pick("p%04d", spec.Policies, 1+rng.IntN(3)),
		}
		if m%500 == 0 {
			member["is_admin"] = true
		}
		members[MemberName(m)] = member
	}
	return map[string]any{
		"name":            "Generated tenant",
		"members":         members,
		"roles":           roles,
		"groups":          groups,
		"access_policies": policies,
		"resource_groups": rgs,
	}
}

// Data returns the world as the data tree of one bundle: {"verdict": {...}}.
func (w *World) Data() map[string]any {
	tenants := make(map[string]any, len(w.Tenants))
	for k, v := range w.Tenants {
		tenants[k] = v
	}
	return map[string]any{"verdict": map[string]any{"catalog": w.Catalog, "tenants": tenants}}
}

// WriteBundle writes the world as a bundle directory: a manifest, the
// catalog and one data.json per tenant.
func (w *World) WriteBundle(dir, revision string) error {
	write := func(rel string, v any) error {
		path := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		return os.WriteFile(path, b, 0o644)
	}
	if err := write(".manifest", map[string]any{"revision": revision, "roots": []string{"verdict"}}); err != nil {
		return err
	}
	if err := write("verdict/catalog/data.json", w.Catalog); err != nil {
		return err
	}
	for code, t := range w.Tenants {
		if err := write(filepath.Join("verdict/tenants", code, "data.json"), t); err != nil {
			return err
		}
	}
	return nil
}

// Request is one generated decision question.
type Request struct {
	Tenant, Member, Action, FRN string
}

// Requests draws n questions uniformly over members, view sets, actions and
// objects.
func (w *World) Requests(seed uint64, n int) []Request {
	rng := rand.New(rand.NewPCG(seed, 99))
	spec := w.Spec
	out := make([]Request, n)
	for i := range out {
		vs := rng.IntN(spec.ViewSets)
		r := Request{
			Tenant: TenantCode(rng.IntN(spec.Tenants)),
			Member: MemberName(rng.IntN(spec.Members)),
			Action: fmt.Sprintf("finmars:%s:%s", ViewSet(vs), actionNames[rng.IntN(len(actionNames))]),
		}
		if rng.IntN(4) != 0 {
			r.FRN = ObjectFRN(vs, rng.IntN(spec.ResourceGroups*spec.ObjectsPerRG))
		}
		out[i] = r
	}
	return out
}

// ZipfRequests draws n questions like Requests, but members and objects
// follow a Zipf distribution with exponent s (> 1): a few members and
// objects receive most of the questions, as in real traffic. Ranks are
// shuffled with the seed, so the hottest member is not simply m00000 (an
// admin) and the hottest objects are spread over the view sets.
func (w *World) ZipfRequests(seed uint64, n int, s float64) []Request {
	rng := rand.New(rand.NewPCG(seed, 101))
	spec := w.Spec
	objects := spec.ResourceGroups * spec.ObjectsPerRG
	memberRank := rng.Perm(spec.Members)
	objectRank := rng.Perm(max(objects, 1))
	members := rand.NewZipf(rng, s, 1, uint64(spec.Members-1))
	var objs *rand.Zipf
	if objects > 1 {
		objs = rand.NewZipf(rng, s, 1, uint64(objects-1))
	}
	out := make([]Request, n)
	for i := range out {
		vs := rng.IntN(spec.ViewSets)
		r := Request{
			Tenant: TenantCode(rng.IntN(spec.Tenants)),
			Member: MemberName(memberRank[members.Uint64()]),
			Action: fmt.Sprintf("finmars:%s:%s", ViewSet(vs), actionNames[rng.IntN(len(actionNames))]),
		}
		if rng.IntN(4) != 0 {
			j := 0
			if objs != nil {
				j = objectRank[objs.Uint64()]
			}
			// The object's view set is that of its resource group, so that
			// hot objects are the ones the groups assign.
			r.Action = fmt.Sprintf("finmars:%s:%s", ViewSet((j/spec.ObjectsPerRG)%spec.ViewSets), actionNames[rng.IntN(len(actionNames))])
			r.FRN = ObjectFRN((j/spec.ObjectsPerRG)%spec.ViewSets, j)
		}
		out[i] = r
	}
	return out
}
