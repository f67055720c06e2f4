package telemetry

import (
	"context"
	"io"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/verdict-authz/verdict/decision"
)

// BenchmarkObserveDecision is the cost of the observer alone on the
// deciding goroutine (the span, the metrics, queuing the log line); the
// log writer and the span exporter work on goroutines of their own.
func BenchmarkObserveDecision(b *testing.B) {
	cases := []struct {
		name         string
		tracing, log bool
	}{{"metrics", false, false}, {"tracing", true, false}, {"log", false, true}, {"tracing+log", true, true}}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			opts := Options{Log: quietLog, Getenv: func(string) string { return "" }}
			if c.tracing {
				tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
				defer tp.Shutdown(context.Background())
				opts.TracerProvider = tp
			}
			if c.log {
				opts.DecisionLog = io.Discard
				opts.DecisionLogBuffer = 1 << 16
				opts.DecisionLogMask = []string{"/input/key"}
			}
			tel, err := New(context.Background(), opts)
			if err != nil {
				b.Fatal(err)
			}
			defer tel.Shutdown(context.Background())
			ctx, _ := remoteParentB()
			req, d := sampleRequest(), allowDecision()
			info := decision.DecisionInfo{Start: time.Now(), Duration: 100 * time.Microsecond}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tel.ObserveDecision(ctx, req, d, info)
			}
		})
	}
}
