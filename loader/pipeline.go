package loader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/verdict-authz/verdict/loader/state/pgstate"
	"github.com/verdict-authz/verdict/loader/store"
)

// The change pipeline (after CzechIdM's entity event processing): every
// change to what verdict serves — a bundle created, updated or deleted, a
// service registered, a delegation requested or consented to — is an Event passed through
// processors ordered by number. Synchronous processors run in order inside
// one store write transaction: an error in any of them rolls the whole change
// back, and a processor may close the event so that the ones after it are
// skipped. After the commit a NOTIFY event carrying the outcome goes to the
// asynchronous processors (status, logs, cache invalidation) through a queue
// that never blocks the writer, let alone a decision.

// Kind says what a change does.
type Kind string

// The kinds of change. NOTIFY is the event the asynchronous processors get
// after a change was committed or rejected.
const (
	KindCreate Kind = "CREATE"
	KindUpdate Kind = "UPDATE"
	KindDelete Kind = "DELETE"
	KindNotify Kind = "NOTIFY"
)

// Subject names what a change is about.
type Subject struct {
	// Type is what kind of thing changes: SubjectBundle, SubjectService,
	// SubjectDelegation or SubjectState.
	Type string `json:"type"`
	// Name identifies the thing within its type (a bundle's name, a
	// service's name, tenant/application/group of a delegation).
	Name string `json:"name"`
}

// The subject types of changes.
const (
	// SubjectBundle: a bundle loaded, reloaded or removed.
	SubjectBundle = "bundle"
	// SubjectService: a service registered at run time (PUT /v1/services).
	SubjectService = "service"
	// SubjectDelegation: a delegation requested or consented to at run time.
	SubjectDelegation = "delegation"
	// SubjectState: run-time changes restored from the state directory.
	SubjectState = "state"
)

func (s Subject) String() string { return s.Type + " " + s.Name }

// Event is one change going through the pipeline.
type Event struct {
	Kind    Kind
	Subject Subject
	// Bundle holds the bundle versions of a bundle change.
	Bundle *BundleChange
	// Service holds a run-time service registration.
	Service *ServiceChange
	// Delegation holds a run-time delegation request or consent.
	Delegation *DelegationChange
	// Restore holds the run-time changes read from the state directory.
	Restore *RestoreChange

	// The outcome, set on the NOTIFY event.
	// Change is the kind of the change a NOTIFY event reports.
	Change Kind
	// Err is why the change was rejected; nil when it was committed.
	Err error
	// Started is when the change began (including reading its source).
	Started time.Time
	// Duration is how long the change took until it was committed or rejected.
	Duration time.Duration
	// Generation is the number of the generation the change installed (0 when
	// it installed none).
	Generation uint64
	// ClosedBy names the processor that closed the event, if one did.
	ClosedBy string
	// Origin is the context of the request that asked for a run-time change,
	// without its cancellation (the request may end before the NOTIFY
	// processors run). The processors see its values — the caller's trace
	// above all — so that what they record joins the request's trace. Nil
	// for changes verdict makes by itself (bundle loads, state restore).
	Origin context.Context
	// StateRevision is the revision of the fleet's change log the change
	// was written at (fleet mode; 0 otherwise or when nothing was written).
	StateRevision uint64
	// Replicated: the change was read from the fleet's change log; the
	// sidecar that wrote it checked its references.
	Replicated bool

	// stateWrite is the database write of a run-time change in fleet mode
	// (see lockRuntime), with the context bounding it.
	stateWrite    *pgstate.WriteTx
	stateWriteCtx context.Context

	closed bool
}

// BundleChange is what a bundle event carries. One change may load several
// bundles together (the initial load); a reload is about one.
type BundleChange struct {
	// Sources are the bundles the change is about.
	Sources []Source
	// Next holds the new version of each bundle the change loads, by name. A
	// source of a DELETE change, or one that could not be read, has none.
	Next map[string]*Bundle
	// Installed are the bundles served before the change, by name.
	Installed map[string]*Bundle
	// Assembly is the next generation's bundles and compiled policy, built by
	// the assemble processor.
	Assembly *Assembly
	// Stored is set by the store processor once the store holds the change.
	Stored bool
}

// Close marks the event as complete: the synchronous processors after the
// current one are skipped and the transaction commits what was done so far.
func (e *Event) Close() { e.closed = true }

// Closed reports whether a processor closed the event.
func (e *Event) Closed() bool { return e.closed }

