// Package shadow decides a sample of live decisions again against a
// candidate version of the bundles, off the request path, and counts how
// the candidate's answers differ from the live ones. The candidate never
// answers a caller: a bounded queue carries the live decisions to one
// goroutine that asks the candidate (Rego decides both answers), and a full
// queue drops, never waits.
package shadow

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/access"
)

// DefaultQueue is how many live decisions may wait to be shadowed.
const DefaultQueue = 1024

// Candidate is the candidate version decisions are asked again of.
type Candidate interface {
	// Pin returns the candidate's generation, or nil while it must not
	// shadow: not loaded yet, or its newest version was rejected.
	Pin() *decision.Pinned
}

// Options configures a Shadow.
type Options struct {
	// Sample is the share of live decisions shadowed, from 0 to 1.
	Sample float64
	// Queue bounds the live decisions waiting (DefaultQueue when 0).
	Queue int
	// Log, when set, receives one JSON line per difference (see LogLine).
	Log io.Writer
	// Logger reports shadow log write errors (slog.Default when nil).
	Logger *slog.Logger
}

// Shadow shadows live decisions; it is a decision.Observer.
type Shadow struct {
	candidate Candidate
	opts      Options
	queue     chan item
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	results     *prometheus.CounterVec
	byChange    map[access.Change]prometheus.Counter
	dropped     prometheus.Counter
	unavailable prometheus.Counter

	counts struct {
		same, allowToDeny, denyToAllow, changed atomic.Uint64
		dropped, unavailable                    atomic.Uint64
	}
	mu   sync.Mutex
	last *LogLine
}

// item is a live decision waiting to be shadowed: values the deciding
// goroutine no longer changes.
type item struct {
	req  decision.Request
	live *decision.Decision
	at   time.Time
}

// New returns a shadow of the candidate; Run works its queue.
func New(candidate Candidate, opts Options) *Shadow {
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Shadow{candidate: candidate, opts: opts, queue: make(chan item, opts.Queue), stop: make(chan struct{}), done: make(chan struct{})}
	s.results = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "verdict_shadow_decisions_total",
		Help: "Live decisions decided again against the candidate bundle version (--candidate), by result: same, allow_to_deny, deny_to_allow, changed (same allow or deny; status, visibility or deciding reasons differ).",
	}, []string{"result"})
	s.byChange = map[access.Change]prometheus.Counter{}
	for _, c := range []access.Change{access.Same, access.AllowToDeny, access.DenyToAllow, access.Changed} {
		s.byChange[c] = s.results.WithLabelValues(string(c))
	}
	s.dropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "verdict_shadow_dropped_total",
		Help: "Sampled live decisions not shadowed because the shadow queue was full.",
	})
	s.unavailable = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "verdict_shadow_skipped_total",
		Help: "Sampled live decisions not shadowed because the candidate was not loaded or its newest version was rejected.",
	})
	return s
}

// Collectors are the shadow's metrics, for the registry of GET /metrics.
func (s *Shadow) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.results, s.dropped, s.unavailable}
}

// ObserveDecision queues a sample of live decisions for the candidate. It
// never blocks: when the queue is full the decision is dropped and counted.
func (s *Shadow) ObserveDecision(_ context.Context, req *decision.Request, d *decision.Decision, info decision.DecisionInfo) {
	if info.Explained {
		return
	}
	if s.opts.Sample < 1 && rand.Float64() >= s.opts.Sample {
		return
	}
	select {
	case s.queue <- item{req: *req, live: d, at: info.Start}:
	default:
		s.counts.dropped.Add(1)
		s.dropped.Inc()
	}
}

// Run shadows queued decisions until Close, then the ones still queued.
func (s *Shadow) Run(ctx context.Context) {
	defer close(s.done)
	for {
		select {
		case it := <-s.queue:
			s.shadow(ctx, it)
		case <-s.stop:
			for {
				select {
				case it := <-s.queue:
					s.shadow(ctx, it)
				default:
					return
				}
			}
		}
	}
}

