package telemetry

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Batching defaults, as the OpenTelemetry specification gives them for
// the OTEL_BSP_* variables.
const (
	defaultBatchDelay    = 5 * time.Second
	defaultExportTimeout = 30 * time.Second
	defaultMaxQueue      = 2048
	defaultMaxBatch      = 512
)

// batcher is a span processor that batches ended spans for an exporter,
// like the SDK's batch span processor and configured by the same
// OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_EXPORT_TIMEOUT, OTEL_BSP_MAX_QUEUE_SIZE
// and OTEL_BSP_MAX_EXPORT_BATCH_SIZE, with one difference that matters on
// the decision path: ending a span appends it to a slice and wakes no
// goroutine. The SDK's processor hands every span over a channel to its
// goroutine, which costs the deciding goroutine a wake-up (a futex call
// when a processor is idle) per decision. Here the exporting goroutine
// wakes when a batch is full or the delay has passed. A full queue drops
// spans, counted in Dropped.
type batcher struct {
	exp                sdktrace.SpanExporter
	delay, timeout     time.Duration
	maxQueue, maxBatch int

	mu    sync.Mutex
	queue []sdktrace.ReadOnlySpan

	exportMu sync.Mutex // the exporter is called by one goroutine at a time
	spare    []sdktrace.ReadOnlySpan

	kick     chan struct{} // buffered (1): a batch is full
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	stopped  atomic.Bool
	dropped  atomic.Uint64
	// onDrop, when set before the first span, is called for each drop.
	onDrop func()
}

var _ sdktrace.SpanProcessor = (*batcher)(nil)

// newBatcher starts a batcher for exp, configured from getenv.
func newBatcher(exp sdktrace.SpanExporter, getenv func(string) string) (*batcher, error) {
	b := &batcher{
		exp:      exp,
		delay:    defaultBatchDelay,
		timeout:  defaultExportTimeout,
		maxQueue: defaultMaxQueue,
		maxBatch: defaultMaxBatch,
		kick:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	for _, v := range []struct {
		name string
		ms   *time.Duration
		n    *int
	}{
		{"OTEL_BSP_SCHEDULE_DELAY", &b.delay, nil},
		{"OTEL_BSP_EXPORT_TIMEOUT", &b.timeout, nil},
		{"OTEL_BSP_MAX_QUEUE_SIZE", nil, &b.maxQueue},
		{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", nil, &b.maxBatch},
	} {
		s := strings.TrimSpace(getenv(v.name))
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%s=%q: want a positive integer", v.name, s)
		}
		if v.ms != nil {
			*v.ms = time.Duration(n) * time.Millisecond
		} else {
			*v.n = n
		}
	}
	b.maxBatch = min(b.maxBatch, b.maxQueue)
	b.queue = make([]sdktrace.ReadOnlySpan, 0, b.maxBatch)
	b.spare = make([]sdktrace.ReadOnlySpan, 0, b.maxBatch)
	go b.run()
	return b, nil
}

// OnStart does nothing.
func (b *batcher) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd queues a sampled span. It never blocks and wakes the exporting
// goroutine only when a batch is full.
func (b *batcher) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	if b.stopped.Load() {
		b.drop()
		return
	}
	b.mu.Lock()
	if len(b.queue) >= b.maxQueue {
		b.mu.Unlock()
		b.drop()
		return
	}
	b.queue = append(b.queue, s)
	full := len(b.queue) == b.maxBatch
	b.mu.Unlock()
	if full {
		select {
		case b.kick <- struct{}{}:
		default: // already kicked
		}
	}
}

func (b *batcher) drop() {
	b.dropped.Add(1)
	if b.onDrop != nil {
		b.onDrop()
	}
}

// Dropped is the number of spans dropped because the queue was full.
func (b *batcher) Dropped() uint64 { return b.dropped.Load() }

func (b *batcher) run() {
	defer close(b.done)
	tick := time.NewTicker(b.delay)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-b.kick:
		case <-b.stop:
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
		if err := b.exportQueued(ctx); err != nil {
			otel.Handle(err) // logged by the handler New installs
		}
		cancel()
	}
}

// exportQueued exports everything queued so far, a batch at a time.
func (b *batcher) exportQueued(ctx context.Context) error {
	b.exportMu.Lock()
	defer b.exportMu.Unlock()
	b.mu.Lock()
	spans := b.queue
	b.queue = b.spare[:0]
	b.mu.Unlock()
	var errs []error
	for rest := spans; len(rest) > 0; {
		n := min(len(rest), b.maxBatch)
		if err := b.exp.ExportSpans(ctx, rest[:n]); err != nil {
			errs = append(errs, err)
		}
		rest = rest[n:]
	}
	clear(spans) // let the spans go
	b.spare = spans[:0]
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("export spans: %w", err)
	}
	return nil
}

// ForceFlush exports every queued span now.
func (b *batcher) ForceFlush(ctx context.Context) error {
	return b.exportQueued(ctx)
}

// Shutdown stops the exporting goroutine, exports what is queued and shuts
// the exporter down.
func (b *batcher) Shutdown(ctx context.Context) error {
	var err error
	b.stopOnce.Do(func() {
		b.stopped.Store(true)
		close(b.stop)
		select {
		case <-b.done:
		case <-ctx.Done():
		}
		err = errors.Join(b.exportQueued(ctx), b.exp.Shutdown(ctx))
	})
	return err
}
