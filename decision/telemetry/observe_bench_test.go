package telemetry

import (
	"io"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/verdict-authz/verdict/decision"
)

// BenchmarkObserveDecision is the cost of the observer alone on the
// deciding goroutine: the metrics and one send on the decision queue. The
// span, the log line and the export happen on goroutines of their own
// (which, in this tight loop, cannot keep up: most entries are dropped).
func BenchmarkObserveDecision(b *testing.B) {
	cases := []struct {
		name         string
		tracing, log bool
	}{{"metrics", false, false}, {"tracing", true, false}, {"log", false, true}, {"tracing+log", true, true}}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			opts := Options{Log: quietLog, Getenv: func(string) string { return "" }}
			if c.tracing {
				bt, err := newBatcher(tracetest.NewNoopExporter(), envOf(nil))
				if err != nil {
					b.Fatal(err)
				}
				tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(bt))
				defer tp.Shutdown(b.Context())
				opts.TracerProvider = tp
			}
			if c.log {
				opts.DecisionLog = io.Discard
				opts.DecisionLogBuffer = 1 << 16
				opts.DecisionLogMask = []string{"/input/key"}
			}
			tel, err := New(b.Context(), opts)
			if err != nil {
				b.Fatal(err)
			}
			defer tel.Shutdown(b.Context())
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