// Close makes Run shadow what is queued and return, and waits for it (or
// for ctx to end). Decisions observed afterwards wait in the queue, or are
// dropped, and are not shadowed.
func (s *Shadow) Close(ctx context.Context) {
	s.closeOnce.Do(func() { close(s.stop) })
	select {
	case <-s.done:
	case <-ctx.Done():
	}
}

// count counts one shadowed decision by how the candidate's answer
// differs.
func (s *Shadow) count(c access.Change) {
	s.byChange[c].Inc()
	switch c {
	case access.Same:
		s.counts.same.Add(1)
	case access.AllowToDeny:
		s.counts.allowToDeny.Add(1)
	case access.DenyToAllow:
		s.counts.denyToAllow.Add(1)
	default:
		s.counts.changed.Add(1)
	}
}

// shadow asks the candidate one live decision's question and records how
// its answer differs.
func (s *Shadow) shadow(ctx context.Context, it item) {
	p := s.candidate.Pin()
	if p == nil {
		s.counts.unavailable.Add(1)
		s.unavailable.Inc()
		return
	}
	req := it.req
	cand, err := p.Decide(ctx, &req)
	if err != nil {
		// The live engine validated the same request: it cannot be
		// malformed here. Count it as a difference rather than lose it.
		cand = &decision.Decision{Allow: false, Status: 400, Visibility: "none", Reasons: []decision.Reason{{Layer: "engine", Code: "request.invalid", Effect: "deny", Message: err.Error()}}}
	}
	c := access.Compare(it.live, cand)
	// A difference is recorded (last, then the log) before it is counted,
	// so that whoever reads counts that include it also finds it as the
	// last difference and in the log.
	defer s.count(c)
	if c == access.Same {
		return
	}
	line := &LogLine{
		Time: it.at.UTC().Format(time.RFC3339Nano), DecisionID: it.live.DecisionID, Change: c,
		Input: redacted(it.req), Live: access.AnswerOf(it.live), Candidate: access.AnswerOf(cand),
	}
	s.mu.Lock()
	s.last = line
	s.mu.Unlock()
	if s.opts.Log != nil {
		b, err := json.Marshal(line)
		if err == nil {
			_, err = s.opts.Log.Write(append(b, '\n'))
		}
		if err != nil {
			s.opts.Logger.Error("shadow log: write failed", "error", err)
		}
	}
}

// redacted is the request as the shadow log and status show it: the
// application key shortened to 8 characters and the context left out (a
// caller may put credentials there).
func redacted(req decision.Request) decision.Request {
	if len(req.Key) > 8 {
		req.Key = req.Key[:8] + "…"
	}
	req.Context = nil
	return req
}

// LogLine is one difference: the live decision's question and both answers.
type LogLine struct {
	Time       string           `json:"time"`
	DecisionID string           `json:"decision_id"`
	Change     access.Change    `json:"change"`
	Input      decision.Request `json:"input"`
	Live       access.Answer    `json:"live"`
	Candidate  access.Answer    `json:"candidate"`
}

// Counts are what the shadow did since start.
type Counts struct {
	Same        uint64 `json:"same"`
	AllowToDeny uint64 `json:"allow_to_deny"`
	DenyToAllow uint64 `json:"deny_to_allow"`
	Changed     uint64 `json:"changed"`
	// Dropped: the queue was full; Skipped: the candidate could not shadow.
	Dropped uint64 `json:"dropped"`
	Skipped uint64 `json:"skipped"`
}

// Status is the shadow's part of GET /v1/status.
type Status struct {
	Sample         float64  `json:"sample"`
	Counts         Counts   `json:"counts"`
	LastDifference *LogLine `json:"last_difference"`
}

// Status reports the counts and the last difference.
func (s *Shadow) Status() Status {
	s.mu.Lock()
	last := s.last
	s.mu.Unlock()
	return Status{
		Sample: s.opts.Sample,
		Counts: Counts{
			Same: s.counts.same.Load(), AllowToDeny: s.counts.allowToDeny.Load(),
			DenyToAllow: s.counts.denyToAllow.Load(), Changed: s.counts.changed.Load(),
			Dropped: s.counts.dropped.Load(), Skipped: s.counts.unavailable.Load(),
		},
		LastDifference: last,
	}
}
