package main

import (
	"testing"
	"time"

	"github.com/verdict-authz/verdict/loader"
)

// The releaser releases after a bundle change that installs a generation
// newer than the start's, once for changes that come together, and never
// for a change that installs none, a run-time change, or before it is
// armed.
func TestMemoryReleaserReleasesAfterNewGenerations(t *testing.T) {
	released := make(chan struct{}, 10)
	m := newMemoryReleaser(t.Context(), 50*time.Millisecond, func() { released <- struct{}{} })
	expect := func(what string, want bool) {
		t.Helper()
		select {
		case <-released:
			if !want {
				t.Fatalf("%s: released", what)
			}
		case <-time.After(250 * time.Millisecond):
			if want {
				t.Fatalf("%s: not released", what)
			}
		}
	}
	bundle := loader.Subject{Type: loader.SubjectBundle, Name: "world"}
	m.Notify(t.Context(), &loader.Event{Subject: bundle, Generation: 1})
	expect("a generation before the releaser is armed", false)
	m.arm(1)
	m.Notify(t.Context(), &loader.Event{Subject: bundle, Generation: 1})
	expect("the start's generation", false)
	m.Notify(t.Context(), &loader.Event{Subject: bundle})
	expect("a change that installs no generation", false)
	m.Notify(t.Context(), &loader.Event{Subject: loader.Subject{Type: loader.SubjectService, Name: "portfolio"}, Generation: 2})
	expect("a run-time registration", false)
	m.Notify(t.Context(), &loader.Event{Subject: bundle, Generation: 3})
	m.Notify(t.Context(), &loader.Event{Subject: bundle, Generation: 4})
	expect("two reloads", true)
	expect("nothing more", false)
}
