package telemetry

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/verdict-authz/verdict/decision"
)

// DefaultDecisionLogBuffer is how many decision log lines may wait to be
// written before new ones are dropped.
const DefaultDecisionLogBuffer = 4096

// DecisionLogOptions configures a DecisionLog.
type DecisionLogOptions struct {
	// Buffer is the number of lines that may wait to be written
	// (DefaultDecisionLogBuffer when 0 or less).
	Buffer int
	// Mask lists JSON pointers (RFC 6901, "*" matching any key or index)
	// into the log line whose values are replaced by MaskedValue, e.g.
	// /input/context/token. They must start with /input, /result, /reasons
	// or /revisions.
	Mask []string
	// MaskContextSecrets masks, anywhere in the request's context, the
	// values under a key that names a secret (see IsSecretName) and every
	// string that is a bearer token or a JWT.
	MaskContextSecrets bool
	// Metrics counts written and dropped lines (optional).
	Metrics *Metrics
	// Log reports write errors (slog.Default when nil).
	Log *slog.Logger
}

// drainYieldEvery is how many entries the writer handles before it lets
// other goroutines run.
const drainYieldEvery = 8

// DecisionLogFlushInterval is how often the writer wakes to write what was
// queued (sooner when the buffer is half full).
const DecisionLogFlushInterval = 50 * time.Millisecond

// DecisionLog writes one JSON line per decision to w from a goroutine of
// its own. Log never blocks: when the buffer is full the line is dropped
// and counted. Queuing a line wakes no goroutine (the writer wakes every
// DecisionLogFlushInterval, or when the buffer is half full), so a decision
// pays for a channel send and nothing more.
//
// Inside Telemetry the same queue also carries the decisions whose spans
// are to be recorded: the writer's goroutine builds each decision's span
// (with the decision's own start and end times) before writing its line,
// so that neither costs the decision anything but the send.
//
// A line is
//
//	{"decision_id", "time", "trace_id", "span_id", "input", "result":
//	 {"allow","status","tenant","action","visibility","fields"},
//	 "reasons", "revisions", "duration"}
//
// with time in RFC 3339 (UTC, nanoseconds) and duration in seconds.
type DecisionLog struct {
	w      io.Writer // nil: no lines, only spans
	ch     chan logEntry
	wake   chan struct{} // buffered (1): the queue is half full
	wakeAt int
	flush  chan chan struct{}
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	closed atomic.Bool
	masks  map[string][]maskPath // by top-level key
	// maskSecrets masks secrets in the request's context (MaskContextSecrets).
	maskSecrets bool
	metrics     *Metrics
	log         *slog.Logger
	// span, when set, records the entry's span and sets its trace and
	// span ids (on the writer's goroutine).
	span func(*logEntry)

	written, dropped, failed atomic.Uint64
}

// logEntry is what a decision hands to the writer: values it will not
// change after the decision returns.
type logEntry struct {
	req       decision.Request
	d         *decision.Decision
	at        time.Time
	dur       time.Duration
	err       error
	explained bool
	// parent is the span context the decision was made in (the caller's,
	// from traceparent); traceID and spanID are what the line records.
	parent  trace.SpanContext
	traceID trace.TraceID
	spanID  trace.SpanID
}

// NewDecisionLog starts a decision log writing to w.
func NewDecisionLog(w io.Writer, opts DecisionLogOptions) (*DecisionLog, error) {
	if w == nil {
		return nil, errors.New("decision log: no writer")
	}
	return newDecisionLog(w, opts, nil)
}

