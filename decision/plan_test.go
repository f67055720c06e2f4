package decision_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/test/worldgen"
)

// passes applies a plan the way a service would, knowing only each object's
// user code and owner (the plan expands resource groups into user codes).
func passes(p *decision.Plan, userCode, owner string) bool {
	switch p.Kind {
	case "all":
		return true
	case "none":
		return false
	}
	return matches(p.Filter, userCode, owner) && !matches(p.Exclude, userCode, "")
}

func matches(c map[string]any, userCode, owner string) bool {
	if c == nil {
		return false
	}
	if all, _ := c["all"].(bool); all {
		return true
	}
	if o, _ := c["owner"].(string); o != "" && o == owner {
		return true
	}
	uc := strings.ToLower(userCode)
	if codes, _ := c["user_codes"].([]string); slices.Contains(codes, uc) {
		return true
	}
	prefixes, _ := c["user_code_prefixes"].([]string)
	for _, p := range prefixes {
		if strings.HasPrefix(uc, p) {
			return true
		}
	}
	patterns, _ := c["user_code_patterns"].([]string)
	for _, p := range patterns {
		if ok, _ := path.Match(p, uc); ok {
			return true
		}
	}
	return false
}

// TestPlanAgreesWithDecide draws members, list actions and objects over
// generated tenants and checks that applying the plan keeps exactly the
// objects /v1/decide allows.
func TestPlanAgreesWithDecide(t *testing.T) {
	ctx := context.Background()
	for _, seed := range []uint64{1, 2, 3} {
		spec := worldgen.Small
		spec.Seed = seed
		engine, w := loadWorld(t, spec)
		rng := rand.New(rand.NewPCG(seed, 5))
		objects := spec.ResourceGroups * spec.ObjectsPerRG
		checked, allowed := 0, 0
		for tn := 0; tn < spec.Tenants; tn++ {
			tenant := worldgen.TenantCode(tn)
			for i := 0; i < 15; i++ {
				member := worldgen.MemberName(rng.IntN(spec.Members))
				if i == 0 {
					member = worldgen.MemberName(0) // an admin
				}
				for vs := 0; vs < spec.ViewSets; vs++ {
					action := fmt.Sprintf("finmars:%s:list", worldgen.ViewSet(vs))
					plan, err := engine.Plan(ctx, &decision.PlanRequest{Tenant: tenant, Member: member, Action: action,
						Model: fmt.Sprintf("vs%03d:item", vs)})
					if err != nil {
						t.Fatal(err)
					}
					for k := 0; k < 12; k++ {
						frn := worldgen.ObjectFRN(vs, rng.IntN(objects))
						owner := worldgen.MemberName(rng.IntN(spec.Members))
						if k%4 == 0 {
							owner = member
						}
						d, err := engine.Decide(ctx, &decision.Request{Tenant: tenant, Member: member, Action: action,
							Resource: &decision.Resource{FRN: frn, Owner: owner}})
						if err != nil {
							t.Fatal(err)
						}
						f, _ := acl.ParseFRN(frn)
						if got := passes(plan, f.UserCode, owner); got != d.Allow {
							t.Fatalf("seed %d, %s/%s %s on %s (owner %s): decide allow=%v (%v) but the plan %s filter=%v exclude=%v keeps it=%v",
								seed, tenant, member, action, frn, owner, d.Allow, d.Reasons, plan.Kind, plan.Filter, plan.Exclude, got)
						}
						checked++
						if d.Allow {
							allowed++
						}
					}
				}
			}
		}
		if allowed == 0 || allowed == checked {
			t.Fatalf("seed %d: %d of %d objects allowed: the world does not exercise both outcomes", seed, allowed, checked)
		}
		_ = w
	}
}

func TestPlanKinds(t *testing.T) {
	engine := demoEngine(t)
	ctx := context.Background()
	list := &decision.HTTPRequest{Method: "GET", Path: "/api/v1/portfolios/portfolio/"}
	tests := []struct {
		name, tenant, member string
		want                 string
	}{
		{"admin sees everything", "bank", "admin", "all"},
		{"manager is filtered", "bank", "user_a", "some"},
		{"anonymous sees nothing", "bank", "", "none"},
		{"unknown tenant sees nothing", "nope", "user_a", "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := engine.Plan(ctx, &decision.PlanRequest{Tenant: tt.tenant, Member: tt.member, Request: list})
			if err != nil {
				t.Fatal(err)
			}
			if p.Kind != tt.want {
				t.Errorf("kind = %s, want %s (reasons %v)", p.Kind, tt.want, p.Reasons)
			}
		})
	}
}
