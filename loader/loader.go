package loader

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/verdict-authz/verdict/loader/generation"
	"github.com/verdict-authz/verdict/loader/state"
	"github.com/verdict-authz/verdict/loader/store"
)

// Installer is what the loader needs of an engine (decision.Engine): to
// serve each generation it builds, and to catch up with the fleet's shared
// state through the loader when a request asks for a newer revision.
type Installer interface {
	Install(*generation.Generation)
	SetStateWaiter(generation.StateWaiter)
}

// Loader owns the store, runs bundle changes through the pipeline and
// installs the resulting generations into the engine.
type Loader struct {
	engine   Installer
	store    *store.Store
	log      *slog.Logger
	pipeline *Pipeline
	status   *StatusBoard
	stop     context.CancelFunc

	mu      sync.Mutex // serializes changes
	sources map[string]Source
	bundles map[string]*Bundle // the bundles of the installed generation
	failed  map[string]bool    // bundles whose newest version was rejected
	number  uint64
	// installed is the generation last installed into the engine (nil:
	// none yet). It is written under mu and read without it.
	installed atomic.Pointer[generation.Generation]
	// remotes poll the remote sources, by name. Every version of a remote
	// source that is installed is reported to its Remote (which persists
	// it as the last good copy), also when a retry or a load of every
	// source installs it rather than the Remote's own poll.
	remotes map[string]*Remote

	// warned holds the vocabulary warnings already logged, so that each
	// is logged once while it stands.
	warned map[string]bool

	// The state directory of run-time changes (nil: kept in memory) and
	// the entries of it that were ignored at start.
	stateMu       sync.Mutex
	state         *state.Dir
	stateProblems []state.Problem

	// fleet follows the fleet's shared run-time state (nil without
	// --state-db); genState is the state every new generation carries
	// (guarded by mu). See fleet.go.
	fleet    *fleet
	genState generation.StateInfo
	// ctx ends when the loader is closed.
	ctx context.Context
}

// New returns a loader that installs into engine, with the default
// processors registered and its NOTIFY queue running until Close.
func New(engine Installer, log *slog.Logger) (*Loader, error) {
	st, err := store.New()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	l := &Loader{
		engine:   engine,
		store:    st,
		log:      log,
		pipeline: NewPipeline(st, log),
		status:   NewStatusBoard(),
		sources:  map[string]Source{},
		bundles:  map[string]*Bundle{},
		failed:   map[string]bool{},
		remotes:  map[string]*Remote{},
	}
	l.pipeline.RegisterSteps(bundleSteps...)
	l.registerRuntimeProcessors()
	l.pipeline.RegisterAsync(statusProcessor{board: l.status}, logProcessor{log: log})
	ctx, cancel := context.WithCancel(context.Background())
	l.stop = cancel
	l.ctx = ctx
	go l.pipeline.Run(ctx)
	return l, nil
}

// Close stops the NOTIFY queue after delivering what is queued (for at most
// a second).
func (l *Loader) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.pipeline.Flush(ctx)
	l.stop()
}

// Pipeline is the change pipeline, for registering or disabling processors.
func (l *Loader) Pipeline() *Pipeline { return l.pipeline }

// Status reports every bundle's status and the run-time changes (GET
// /v1/status).
func (l *Loader) Status() Status {
	st := l.status.Snapshot()
	st.Runtime = l.runtimeStatus(st.Runtime)
	if f := st.Runtime.Fleet; f != nil && f.Stale {
		// As /health/ready: stale shared state is not ready.
		st.Ready = false
	}
	return st
}

// Processors lists the pipeline's processors (GET /v1/processors).
func (l *Loader) Processors() []ProcessorInfo { return l.pipeline.Processors() }

// Flush waits until the status reflects every change made so far.
func (l *Loader) Flush(ctx context.Context) error { return l.pipeline.Flush(ctx) }

// Sources lists the known sources, by name.
func (l *Loader) Sources() []Source {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Source, 0, len(l.sources))
	for _, s := range l.sources {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Bundle returns the served version of the named bundle, or nil.
func (l *Loader) Bundle(name string) *Bundle {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bundles[name]
}
