package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/test/worldgen"
)

// The in-process comparison: verdict's Engine.Decide against an OPA
// PreparedEvalQuery of the comparison policy over an inmem store holding
// the same world, on the same questions.
//
//	go test -run '^$' -bench InProcess -benchmem ./test/bench
//
// VERDICT_BENCH_SCALE picks the world (small, medium or large; default
// medium, the 10 tenants × 10,000 members); VERDICT_BENCH_OPA_POLICY
// names another comparison policy file to try.

func benchSpec(tb testing.TB) worldgen.Spec {
	name := os.Getenv("VERDICT_BENCH_SCALE")
	if name == "" {
		name = "medium"
	}
	spec, ok := scales[name]
	if !ok {
		tb.Fatalf("VERDICT_BENCH_SCALE=%q: want small, medium or large", name)
	}
	return spec
}

// loadVerdict writes the world as a bundle and loads it into an engine.
func loadVerdict(tb testing.TB, w *worldgen.World) *decision.Engine {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "world")
	if err := w.WriteBundle(dir, "bench"); err != nil {
		tb.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	engine := decision.NewEngine(quiet)
	ld, err := loader.New(engine, quiet)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := ld.LoadAll(context.Background(), []loader.Source{{Name: "world", Location: dir}}); err != nil {
		tb.Fatal(err)
	}
	return engine
}

// prepareOPA prepares the comparison policy's decision over an inmem store
// with the world's data, the way an application embedding OPA would. With
// readAST the store keeps AST values (what opa run
// --optimize-store-for-read-speed does).
func prepareOPA(tb testing.TB, w *worldgen.World, readAST bool) rego.PreparedEvalQuery {
	tb.Helper()
	// The data goes through JSON, as it would from a bundle's data.json.
	raw, err := json.Marshal(w.Data())
	if err != nil {
		tb.Fatal(err)
	}
	var data map[string]any
	if err := json.Unmarshal(raw, &data); err != nil {
		tb.Fatal(err)
	}
	store := inmem.NewFromObjectWithOpts(data, inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(readAST))
	module := authzRego
	if path := os.Getenv("VERDICT_BENCH_OPA_POLICY"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			tb.Fatal(err)
		}
		module = string(b)
	}
	pq, err := rego.New(
		rego.Query("data.bench.authz.decision"),
		rego.Module("authz.rego", module),
		rego.Store(store),
		rego.StoreReadAST(readAST),
	).PrepareForEval(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return pq
}

func toDecisionRequest(q question) *decision.Request {
	r := &decision.Request{Tenant: q.Tenant, Member: q.Member, Action: q.Action}
	if q.Resource != nil {
		r.Resource = &decision.Resource{FRN: q.Resource.FRN, Owner: q.Resource.Owner}
	}
	return r
}

// toInput is the question as an application would hand it to OPA.
func toInput(q question) map[string]any {
	in := map[string]any{"tenant": q.Tenant, "action": q.Action}
	if q.Member != "" {
		in["member"] = q.Member
	}
	if q.Resource != nil {
		res := map[string]any{}
		if q.Resource.FRN != "" {
			res["frn"] = q.Resource.FRN
		}
		if q.Resource.Owner != "" {
			res["owner"] = q.Resource.Owner
		}
		in["resource"] = res
	}
	return in
}

func verdictAnswer(tb testing.TB, e *decision.Engine, r *decision.Request) answer {
	d, err := e.Decide(context.Background(), r)
	if err != nil {
		tb.Fatal(err)
	}
	a := answer{Allow: d.Allow}
	for _, reason := range d.Reasons {
		if a.Allow || reason.Effect == "deny" {
			a.Code = reason.Code
			break
		}
	}
	return a
}

func opaAnswer(tb testing.TB, pq rego.PreparedEvalQuery, in map[string]any) answer {
	rs, err := pq.Eval(context.Background(), rego.EvalInput(in))
	if err != nil {
		tb.Fatal(err)
	}
	if len(rs) != 1 {
		tb.Fatalf("decision undefined for %v", in)
	}
	m := rs[0].Expressions[0].Value.(map[string]any)
	return answer{Allow: m["allow"].(bool), Code: m["code"].(string)}
}

