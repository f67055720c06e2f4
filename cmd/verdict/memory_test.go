package main

import (
	"runtime/debug"
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

// TestCollectorTarget: verdict run sets GOGC to defaultGCPercent when the
// environment does not set it, and leaves the environment's value alone.
func TestCollectorTarget(t *testing.T) {
	old := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(old) })

	for _, tc := range []struct {
		env        string
		wantGOGC   string
		wantSource string
		wantTarget int
	}{
		{"", "130", "default (set GOGC to change it)", defaultGCPercent},
		{"100", "100", "environment", 100},
		{"off", "off", "environment", 100}, // what the runtime read stands (100 here, set above)
	} {
		debug.SetGCPercent(100)
		gogc, source := setCollectorTarget(func(key string) string {
			if key == "GOGC" {
				return tc.env
			}
			return ""
		})
		if gogc != tc.wantGOGC || source != tc.wantSource {
			t.Errorf("GOGC=%q: got %q from %q, want %q from %q", tc.env, gogc, source, tc.wantGOGC, tc.wantSource)
		}
		if target := debug.SetGCPercent(100); target != tc.wantTarget {
			t.Errorf("GOGC=%q: the collector's target is %d, want %d", tc.env, target, tc.wantTarget)
		}
	}
}