// Processor is a synchronous step of the pipeline. Process runs inside the
// change's write transaction; an error rolls the whole change back.
// Processors that do not handle the event's subject return nil.
type Processor interface {
	Name() string
	Order() int
	Process(ctx context.Context, ev *Event, txn *store.WriteTxn) error
}

// AsyncProcessor receives NOTIFY events after a change was committed or
// rejected, one at a time, in the order the changes happened.
type AsyncProcessor interface {
	Name() string
	Order() int
	Notify(ctx context.Context, ev *Event)
}

// Described is implemented by processors that say what they do.
type Described interface{ Description() string }

// Required is implemented by processors that cannot be disabled.
type Required interface{ Required() bool }

// ProcessorInfo describes one processor for GET /v1/processors.
type ProcessorInfo struct {
	Name        string `json:"name"`
	Order       int    `json:"order"`
	Mode        string `json:"mode"` // "sync" or "async"
	Enabled     bool   `json:"enabled"`
	Required    bool   `json:"required"`
	Description string `json:"description,omitempty"`
}

// Pipeline runs events through ordered processors.
type Pipeline struct {
	store *store.Store
	log   *slog.Logger

	mu       sync.Mutex
	sync     []Processor
	async    []AsyncProcessor
	disabled map[string]bool

	queue *notifyQueue
}

// NewPipeline returns a pipeline that writes to st. Start its NOTIFY queue
// with Run.
func NewPipeline(st *store.Store, log *slog.Logger) *Pipeline {
	if log == nil {
		log = slog.Default()
	}
	return &Pipeline{store: st, log: log, disabled: map[string]bool{}, queue: newNotifyQueue()}
}

// Register adds synchronous processors.
func (p *Pipeline) Register(procs ...Processor) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sync = append(p.sync, procs...)
	sort.SliceStable(p.sync, func(i, j int) bool { return p.sync[i].Order() < p.sync[j].Order() })
}

// Step is a synchronous processor given as a row of a table, the way
// http.HandlerFunc makes a function a Handler: Process is called with the
// event and the open store transaction, in Order.
type Step struct {
	Name        string
	Order       int
	Required    bool // cannot be disabled
	Description string
	Process     func(ctx context.Context, ev *Event, txn *store.WriteTxn) error
}

// stepProcessor makes a Step a Processor (and Required, Described).
type stepProcessor struct{ s Step }

func (p stepProcessor) Name() string        { return p.s.Name }
func (p stepProcessor) Order() int          { return p.s.Order }
func (p stepProcessor) Required() bool      { return p.s.Required }
func (p stepProcessor) Description() string { return p.s.Description }
func (p stepProcessor) Process(ctx context.Context, ev *Event, txn *store.WriteTxn) error {
	return p.s.Process(ctx, ev, txn)
}

// RegisterSteps adds synchronous processors given as table rows.
func (p *Pipeline) RegisterSteps(steps ...Step) {
	procs := make([]Processor, len(steps))
	for i, s := range steps {
		procs[i] = stepProcessor{s}
	}
	p.Register(procs...)
}

// RegisterAsync adds asynchronous NOTIFY processors.
func (p *Pipeline) RegisterAsync(procs ...AsyncProcessor) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.async = append(p.async, procs...)
	sort.SliceStable(p.async, func(i, j int) bool { return p.async[i].Order() < p.async[j].Order() })
}

// ErrUnknownProcessor is returned by Disable for a name no processor has.
var ErrUnknownProcessor = errors.New("no processor has this name")

// Disable turns processors off by name. Required processors and unknown
// names are refused.
func (p *Pipeline) Disable(names ...string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, name := range names {
		var found any
		for _, s := range p.sync {
			if s.Name() == name {
				found = s
			}
		}
		for _, a := range p.async {
			if a.Name() == name {
				found = a
			}
		}
		if found == nil {
			return fmt.Errorf("processor %q: %w", name, ErrUnknownProcessor)
		}
		if r, ok := found.(Required); ok && r.Required() {
			return fmt.Errorf("processor %q is required and cannot be disabled", name)
		}
		p.disabled[name] = true
	}
	return nil
}

// Processors lists every processor, synchronous ones first, each in order.
func (p *Pipeline) Processors() []ProcessorInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ProcessorInfo, 0, len(p.sync)+len(p.async))
	info := func(proc any, name string, order int, mode string) ProcessorInfo {
		pi := ProcessorInfo{Name: name, Order: order, Mode: mode, Enabled: !p.disabled[name]}
		if r, ok := proc.(Required); ok {
			pi.Required = r.Required()
		}
		if d, ok := proc.(Described); ok {
			pi.Description = d.Description()
		}
		return pi
	}
	for _, s := range p.sync {
		out = append(out, info(s, s.Name(), s.Order(), "sync"))
	}
	for _, a := range p.async {
		out = append(out, info(a, a.Name(), a.Order(), "async"))
	}
	return out
}

