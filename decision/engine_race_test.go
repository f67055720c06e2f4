package decision_test

import (
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/verdict-authz/verdict/decision"
)

// TestEnginesMadeConcurrently: making engines at the same time (parallel
// tests, tools) is safe. The race it guards against (the uuid package's
// pool switch, a plain global) is only seen by go test -race.
func TestEnginesMadeConcurrently(t *testing.T) {
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			decision.NewEngine(slog.New(slog.NewTextHandler(io.Discard, nil)))
		}()
	}
	wg.Wait()
}