// TestComparisonPolicyAgrees checks, in process and in a few seconds, that
// the OPA comparison policy answers like verdict on a small world: same
// allow, same deciding reason code. The harness repeats the check over
// HTTP at every scale before it measures anything.
func TestComparisonPolicyAgrees(t *testing.T) {
	w := worldgen.Generate(worldgen.Spec{Seed: 3, Tenants: 2, Members: 200, Policies: 200, ResourceGroups: 100, ObjectsPerRG: 5, ViewSets: 10})
	engine := loadVerdict(t, w)
	pq := prepareOPA(t, w, false)
	qs := sampleQuestions(w, 3000, 1.1)
	counts := map[string]int{}
	for _, q := range qs {
		want := verdictAnswer(t, engine, toDecisionRequest(q))
		got := opaAnswer(t, pq, toInput(q))
		counts[want.Code]++
		if got != want {
			b, _ := json.Marshal(q)
			t.Errorf("%s: verdict %v/%s, OPA policy %v/%s", b, want.Allow, want.Code, got.Allow, got.Code)
		}
	}
	// The sample must exercise every IAM outcome the worlds can produce.
	for _, code := range []string{"iam.allow", "iam.no_allow", "iam.explicit_deny", "resource.not_covered", "resource.owner", "iam.admin", "iam.unknown_member", "iam.anonymous", "tenant.unknown"} {
		if counts[code] == 0 {
			t.Errorf("no question in the sample ends in %s (outcomes: %v)", code, counts)
		}
	}
}

type benchWorld struct {
	w       *worldgen.World
	streams map[string][]question
}

var cachedWorld *benchWorld

func getBenchWorld(b *testing.B) *benchWorld {
	spec := benchSpec(b)
	if cachedWorld != nil && cachedWorld.w.Spec.Members == spec.Members && cachedWorld.w.Spec.Tenants == spec.Tenants {
		return cachedWorld
	}
	w := worldgen.Generate(spec)
	cachedWorld = &benchWorld{w: w, streams: map[string][]question{
		"uniform": questions(w.Requests(31, 8192)),
		"zipf":    questions(w.ZipfRequests(32, 8192, 1.1)),
	}}
	return cachedWorld
}

// BenchmarkInProcess: Engine.Decide and OPA's prepared query, one decision
// per op, on the uniform and Zipf streams.
func BenchmarkInProcess(b *testing.B) {
	bw := getBenchWorld(b)
	engine := loadVerdict(b, bw.w)
	for _, stream := range []string{"uniform", "zipf"} {
		qs := bw.streams[stream]
		reqs := make([]*decision.Request, len(qs))
		for i, q := range qs {
			reqs[i] = toDecisionRequest(q)
		}
		b.Run("verdict/"+stream, func(b *testing.B) {
			ctx := b.Context()
			b.ReportAllocs()
			b.ResetTimer()
			cpu := selfCPU()
			for i := 0; i < b.N; i++ {
				// A fresh copy: Decide may fill in the request.
				r := *reqs[i%len(reqs)]
				if _, err := engine.Decide(ctx, &r); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu)
		})
	}
	for _, variant := range []struct {
		name    string
		readAST bool
	}{{"opa", false}, {"opa-fast", true}} {
		pq := prepareOPA(b, bw.w, variant.readAST)
		for _, stream := range []string{"uniform", "zipf"} {
			qs := bw.streams[stream]
			inputs := make([]ast.Value, len(qs))
			raw := make([]map[string]any, len(qs))
			for i, q := range qs {
				raw[i] = toInput(q)
				v, err := ast.InterfaceToValue(raw[i])
				if err != nil {
					b.Fatal(err)
				}
				inputs[i] = v
			}
			b.Run(variant.name+"/"+stream, func(b *testing.B) {
				ctx := b.Context()
				b.ReportAllocs()
				b.ResetTimer()
				cpu := selfCPU()
				for i := 0; i < b.N; i++ {
					rs, err := pq.Eval(ctx, rego.EvalParsedInput(inputs[i%len(inputs)]))
					if err != nil || len(rs) != 1 {
						b.Fatal(err, len(rs))
					}
				}
				reportCPU(b, cpu)
			})
		}
	}
}

// reportCPU adds the process's CPU time per op (garbage collection
// included), which other processes on a shared machine disturb less than
// the wall time of ns/op.
func reportCPU(b *testing.B, since time.Duration) {
	b.ReportMetric(float64(selfCPU()-since)/float64(b.N), "cpu-ns/op")
}
