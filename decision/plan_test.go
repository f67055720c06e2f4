package decision_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/datafilter"
	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/loader/loadertest"
	"github.com/verdict-authz/verdict/test/ucasteval"
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
		if starGlob(p).MatchString(uc) {
			return true
		}
	}
	return false
}

// starGlob compiles a user_code_patterns or resource_group_patterns entry as
// the README documents it: "*" matches any run of characters, every other
// character stands for itself.
func starGlob(pattern string) *regexp.Regexp {
	parts := strings.Split(pattern, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(`(?s)\A` + strings.Join(parts, ".*") + `\z`)
}

// TestPlanAgreesWithDecide draws members, list actions and objects over
// generated tenants and checks that applying the plan keeps exactly the
// objects /v1/decide allows, and so does the UCAST filter the Compile API
// translates the plan to (decision/datafilter; its own test runs the SQL
// filter on PostgreSQL and covers prefixes, patterns and group columns).
func TestPlanAgreesWithDecide(t *testing.T) {
	ctx := t.Context()
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
					filter, err := datafilter.Translate(plan, datafilter.Target{Kind: "ucast", Dialect: "all"}, nil)
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
						if filter != nil {
							row := map[string]string{"resource.user_code": strings.ToLower(f.UserCode), "resource.owner": owner}
							kept, err := ucasteval.Eval(filter.(map[string]any), row)
							if err != nil || kept != d.Allow {
								t.Fatalf("seed %d, %s/%s %s on %s (owner %s): decide allow=%v but the UCAST filter %v keeps it=%v (%v)",
									seed, tenant, member, action, frn, owner, d.Allow, filter, kept, err)
							}
						} else if d.Allow {
							t.Fatalf("seed %d, %s/%s %s on %s: decide allows, the plan %s has no filter", seed, tenant, member, action, frn, plan.Kind)
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
	ctx := t.Context()
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

// TestPlanOwnerFilterHonoursExtRules: intern has no policy, so a list plan
// filters by owner; the demo's ip_blocked extension rule reads only
// input.context, and decide denies intern's own objects from a blocked IP,
// so the plan must keep nothing then (as it already did for user_a).
func TestPlanOwnerFilterHonoursExtRules(t *testing.T) {
	engine := demoEngine(t)
	ctx := t.Context()
	list := &decision.HTTPRequest{Method: "GET", Path: "/api/v1/portfolios/portfolio/"}
	tests := []struct {
		name, member, ip string
		wantKind         string
		wantFilter       map[string]any
		wantReasons      []string
		wantOwnedAllowed bool
	}{
		{"intern from a blocked IP", "intern", "203.0.113.66", "none", nil, []string{"ext.ip_blocked"}, false},
		{"intern from another IP", "intern", "198.51.100.7", "some", map[string]any{"owner": "intern"}, []string{}, true},
		{"user_a from a blocked IP", "user_a", "203.0.113.66", "none", nil, []string{"ext.ip_blocked"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reqCtx := map[string]any{"ip": tt.ip}
			p, err := engine.Plan(ctx, &decision.PlanRequest{Tenant: "bank", Member: tt.member, Request: list,
				Model: "portfolios:portfolio", Context: reqCtx})
			if err != nil {
				t.Fatal(err)
			}
			if p.Kind != tt.wantKind || !reflect.DeepEqual(p.Filter, tt.wantFilter) || !slices.Equal(reasonCodes(p.Reasons), tt.wantReasons) {
				t.Errorf("plan = %s filter=%v reasons=%v, want %s filter=%v reasons=%v",
					p.Kind, p.Filter, reasonCodes(p.Reasons), tt.wantKind, tt.wantFilter, tt.wantReasons)
			}
			code := tt.member + "-pf"
			d, err := engine.Decide(ctx, &decision.Request{Tenant: "bank", Member: tt.member, Request: list, Context: reqCtx,
				Resource: &decision.Resource{FRN: "frn:finmars:portfolios:portfolio:" + code, Owner: tt.member}})
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != tt.wantOwnedAllowed {
				t.Errorf("decide on an owned object: allow=%v (%v), want %v", d.Allow, reasonCodes(d.Reasons), tt.wantOwnedAllowed)
			}
			if got := passes(p, code, tt.member); got != d.Allow {
				t.Errorf("the plan keeps the owned object %s: %v, but decide allow=%v (%v)", code, got, d.Allow, reasonCodes(d.Reasons))
			}
		})
	}
}

func reasonCodes(rs []decision.Reason) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.Code)
	}
	return out
}

