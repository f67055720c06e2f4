package decision_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/httpapi"
	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/loader/loadertest"
	"github.com/verdict-authz/verdict/test/worldgen"
)

// loadWorld writes a generated world as a bundle and loads it.
func loadWorld(tb testing.TB, spec worldgen.Spec, opts ...decision.EngineOption) (*decision.Engine, *worldgen.World) {
	tb.Helper()
	w := worldgen.Generate(spec)
	dir := filepath.Join(tb.TempDir(), "world")
	if err := w.WriteBundle(dir, "bench"); err != nil {
		tb.Fatal(err)
	}
	engine, _ := loadertest.Load(tb, []loader.Source{{Name: "world", Location: dir}}, opts...)
	return engine, w
}

func toDecisionRequests(rs []worldgen.Request) []*decision.Request {
	out := make([]*decision.Request, len(rs))
	for i, r := range rs {
		req := &decision.Request{Tenant: r.Tenant, Member: r.Member, Action: r.Action}
		if r.FRN != "" {
			req.Resource = &decision.Resource{FRN: r.FRN}
		}
		out[i] = req
	}
	return out
}

// BenchmarkEngineDecide measures one in-process decision on a tenant with
// 10,000 members and 1,000 policies.
func BenchmarkEngineDecide(b *testing.B) {
	engine, w := loadWorld(b, worldgen.Bench)
	reqs := toDecisionRequests(w.Requests(1, 4096))
	ctx := context.Background()
	allowed := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, err := engine.Decide(ctx, reqs[i%len(reqs)])
		if err != nil {
			b.Fatal(err)
		}
		if d.Allow {
			allowed++
		}
	}
	b.StopTimer()
	if b.N >= len(reqs) && allowed == 0 {
		b.Fatal("no request was allowed: the benchmark world is not exercising allow paths")
	}
}

// BenchmarkEngineDecideCached is BenchmarkEngineDecide with the decision
// cache on: after the first pass over the 4,096 requests every one is a hit.
func BenchmarkEngineDecideCached(b *testing.B) {
	engine, w := loadWorld(b, worldgen.Bench, decision.WithDecisionCache(decision.CacheOptions{Size: 10000, TTL: time.Hour}))
	reqs := toDecisionRequests(w.Requests(1, 4096))
	ctx := context.Background()
	for _, r := range reqs {
		if _, err := engine.Decide(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := engine.Decide(ctx, reqs[i%len(reqs)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEngineDecideJSONCached is BenchmarkEngineDecideCached for
// POST /v1/decide's path: the 4,096 request bodies are answered from the
// cache byte for byte, without being parsed again.
func BenchmarkEngineDecideJSONCached(b *testing.B) {
	engine, w := loadWorld(b, worldgen.Bench, decision.WithDecisionCache(decision.CacheOptions{Size: 10000, TTL: time.Hour}))
	reqs := toDecisionRequests(w.Requests(1, 4096))
	bodies := make([][]byte, len(reqs))
	for i, r := range reqs {
		body, err := json.Marshal(r)
		if err != nil {
			b.Fatal(err)
		}
		bodies[i] = body
	}
	ctx := context.Background()
	for _, body := range bodies {
		if _, err := engine.DecideJSON(ctx, body, parseBody); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := engine.DecideJSON(ctx, bodies[i%len(bodies)], parseBody); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEngineDecideRoute is BenchmarkEngineDecide with route
// translation (request method and path instead of an action).
func BenchmarkEngineDecideRoute(b *testing.B) {
	engine, _ := loadWorld(b, worldgen.Bench)
	req := &decision.Request{Tenant: "t00", Member: worldgen.MemberName(42),
		Request:  &decision.HTTPRequest{Method: "GET", Path: worldgen.CollectionPath(3) + "17/"},
		Resource: &decision.Resource{FRN: worldgen.ObjectFRN(3, 17)}}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := *req
		hr := *req.Request
		r.Request = &hr
		if _, err := engine.Decide(ctx, &r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHTTPDecide measures POST /v1/decide over loopback HTTP with a
// keep-alive client.
func BenchmarkHTTPDecide(b *testing.B) {
	engine, w := loadWorld(b, worldgen.Bench)
	srv := httptest.NewServer(httpapi.New(engine, httpapi.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	defer srv.Close()
	bodies := make([][]byte, 0, 1024)
	for _, r := range toDecisionRequests(w.Requests(2, 1024)) {
		body, _ := json.Marshal(r)
		bodies = append(bodies, body)
	}
	client := srv.Client()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := client.Post(srv.URL+"/v1/decide", "application/json", bytes.NewReader(bodies[i%len(bodies)]))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkEngineDecideParts splits BenchmarkEngineDecide's work: the Go
// side (gathering facts into the Rego input) and the Rego evaluation of the
// decision rules on that input, over the same requests.
func BenchmarkEngineDecideParts(b *testing.B) {
	engine, w := loadWorld(b, worldgen.Bench)
	reqs := toDecisionRequests(w.Requests(1, 1024))
	gen := engine.Current()
	inputs := make([]ast.Value, len(reqs))
	for i, r := range reqs {
		if err := r.Validate(); err != nil {
			b.Fatal(err)
		}
		v, err := decision.GatherForTest(gen, r)
		if err != nil {
			b.Fatal(err)
		}
		inputs[i] = v
	}
	ctx := context.Background()
	b.Run("gather", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := decision.GatherForTest(gen, reqs[i%len(reqs)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rego", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := decision.EvalForTest(ctx, gen, inputs[i%len(inputs)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEngineDecideByOutcome is BenchmarkEngineDecide split by the
// reason that decides each request (iam.no_allow, resource.not_covered, an
// allow by resource.any, ...), so that a change to one path of the rules is
// measured on the requests that take it.
func BenchmarkEngineDecideByOutcome(b *testing.B) {
	engine, w := loadWorld(b, worldgen.Bench)
	ctx := context.Background()
	byOutcome := map[string][]*decision.Request{}
	var outcomes []string
	for _, r := range toDecisionRequests(w.Requests(1, 4096)) {
		c := *r
		d, err := engine.Decide(ctx, &c)
		if err != nil {
			b.Fatal(err)
		}
		outcome := d.DecidingReason()
		if d.Allow {
			outcome = "allow_" + d.Reasons[len(d.Reasons)-1].Code
		}
		if byOutcome[outcome] == nil {
			outcomes = append(outcomes, outcome)
		}
		byOutcome[outcome] = append(byOutcome[outcome], r)
	}
	sort.Strings(outcomes)
	for _, outcome := range outcomes {
		reqs := byOutcome[outcome]
		if len(reqs) < 16 {
			continue
		}
		b.Run(outcome, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := engine.Decide(ctx, reqs[i%len(reqs)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
