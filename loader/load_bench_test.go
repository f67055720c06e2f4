package loader_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/test/worldgen"
)

// BenchmarkLoad100k loads one tenant of 100,000 members (worldgen.Bench with
// Members: 100000: 1,000 policies, 1,000 resource groups) from a bundle
// directory with LoadAll — read, validate, compile, store, install — and
// reports, besides the time per load, the CPU time it took (cpu-s/op, the
// garbage collector's included) and the live heap that the loaded
// generation and the loader's bundles hold after a full GC:
//
//	go test ./loader/ -run '^$' -bench 'Load100k$' -benchtime 1x -count 3
//
// BenchmarkLoad10k is the same for the reference tenant (10,000 members).
// Benchmarks do not run under plain go test. With VERDICT_LOAD_HEAPPROFILE=FILE
// the heap profile of the loaded state is written to FILE (read it with
// go tool pprof -sample_index=inuse_space).
func BenchmarkLoad100k(b *testing.B) { benchmarkLoad(b, 1, 100000) }

// BenchmarkLoad10k: see BenchmarkLoad100k.
func BenchmarkLoad10k(b *testing.B) { benchmarkLoad(b, 1, 10000) }

// BenchmarkLoadMedium loads the medium world of test/bench (the one the
// OPA comparison's RSS figures are for): 10 tenants of 10,000 members, each
// with 1,000 policies and 1,000 resource groups.
func BenchmarkLoadMedium(b *testing.B) { benchmarkLoad(b, 10, 10000) }

func benchmarkLoad(b *testing.B, tenants, members int) {
	spec := worldgen.Bench
	spec.Tenants, spec.Members = tenants, members
	dir := filepath.Join(b.TempDir(), "world")
	if err := worldgen.Generate(spec).WriteBundle(dir, "bench"); err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	sources := []loader.Source{{Name: "world", Location: dir}}
	var heap, objects, cpu float64
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		cpuBefore := processCPU(b)
		b.StartTimer()

		engine := decision.NewEngine(quiet)
		ld, err := loader.New(engine, quiet)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ld.LoadAll(ctx, sources); err != nil {
			b.Fatal(err)
		}

		b.StopTimer()
		cpu = processCPU(b) - cpuBefore
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		heap = float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
		objects = float64(after.HeapObjects - before.HeapObjects)
		if engine.Current() == nil || ld.Bundle("world") == nil {
			b.Fatal("nothing installed")
		}
		if path := os.Getenv("VERDICT_LOAD_HEAPPROFILE"); path != "" {
			writeHeapProfile(b, path)
		}
		runtime.KeepAlive(engine)
		ld.Close()
		b.StartTimer()
	}
	b.ReportMetric(heap, "live-heap-MiB")
	b.ReportMetric(objects, "live-objects")
	b.ReportMetric(cpu, "cpu-s/op")
}

// processCPU is the CPU time (user and system, every thread, the garbage
// collector's included) the process has used, in seconds: on a shared
// machine it varies less than the wall-clock time.
func processCPU(b *testing.B) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}
