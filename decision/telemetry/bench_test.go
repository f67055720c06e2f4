package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/httpapi"
	"github.com/verdict-authz/verdict/decision/telemetry"
	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/test/worldgen"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// benchSetup is one configuration of the overhead benchmark.
type benchSetup struct {
	name string
	// observe: attach a Telemetry (metrics always on); tracing and log
	// turn on sampled tracing (OTLP/HTTP to a loopback receiver) and the
	// decision log (a file, one mask).
	observe, tracing, log bool
}

var benchSetups = []benchSetup{
	{name: "bare"},               // no observer at all
	{name: "off", observe: true}, // metrics only: tracing and logging off
	{name: "on", observe: true, tracing: true, log: true}, // sampled tracing + decision log
	{name: "tracing", observe: true, tracing: true},       // each alone, to tell their costs apart
	{name: "log", observe: true, log: true},
}

// cached holds the one engine loaded at a time: testing calls a
// sub-benchmark several times (for each b.N), and holding every
// configuration's copy of the large world at once would tax every
// configuration's garbage collection.
var cached struct {
	key    string
	engine *decision.Engine
	tel    *telemetry.Telemetry
	close  func()
}

func cachedEngine(b *testing.B, w *worldgen.World, s benchSetup) (*decision.Engine, *telemetry.Telemetry) {
	key := b.Name()
	if cached.key != key {
		if cached.close != nil {
			cached.close()
		}
		cached.engine, cached.tel, cached.close = nil, nil, nil
		runtime.GC()
		cached.engine, cached.tel, cached.close = newBenchEngine(b, w, s)
		cached.key = key
	}
	return cached.engine, cached.tel
}

// newBenchEngine loads the benchmark world into an engine instrumented as
// s says. close flushes spans and log lines and removes the files. (Not
// b.Cleanup: that would run after the first of testing's calls.)
func newBenchEngine(b *testing.B, w *worldgen.World, s benchSetup) (*decision.Engine, *telemetry.Telemetry, func()) {
	b.Helper()
	tmp, err := os.MkdirTemp("", "verdict-bench-")
	if err != nil {
		b.Fatal(err)
	}
	closers := []func(){func() { os.RemoveAll(tmp) }}
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	dir := filepath.Join(tmp, "world")
	if err := w.WriteBundle(dir, "bench"); err != nil {
		b.Fatal(err)
	}
	var opts []decision.EngineOption
	var tel *telemetry.Telemetry
	if s.observe {
		to := telemetry.Options{Log: quiet, Getenv: func(string) string { return "" }}
		if s.tracing {
			// Tracing exactly as verdict run sets it up from OTEL_*: the
			// OTLP/HTTP exporter behind verdict's batcher, exporting to a
			// receiver on loopback that reads and discards.
			recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/x-protobuf")
			}))
			closers = append(closers, recv.Close)
			env := map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT": recv.URL,
				"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
			}
			for k, v := range env {
				os.Setenv(k, v)
			}
			closers = append(closers, func() {
				for k := range env {
					os.Unsetenv(k)
				}
			})
			to.Getenv = nil // os.Getenv
		}
		if s.log {
			f, err := os.Create(filepath.Join(tmp, "decisions.jsonl"))
			if err != nil {
				b.Fatal(err)
			}
			closers = append(closers, func() { f.Close() })
			to.DecisionLog = f
			to.DecisionLogMask = []string{"/input/key"}
		}
		if tel, err = telemetry.New(context.Background(), to); err != nil {
			b.Fatal(err)
		}
		closers = append(closers, func() { tel.Shutdown(context.Background()) })
		if tel.TracingEnabled() != s.tracing {
			b.Fatalf("tracing enabled = %v, want %v", tel.TracingEnabled(), s.tracing)
		}
		opts = append(opts, decision.WithObserver(tel))
	}
	engine := decision.NewEngine(quiet, opts...)
	ld, err := loader.New(engine, quiet)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := ld.LoadAll(context.Background(), []loader.Source{{Name: "world", Location: dir}}); err != nil {
		b.Fatal(err)
	}
	return engine, tel, closeAll
}

