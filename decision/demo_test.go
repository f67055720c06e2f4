package decision_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/verdict-authz/verdict/bundles"
	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader"
)

// demoEngine loads the embedded demo bundle.
func demoEngine(tb testing.TB, opts ...decision.EngineOption) *decision.Engine {
	tb.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	engine := decision.NewEngine(quiet, opts...)
	ld, err := loader.New(engine, quiet)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := ld.LoadAll(context.Background(), []loader.Source{{Name: "demo", FS: bundles.Demo()}}); err != nil {
		tb.Fatal(err)
	}
	return engine
}
