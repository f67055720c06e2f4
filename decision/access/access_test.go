package access_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/access"
	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/loader/loadertest"
	"github.com/verdict-authz/verdict/test/worldgen"
)

// loadWorld writes a generated world as a bundle and loads it.
func loadWorld(tb testing.TB, spec worldgen.Spec) *decision.Engine {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "world")
	if err := worldgen.Generate(spec).WriteBundle(dir, "world-1"); err != nil {
		tb.Fatal(err)
	}
	engine, _ := loadertest.Load(tb, []loader.Source{{Name: "world", Location: dir}})
	return engine
}

func pin(tb testing.TB, e *decision.Engine) *decision.Pinned {
	tb.Helper()
	p, err := e.Pin()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// allPages runs a review page by page (limit grants a page) and returns
// every grant, failing when a page breaks the paging contract.
func allPages(t *testing.T, run func(context.Context, *decision.Pinned, access.Query, access.Progress) (*access.Page, error), p *decision.Pinned, q access.Query) []access.Grant {
	t.Helper()
	var grants []access.Grant
	asked := 0
	for pages := 0; ; pages++ {
		page, err := run(context.Background(), p, q, nil)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		if len(page.Grants) > max(q.Limit, 1) {
			t.Fatalf("%+v: %d grants on a page of %d", q, len(page.Grants), q.Limit)
		}
		grants = append(grants, page.Grants...)
		asked += page.Asked
		if page.NextCursor == "" {
			if asked != page.Total {
				t.Fatalf("%+v: the pages asked %d questions of %d", q, asked, page.Total)
			}
			return grants
		}
		if pages > page.Total {
			t.Fatalf("%+v: paging does not end", q)
		}
		q.Cursor = page.NextCursor
	}
}

// checkWhoCan holds who-can for (tenant, key, action, frn) to Decide: every
// member it lists is allowed with the same reasons, and every member it does
// not list is denied.
func checkWhoCan(t *testing.T, e *decision.Engine, p *decision.Pinned, tenant *access.Tenant, members []string, key, action, frn string, limit int) {
	t.Helper()
	grants := allPages(t, access.WhoCan, p, access.Query{Tenant: tenant.Code, Key: key, Action: action, FRN: frn, Limit: limit})
	listed := map[string]access.Grant{}
	for _, g := range grants {
		if _, dup := listed[g.Member]; dup {
			t.Fatalf("who-can %s %s %s lists %s twice", tenant.Code, action, frn, g.Member)
		}
		listed[g.Member] = g
	}
	for _, m := range members {
		req := &decision.Request{Tenant: tenant.Code, Key: key, Member: m, Action: action}
		if frn != "" {
			req.Resource = &decision.Resource{FRN: frn}
		}
		d, err := e.Decide(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		g, ok := listed[m]
		if ok != d.Allow {
			t.Fatalf("who-can %s %s frn=%q key=%.8s: listed(%s)=%v but /v1/decide allow=%v %v", tenant.Code, action, frn, key, m, ok, d.Allow, d.Reasons)
		}
		if ok && !reflect.DeepEqual(g.Reasons, d.Reasons) {
			t.Fatalf("who-can %s %s %s: reasons differ:\n%v\n%v", tenant.Code, action, m, g.Reasons, d.Reasons)
		}
	}
}

func TestWhoCanAgreesWithDecideOnTheDemo(t *testing.T) {
	e, _ := loadertest.Demo(t)
	p := pin(t, e)
	codes, err := access.Tenants(p)
	if err != nil {
		t.Fatal(err)
	}
	allowed := 0
	for _, code := range codes {
		tenant, err := access.LoadTenant(p, code)
		if err != nil {
			t.Fatal(err)
		}
		keys := append([]string{""}, tenant.Keys...)
		frns := append([]string{""}, tenant.Objects...)
		for _, key := range keys {
			for _, action := range tenant.Actions {
				for _, frn := range frns {
					checkWhoCan(t, e, p, tenant, tenant.Members, key, action, frn, 2)
				}
			}
		}
		page, err := access.WhoCan(context.Background(), p, access.Query{Tenant: code, Action: tenant.Actions[0], Limit: access.MaxLimit}, nil)
		if err != nil {
			t.Fatal(err)
		}
		allowed += len(page.Grants)
	}
	if allowed == 0 {
		t.Fatal("no review of the demo allowed anyone: the check compared only denies")
	}
}

func TestWhoCanAgreesWithDecideOnAGeneratedTenant(t *testing.T) {
	e := loadWorld(t, worldgen.Small)
	p := pin(t, e)
	tenant, err := access.LoadTenant(p, worldgen.TenantCode(0))
	if err != nil {
		t.Fatal(err)
	}
	if len(tenant.Members) != worldgen.Small.Members {
		t.Fatalf("%d members, want %d", len(tenant.Members), worldgen.Small.Members)
	}
	frns := []string{"", tenant.Objects[len(tenant.Objects)/2]}
	for _, action := range tenant.Actions {
		for _, frn := range frns {
			checkWhoCan(t, e, p, tenant, tenant.Members, "", action, frn, 7)
		}
	}
}

// TestWhoCanAgreesWithDecideOnALargeTenant reviews the 10,000-member
// tenant for a random action, without and with an object, and checks a sample of its members.
func TestWhoCanAgreesWithDecideOnALargeTenant(t *testing.T) {
	e := loadWorld(t, worldgen.Bench)
	p := pin(t, e)
	tenant, err := access.LoadTenant(p, worldgen.TenantCode(0))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(19, 1))
	action := tenant.Actions[rng.IntN(len(tenant.Actions))]
	for _, frn := range []string{"", tenant.Objects[rng.IntN(len(tenant.Objects))]} {
		grants := allPages(t, access.WhoCan, p, access.Query{Tenant: tenant.Code, Action: action, FRN: frn, Limit: access.MaxLimit})
		listed := map[string]bool{}
		for _, g := range grants {
			listed[g.Member] = true
		}
		// Half the sample from the members listed, half from all of them.
		sample := make([]string, 0, 300)
		for range 150 {
			sample = append(sample, grants[rng.IntN(len(grants))].Member, tenant.Members[rng.IntN(len(tenant.Members))])
		}
		for _, m := range sample {
			req := &decision.Request{Tenant: tenant.Code, Member: m, Action: action}
			if frn != "" {
				req.Resource = &decision.Resource{FRN: frn}
			}
			d, err := e.Decide(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if listed[m] != d.Allow {
				t.Fatalf("who-can %s frn=%q: listed(%s)=%v, /v1/decide allow=%v", action, frn, m, listed[m], d.Allow)
			}
		}
	}
}

func TestWhatCanAgreesWithDecide(t *testing.T) {
	e, _ := loadertest.Demo(t)
	p := pin(t, e)
	tenant, err := access.LoadTenant(p, "bank")
	if err != nil {
		t.Fatal(err)
	}
	for _, member := range tenant.Members {
		for _, frn := range append([]string{""}, tenant.Objects...) {
			grants := allPages(t, access.WhatCan, p, access.Query{Tenant: "bank", Member: member, FRN: frn, Limit: 3})
			var got, want []string
			for _, g := range grants {
				got = append(got, g.Action)
			}
			for _, action := range tenant.Actions {
				req := &decision.Request{Tenant: "bank", Member: member, Action: action}
				if frn != "" {
					req.Resource = &decision.Resource{FRN: frn}
				}
				d, err := e.Decide(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				if d.Allow {
					want = append(want, action)
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("what-can %s frn=%q:\n got %v\nwant %v", member, frn, got, want)
			}
		}
	}
}

func TestVocabulary(t *testing.T) {
	e, _ := loadertest.Demo(t)
	p := pin(t, e)
	tenant, err := access.LoadTenant(p, "bank")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"finmars:Portfolio:list",         // a collection route
		"finmars:Portfolio:list_light",   // a custom route
		"finmars:PortfolioType:retrieve", // under banking-full's finmars:PortfolioType:*
	} {
		if _, ok := tenant.Action(want); !ok {
			t.Errorf("the vocabulary of bank lacks %s: %v", want, tenant.Actions)
		}
	}
	if got, ok := tenant.Action("FINMARS:portfolio:LIST"); !ok || got != "finmars:Portfolio:list" {
		t.Errorf("Action ignores case: got %q %v", got, ok)
	}
}

func TestReviewErrors(t *testing.T) {
	e, _ := loadertest.Demo(t)
	p := pin(t, e)
	ctx := context.Background()
	notFound := func(kind, name string) func(error) bool {
		return func(err error) bool {
			var nf *access.NotFoundError
			return errors.As(err, &nf) && nf.Kind == kind && nf.Name == name
		}
	}
	badInput := func(field string) func(error) bool {
		return func(err error) bool {
			var in *decision.InputError
			return errors.As(err, &in) && in.Field == field
		}
	}
	for _, tc := range []struct {
		name string
		run  func() error
		want func(error) bool
	}{
		{"unknown tenant", func() error {
			_, err := access.WhoCan(ctx, p, access.Query{Tenant: "nope", Action: "finmars:Portfolio:list"}, nil)
			return err
		}, notFound("tenant", "nope")},
		{"unknown action", func() error {
			_, err := access.WhoCan(ctx, p, access.Query{Tenant: "bank", Action: "finmars:Nothing:list"}, nil)
			return err
		}, notFound("action", "finmars:Nothing:list")},
		{"unknown member", func() error {
			_, err := access.WhatCan(ctx, p, access.Query{Tenant: "bank", Member: "ghost"}, nil)
			return err
		}, notFound("member", "ghost")},
		{"no action", func() error {
			_, err := access.WhoCan(ctx, p, access.Query{Tenant: "bank"}, nil)
			return err
		}, badInput("action")},
		{"wildcard action", func() error {
			_, err := access.WhoCan(ctx, p, access.Query{Tenant: "bank", Action: "finmars:*"}, nil)
			return err
		}, badInput("action")},
		{"malformed frn", func() error {
			_, err := access.WhoCan(ctx, p, access.Query{Tenant: "bank", Action: "finmars:Portfolio:list", FRN: "portfolio-7"}, nil)
			return err
		}, badInput("frn")},
		{"resource group frn", func() error {
			_, err := access.WhatCan(ctx, p, access.Query{Tenant: "bank", Member: "user_a", FRN: "frn:finmars:iam:resourcegroup:portfolio_group_a"}, nil)
			return err
		}, badInput("frn")},
		{"limit too large", func() error {
			_, err := access.WhoCan(ctx, p, access.Query{Tenant: "bank", Action: "finmars:Portfolio:list", Limit: access.MaxLimit + 1}, nil)
			return err
		}, badInput("limit")},
		{"forged cursor", func() error {
			_, err := access.WhoCan(ctx, p, access.Query{Tenant: "bank", Action: "finmars:Portfolio:list", Cursor: "user_a"}, nil)
			return err
		}, badInput("cursor")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); !tc.want(err) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestReviewReportsProgress(t *testing.T) {
	e, _ := loadertest.Demo(t)
	var calls []int
	page, err := access.WhoCan(context.Background(), pin(t, e), access.Query{Tenant: "bank", Action: "finmars:Portfolio:list", Limit: access.MaxLimit},
		func(done, total int) { calls = append(calls, done, total) })
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 2*page.Total || calls[len(calls)-2] != page.Total || calls[len(calls)-1] != page.Total {
		t.Fatalf("progress calls %v for %d members", calls, page.Total)
	}
}
