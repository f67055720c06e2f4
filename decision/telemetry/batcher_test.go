package telemetry

import (
	"context"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// slowExporter records spans and can be made to hang.
type slowExporter struct {
	mu      sync.Mutex
	batches []int
	spans   int
	gate    chan struct{} // when not nil, each export waits for it
}

func (e *slowExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if e.gate != nil {
		select {
		case <-e.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.batches = append(e.batches, len(spans))
	e.spans += len(spans)
	return nil
}

func (e *slowExporter) Shutdown(context.Context) error { return nil }

func (e *slowExporter) count() (spans int, batches []int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.spans, append([]int(nil), e.batches...)
}

func endSpans(t *testing.T, tp *sdktrace.TracerProvider, n int) {
	t.Helper()
	tr := tp.Tracer("test")
	for i := 0; i < n; i++ {
		_, s := tr.Start(context.Background(), "x")
		s.End()
	}
}

func TestBatcherExportsFullBatchesAndTheRestOnShutdown(t *testing.T) {
	exp := &slowExporter{}
	b, err := newBatcher(exp, envOf(map[string]string{
		"OTEL_BSP_SCHEDULE_DELAY":        "3600000", // only full batches and Shutdown export
		"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "10",
	}))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(b))
	endSpans(t, tp, 25)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if n, _ := exp.count(); n >= 10 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n, batches := exp.count(); n < 10 {
		t.Fatalf("exported %d spans in %v before Shutdown, want at least the first full batch", n, batches)
	}
	if err := tp.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	n, batches := exp.count()
	if n != 25 {
		t.Errorf("exported %d spans, want 25 (batches %v)", n, batches)
	}
	for _, size := range batches {
		if size > 10 {
			t.Errorf("a batch of %d spans exceeds OTEL_BSP_MAX_EXPORT_BATCH_SIZE", size)
		}
	}
}

func TestBatcherExportsAfterTheDelay(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	b, err := newBatcher(exp, envOf(map[string]string{"OTEL_BSP_SCHEDULE_DELAY": "20"}))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(b))
	defer tp.Shutdown(t.Context())
	endSpans(t, tp, 3)
	deadline := time.Now().Add(5 * time.Second)
	for len(exp.GetSpans()) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d spans exported after the delay, want 3", len(exp.GetSpans()))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBatcherDropsWhenTheQueueIsFullAndNeverBlocks(t *testing.T) {
	exp := &slowExporter{gate: make(chan struct{})}
	b, err := newBatcher(exp, envOf(map[string]string{
		"OTEL_BSP_SCHEDULE_DELAY":        "3600000",
		"OTEL_BSP_MAX_QUEUE_SIZE":        "8",
		"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4",
	}))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(b))
	// The first full batch goes to the exporter, which hangs.
	endSpans(t, tp, 4)
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		queued := len(b.queue)
		b.mu.Unlock()
		if queued == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	done := make(chan struct{})
	go func() { endSpans(t, tp, 20); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("ending spans blocked while the exporter hung")
	}
	if got := b.Dropped(); got != 12 {
		t.Errorf("dropped %d spans, want 12 (a queue of 8)", got)
	}
	close(exp.gate)
	if err := tp.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n, _ := exp.count(); n != 12 {
		t.Errorf("exported %d spans, want 4 + 8", n)
	}
}

func TestBatcherRejectsBadSettings(t *testing.T) {
	for _, kv := range []map[string]string{
		{"OTEL_BSP_SCHEDULE_DELAY": "soon"},
		{"OTEL_BSP_MAX_QUEUE_SIZE": "0"},
		{"OTEL_BSP_EXPORT_TIMEOUT": "-1"},
	} {
		if _, err := newBatcher(tracetest.NewNoopExporter(), envOf(kv)); err == nil {
			t.Errorf("%v accepted", kv)
		}
	}
}