func benchRequests(w *worldgen.World) []*decision.Request {
	rs := w.Requests(3, 2048)
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

// warmUp runs op a few hundred times and collects the garbage that
// loading the world left, so that the measured loop starts from a steady
// heap.
func warmUp(op func(i int)) {
	for i := 0; i < 200; i++ {
		op(i)
	}
	runtime.GC()
}

// processCPU is the CPU time the process has used (user + system): with
// cpu-ns/op it tells the whole cost of a configuration, background
// goroutines (span export, log writer) included, and is less disturbed
// than wall time by whatever else runs on the machine.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportPercentiles reports p50 and p99 of the per-operation latencies.
func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Nanoseconds()) }
	b.ReportMetric(at(0.50), "p50-ns")
	b.ReportMetric(at(0.99), "p99-ns")
}

// BenchmarkObservabilityOverheadHTTP measures POST /v1/decide over
// loopback HTTP (a keep-alive client, a traceparent on every request) on
// the 10,000-member benchmark tenant, with telemetry bare, off (metrics
// only) and on (sampled tracing exported over OTLP/HTTP + decision log
// file). Compare p50-ns and p99-ns of off and on.
func BenchmarkObservabilityOverheadHTTP(b *testing.B) {
	w := worldgen.Generate(worldgen.Bench)
	bodies := make([][]byte, 0, 2048)
	for _, r := range benchRequests(w) {
		body, _ := json.Marshal(r)
		bodies = append(bodies, body)
	}
	for _, s := range benchSetups {
		b.Run(s.name, func(b *testing.B) {
			engine, tel := cachedEngine(b, w, s)
			srv := httptest.NewServer(httpapi.New(engine, httpapi.Options{Log: quiet, Telemetry: tel}))
			defer srv.Close()
			client := srv.Client()
			post := func(i int) time.Duration {
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/decide", bytes.NewReader(bodies[i%len(bodies)]))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				d := time.Since(t0)
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
				return d
			}
			warmUp(func(i int) { post(i) })
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			cpu0 := processCPU()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				lat = append(lat, post(i))
			}
			b.StopTimer()
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
			reportPercentiles(b, lat)
			if tel != nil && tel.DecisionLog() != nil {
				b.ReportMetric(float64(tel.DecisionLog().Dropped()), "dropped")
			}
		})
	}
}

// BenchmarkObservabilityOverheadEngine is the same comparison in process
// (Engine.Decide, no HTTP), where the instrumentation is a larger share.
func BenchmarkObservabilityOverheadEngine(b *testing.B) {
	w := worldgen.Generate(worldgen.Bench)
	reqs := benchRequests(w)
	for _, s := range benchSetups {
		b.Run(s.name, func(b *testing.B) {
			engine, tel := cachedEngine(b, w, s)
			ctx := b.Context()
			if s.tracing {
				ctx = tracedContext()
			}
			decide := func(i int) time.Duration {
				// A fresh copy: the decision log keeps what it is handed.
				req := *reqs[i%len(reqs)]
				t0 := time.Now()
				if _, err := engine.Decide(ctx, &req); err != nil {
					b.Fatal(err)
				}
				return time.Since(t0)
			}
			warmUp(func(i int) { decide(i) })
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			cpu0 := processCPU()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				lat = append(lat, decide(i))
			}
			b.StopTimer()
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
			reportPercentiles(b, lat)
			if tel != nil && tel.DecisionLog() != nil {
				b.ReportMetric(float64(tel.DecisionLog().Dropped()), "dropped")
			}
		})
	}
}

// tracedContext carries a sampled remote parent, as the HTTP middleware
// makes from a traceparent header.
func tracedContext() context.Context {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	return trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true,
	}))
}