// newDecisionLog starts the queue and its goroutine; w may be nil when
// span is set (tracing without decision logs).
func newDecisionLog(w io.Writer, opts DecisionLogOptions, span func(*logEntry)) (*DecisionLog, error) {
	if opts.Buffer <= 0 {
		opts.Buffer = DefaultDecisionLogBuffer
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	masks, err := parseMasks(opts.Mask)
	if err != nil {
		return nil, err
	}
	l := &DecisionLog{
		w:           w,
		ch:          make(chan logEntry, opts.Buffer),
		wake:        make(chan struct{}, 1),
		wakeAt:      max(1, opts.Buffer/2),
		flush:       make(chan chan struct{}),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
		masks:       masks,
		maskSecrets: opts.MaskContextSecrets,
		metrics:     opts.Metrics,
		log:         opts.Log,
		span:        span,
	}
	go l.run()
	return l, nil
}

// Log queues one decision's line, with the trace and span ids of the span
// in ctx. It never waits: when the buffer is full (or the log is closed)
// the line is dropped and counted. req and d must not be changed
// afterwards.
func (l *DecisionLog) Log(ctx context.Context, req *decision.Request, d *decision.Decision, start time.Time, dur time.Duration) {
	sc := trace.SpanContextFromContext(ctx)
	l.enqueue(logEntry{req: *req, d: d, at: start, dur: dur, traceID: sc.TraceID(), spanID: sc.SpanID()})
}

func (l *DecisionLog) enqueue(e logEntry) {
	if l.closed.Load() {
		l.drop()
		return
	}
	select {
	case l.ch <- e:
		if len(l.ch) >= l.wakeAt {
			select {
			case l.wake <- struct{}{}:
			default: // already signalled
			}
		}
	default:
		l.drop()
	}
}

// drop counts an entry that was not queued: its line (when logging) and
// its span (when tracing) are lost.
func (l *DecisionLog) drop() {
	l.dropped.Add(1)
	if l.metrics == nil {
		return
	}
	if l.w != nil {
		l.metrics.logDropped.Inc()
	}
	if l.span != nil {
		l.metrics.spansDropped.Inc()
	}
}

// Written is the number of lines written so far.
func (l *DecisionLog) Written() uint64 { return l.written.Load() }

// Dropped is the number of lines dropped so far.
func (l *DecisionLog) Dropped() uint64 { return l.dropped.Load() }

// Failed is the number of lines lost to encoding or write errors.
func (l *DecisionLog) Failed() uint64 { return l.failed.Load() }

// Flush waits until everything queued so far is written (and its spans
// recorded).
func (l *DecisionLog) Flush(ctx context.Context) error {
	reply := make(chan struct{})
	select {
	case l.flush <- reply:
	case <-l.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("decision log: flush: %w", ctx.Err())
	}
	select {
	case <-reply:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("decision log: flush: %w", ctx.Err())
	}
}

// Close writes the lines still queued and stops the writer. Lines logged
// after Close are dropped. It does not close the underlying writer.
func (l *DecisionLog) Close(ctx context.Context) error {
	l.closed.Store(true)
	l.once.Do(func() { close(l.stop) })
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("decision log: flush: %w", ctx.Err())
	}
}

func (l *DecisionLog) run() {
	defer close(l.done)
	w := &lineWriter{l: l}
	if l.w != nil {
		w.bw = bufio.NewWriterSize(l.w, 64<<10)
	}
	w.enc = json.NewEncoder(&w.buf)
	w.enc.SetEscapeHTML(false)
	tick := time.NewTicker(DecisionLogFlushInterval)
	defer tick.Stop()
	// drain writes whatever is queued, then flushes once. It yields its
	// processor every few entries: on a small machine a long burst would
	// otherwise keep a decision that became runnable waiting for one.
	drain := func() {
		for n := 1; ; n++ {
			if n%drainYieldEvery == 0 {
				runtime.Gosched()
			}
			select {
			case e := <-l.ch:
				w.write(e)
			default:
				w.flush()
				return
			}
		}
	}
	for {
		select {
		case <-tick.C:
		case <-l.wake:
		case reply := <-l.flush:
			drain()
			close(reply)
			continue
		case <-l.stop:
			drain()
			return
		}
		if len(l.ch) > 0 {
			drain()
		}
	}
}