// ProcessorError is a change rejected by a processor.
type ProcessorError struct {
	Processor string
	Err       error
}

func (e *ProcessorError) Error() string { return e.Processor + ": " + e.Err.Error() }
func (e *ProcessorError) Unwrap() error { return e.Err }

// Process runs the enabled synchronous processors on ev, in order, inside one
// write transaction, and commits when none failed. It returns the snapshot
// taken right after the commit.
func (p *Pipeline) Process(ctx context.Context, ev *Event) (*store.Snapshot, error) {
	p.mu.Lock()
	procs := make([]Processor, 0, len(p.sync))
	for _, s := range p.sync {
		if !p.disabled[s.Name()] {
			procs = append(procs, s)
		}
	}
	p.mu.Unlock()
	return p.store.Update(func(txn *store.WriteTxn) error {
		for _, proc := range procs {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := runProcessor(ctx, proc, ev, txn); err != nil {
				return &ProcessorError{Processor: proc.Name(), Err: err}
			}
			if ev.closed {
				ev.ClosedBy = proc.Name()
				break
			}
		}
		return nil
	})
}

// runProcessor runs one synchronous processor, turning a panic into an
// error: the change is rolled back like any rejected change, and the
// process (and the watcher goroutine that asked for the change) lives on.
func runProcessor(ctx context.Context, proc Processor, ev *Event, txn *store.WriteTxn) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	return proc.Process(ctx, ev, txn)
}

// Notify queues a NOTIFY event for the asynchronous processors. It never
// blocks.
func (p *Pipeline) Notify(ev *Event) {
	ev.Kind = KindNotify
	p.queue.push(ev)
}

// Run delivers NOTIFY events to the enabled asynchronous processors until
// ctx ends. A processor that panics is logged and skipped.
func (p *Pipeline) Run(ctx context.Context) {
	for {
		ev, ok := p.queue.pop(ctx)
		if !ok {
			return
		}
		p.mu.Lock()
		procs := make([]AsyncProcessor, 0, len(p.async))
		for _, a := range p.async {
			if !p.disabled[a.Name()] {
				procs = append(procs, a)
			}
		}
		p.mu.Unlock()
		for _, proc := range procs {
			p.notifyOne(ctx, proc, ev)
		}
		p.queue.done()
	}
}

func (p *Pipeline) notifyOne(ctx context.Context, proc AsyncProcessor, ev *Event) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("notify processor panicked", "processor", proc.Name(), "subject", ev.Subject.String(), "panic", r)
		}
	}()
	if ev.Origin != nil {
		// The request's values, the pipeline's lifetime.
		octx, cancel := context.WithCancel(context.WithoutCancel(ev.Origin))
		stop := context.AfterFunc(ctx, cancel)
		defer func() {
			stop()
			cancel()
		}()
		ctx = octx
	}
	proc.Notify(ctx, ev)
}

// Flush waits until every queued NOTIFY event has been delivered (or ctx
// ends). Tests and shutdown use it.
func (p *Pipeline) Flush(ctx context.Context) error { return p.queue.flush(ctx) }

// notifyQueue is an unbounded FIFO: changes are rare, and a status update
// must not be dropped.
type notifyQueue struct {
	mu      sync.Mutex
	items   []*Event
	pending int // pushed and not yet fully delivered
	wake    chan struct{}
	idle    chan struct{} // closed while pending == 0
}

func newNotifyQueue() *notifyQueue {
	q := &notifyQueue{wake: make(chan struct{}, 1), idle: make(chan struct{})}
	close(q.idle)
	return q
}

func (q *notifyQueue) push(ev *Event) {
	q.mu.Lock()
	q.items = append(q.items, ev)
	if q.pending == 0 {
		q.idle = make(chan struct{})
	}
	q.pending++
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *notifyQueue) pop(ctx context.Context) (*Event, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			ev := q.items[0]
			q.items[0] = nil
			q.items = q.items[1:]
			q.mu.Unlock()
			return ev, true
		}
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-ctx.Done():
			return nil, false
		}
	}
}

func (q *notifyQueue) done() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending--
	if q.pending == 0 {
		close(q.idle)
	}
}

func (q *notifyQueue) flush(ctx context.Context) error {
	q.mu.Lock()
	idle := q.idle
	q.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
