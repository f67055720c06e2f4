// Package loadertest loads bundles into a new decision engine, for tests
// and benchmarks that need a loaded generation in process.
package loadertest

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/verdict-authz/verdict/bundles"
	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader"
)

// Quiet is a logger that discards everything.
var Quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Load makes an engine with opts, loads sources into it and returns the
// engine and its loader, closed when the test ends. A failure fails tb.
func Load(tb testing.TB, sources []loader.Source, opts ...decision.EngineOption) (*decision.Engine, *loader.Loader) {
	tb.Helper()
	engine := decision.NewEngine(Quiet, opts...)
	ld, err := loader.New(engine, Quiet)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(ld.Close)
	if _, err := ld.LoadAll(context.Background(), sources); err != nil {
		tb.Fatal(err)
	}
	return engine, ld
}

// Demo is Load of the embedded demo bundle.
func Demo(tb testing.TB, opts ...decision.EngineOption) (*decision.Engine, *loader.Loader) {
	tb.Helper()
	return Load(tb, []loader.Source{{Name: "demo", Location: "(embedded demo bundle)", FS: bundles.Demo()}}, opts...)
}
