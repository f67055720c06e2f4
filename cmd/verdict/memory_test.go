package main

import (
	"testing"
	"time"

	"github.com/verdict-authz/verdict/loader"
)

// The releaser releases after a change that installs a generation newer
// than the start's, once for changes that come together, and never for a
// change that installs none or before it is armed.
func TestMemoryReleaserReleasesAfterNewGenerations(t *testing.T) {
	released := make(chan struct{}, 10)
	m := newMemoryReleaser(t.Context(), 0, func() { released <- struct{}{} })
	expect := func(what string, want bool) {
		t.Helper()
		select {
		case <-released:
			if !want {
				t.Fatalf("%s: released", what)
			}
		case <-time.After(200 * time.Millisecond):
			if want {
				t.Fatalf("%s: not released", what)
			}
		}
	}
	m.Notify(t.Context(), &loader.Event{Generation: 1})
	expect("a generation before the releaser is armed", false)
	m.arm(1)
	m.Notify(t.Context(), &loader.Event{Generation: 1})
	expect("the start's generation", false)
	m.Notify(t.Context(), &loader.Event{})
	expect("a change that installs no generation", false)
	m.Notify(t.Context(), &loader.Event{Generation: 2})
	expect("a reload", true)
	expect("nothing more", false)
}
