package decision_test

import (
	"testing"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader/loadertest"
)

// demoEngine loads the embedded demo bundle.
func demoEngine(tb testing.TB, opts ...decision.EngineOption) *decision.Engine {
	tb.Helper()
	engine, _ := loadertest.Demo(tb, opts...)
	return engine
}