// TestPlanCriteriaAreTheStatementsText: statement resources whose codes hold
// glob meta characters other than "*" (testdata/plan_metachars). The loader
// escapes them for glob.match; the plan's prefixes and patterns carry the
// statement's text, so a service applying them as documented keeps exactly
// what decide allows.
func TestPlanCriteriaAreTheStatementsText(t *testing.T) {
	engine, _ := loadertest.Load(t, []loader.Source{{Name: "metachars", Location: filepath.Join("testdata", "plan_metachars")}})
	ctx := t.Context()
	const action = "finmars:Portfolio:list"
	p, err := engine.Plan(ctx, &decision.PlanRequest{Tenant: "bank", Member: "user_a", Action: action, Model: "portfolios:portfolio"})
	if err != nil {
		t.Fatal(err)
	}
	wantFilter := map[string]any{
		"owner":                   "user_a",
		"user_codes":              []string{"plain-code"},
		"user_code_prefixes":      []string{`a?b{c}\d`, "book", "book[1]"},
		"user_code_patterns":      []string{"x[2]*y"},
		"resource_group_patterns": []string{"grp[x]*"},
	}
	wantExclude := map[string]any{
		"user_code_prefixes": []string{"book[1]-secret"},
		"user_code_patterns": []string{"x[2]*-secret*y"},
	}
	if p.Kind != "some" || !reflect.DeepEqual(p.Filter, wantFilter) || !reflect.DeepEqual(p.Exclude, wantExclude) {
		t.Errorf("plan = %s\nfilter  %#v\nexclude %#v\nwant filter  %#v\nwant exclude %#v", p.Kind, p.Filter, p.Exclude, wantFilter, wantExclude)
	}
	for _, code := range []string{
		"book[1]", "Book[1]-A", "book1", "book1-a", "book[1]-secret", "book[1]-secret-2",
		`a?b{c}\d`, `a?b{c}\d-z`, `axb{c}\d`, `a?bc\d`, `a?b{c}d`,
		"x[2]y", "x[2]zzy", "x2y", "x[2]y-z", "x[2]-secret-y", "x[2]-secretz",
		"plain-code", "Plain-Code", "other",
	} {
		d, err := engine.Decide(ctx, &decision.Request{Tenant: "bank", Member: "user_a", Action: action,
			Resource: &decision.Resource{FRN: "frn:finmars:portfolios:portfolio:" + code, Owner: "someone_else"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := passes(p, code, "someone_else"); got != d.Allow {
			t.Errorf("%s: decide allow=%v (%v) but the plan keeps it=%v", code, d.Allow, reasonCodes(d.Reasons), got)
		}
	}
}

// TestPlanExpandsGroupPatterns: a statement on a resource-group pattern
// (team-*, secret-*) adds the user codes of the objects the bundle assigns
// to every matching group, as a literal group does, so that a service that
// does not store groups still excludes what a Deny on secret-* denies.
func TestPlanExpandsGroupPatterns(t *testing.T) {
	engine, _ := loadertest.Load(t, []loader.Source{{Name: "filters", Location: filepath.Join("datafilter", "testdata", "filters")}})
	p, err := engine.Plan(t.Context(), &decision.PlanRequest{Tenant: "bank", Member: "user_a",
		Action: "finmars:Portfolio:list", Model: "portfolios:portfolio"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Filter["user_codes"], []string{"a1", "a2", "b1", "plain_code"}; !reflect.DeepEqual(got, want) {
		t.Errorf("filter user_codes = %v, want %v (team-a and team-b's objects, of the listed model)", got, want)
	}
	if got, want := p.Exclude["user_codes"], []string{"a2", "s1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("exclude user_codes = %v, want %v (secret-vault's objects)", got, want)
	}
	for _, code := range []string{"a1", "A2", "s1", "b1"} {
		d, err := engine.Decide(t.Context(), &decision.Request{Tenant: "bank", Member: "user_a", Action: "finmars:Portfolio:list",
			Resource: &decision.Resource{FRN: "frn:finmars:portfolios:portfolio:" + code, Owner: "someone"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := passes(p, code, "someone"); got != d.Allow {
			t.Errorf("%s: decide allow=%v (%v), the plan keeps it=%v", code, d.Allow, reasonCodes(d.Reasons), got)
		}
	}
}
