package decision_test

import (
	"context"
	"testing"

	"github.com/verdict-authz/verdict/decision"
)

// The demo's tenants give a like-for-like comparison of the layers' cost:
// an IAM-only decision (bank) and the same kind of decision on a tenant
// with both the package and IAM layers (tnt1 with user2's key override)
// and a package-only one (tnt2).
func benchmarkDemoDecision(b *testing.B, req decision.Request) {
	engine := demoEngine(b)
	ctx := context.Background()
	d, err := engine.Decide(ctx, clone(&req))
	if err != nil || !d.Allow {
		b.Fatalf("the benchmark request is not allowed: %v %+v", err, d)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := engine.Decide(ctx, clone(&req)); err != nil {
			b.Fatal(err)
		}
	}
}

// clone copies the parts Validate normalises in place.
func clone(r *decision.Request) *decision.Request {
	c := *r
	if r.Request != nil {
		hr := *r.Request
		c.Request = &hr
	}
	return &c
}

const demoKeyTnt2 = "2423205b6ccd825aaa3dbf7f248f807996c1f39f4e128801107a10ea55eac9686f23b883b778b1763876fe47f7cc651fea232f7aa9dae3dfd1978d4948a3f26b948ebc1b71a9d6cacf08852312866d757b22392d8d3c0e28ee47edb0e7478157"

func BenchmarkLayersIAMOnly(b *testing.B) {
	benchmarkDemoDecision(b, decision.Request{Tenant: "bank", Member: "user_a",
		Request:  &decision.HTTPRequest{Method: "GET", Path: "/api/v1/portfolios/portfolio/7/"},
		Resource: &decision.Resource{FRN: "frn:finmars:portfolios:portfolio:bonds-portfolio"}})
}

func BenchmarkLayersPackageOnly(b *testing.B) {
	benchmarkDemoDecision(b, decision.Request{Key: demoKeyTnt2, Member: "goldie",
		Request: &decision.HTTPRequest{Service: "example04", Method: "GET", Path: "/users/7"}})
}
