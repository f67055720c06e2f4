package main

import (
	"context"
	"math"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/verdict-authz/verdict/loader"
)

// defaultGCPercent is the collector's target (GOGC) verdict run sets when
// the environment does not set GOGC. A sidecar's tail latency is the
// requests served while the collector runs, and its resident memory about
// the live heap times (1 + GOGC/100): on the benchmark's medium world
// (BENCHMARKS.md, issue 17, fourth session), with the server on one core,
// 130 took p99 from 3.5-3.8 to 2.9-3.1 ms and RSS after load from 118-130
// to 129-131 MiB against Go's default of 100.
const defaultGCPercent = 130

// setCollectorTarget sets the collector's target to defaultGCPercent
// unless getenv("GOGC") is set (the runtime has read it then, and it
// stands), and says which target is in effect and where it comes from.
func setCollectorTarget(getenv func(string) string) (gogc, source string) {
	if v := getenv("GOGC"); v != "" {
		return v, "environment"
	}
	debug.SetGCPercent(defaultGCPercent)
	return strconv.Itoa(defaultGCPercent), "default (set GOGC to change it)"
}

// memoryReleaser is the change pipeline's NOTIFY processor that gives the
// memory a bundle change freed back to the OS. A reload leaves the previous
// generation and the read's transient maps (several times what stays
// loaded) as garbage, which an idle server would otherwise keep resident
// until its next collection (forced only every two minutes, and then
// returned to the OS slowly). The start's load is released by loadBundles,
// before the server is ready; run-time changes (registrations,
// delegations, the fleet's state) leave little and are not released here.
type memoryReleaser struct {
	// after is the last generation installed before the releaser was
	// armed: changes up to it are not released here (math.MaxUint64 until
	// armed).
	after   atomic.Uint64
	kick    chan struct{}
	grace   time.Duration
	release func()
}

// newMemoryReleaser returns a releaser that, after each bundle change that
// installs a generation, waits grace (decisions still running on the
// previous generation hold it) and then calls release (debug.FreeOSMemory
// when nil) in its own goroutine, off every request's path, until ctx ends.
// Changes that come while it waits are released together.
func newMemoryReleaser(ctx context.Context, grace time.Duration, release func()) *memoryReleaser {
	if release == nil {
		release = debug.FreeOSMemory
	}
	m := &memoryReleaser{kick: make(chan struct{}, 1), grace: grace, release: release}
	m.after.Store(math.MaxUint64)
	go m.run(ctx)
	return m
}

func (*memoryReleaser) Name() string { return "memory-release" }
func (*memoryReleaser) Order() int   { return 400 } // after telemetry
func (*memoryReleaser) Description() string {
	return "after a bundle change that installs a generation, returns the memory it freed to the OS (one collection, off the request path)"
}

// arm starts releasing after bundle changes that install a generation newer
// than after (the one the start's load installed).
func (m *memoryReleaser) arm(after uint64) { m.after.Store(after) }

func (m *memoryReleaser) Notify(_ context.Context, ev *loader.Event) {
	if ev.Subject.Type != loader.SubjectBundle || ev.Generation == 0 || ev.Generation <= m.after.Load() {
		return
	}
	select {
	case m.kick <- struct{}{}:
	default: // a release is already due
	}
}

func (m *memoryReleaser) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(m.grace):
		}
		select {
		case <-m.kick: // a change during the wait: released with this one
		default:
		}
		m.release()
	}
}
