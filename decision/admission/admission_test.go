package admission_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/decision/admission"
)

func TestLimiter(t *testing.T) {
	now := time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC)
	l := admission.New(2, admission.WithClock(func() time.Time { return now }))
	ctx := context.Background()
	for range 2 {
		if err := l.Acquire(ctx); err != nil {
			t.Fatalf("a free slot: %v", err)
		}
	}
	if err := l.Acquire(ctx); !errors.Is(err, admission.ErrOverloaded) {
		t.Fatalf("every slot taken: %v, want ErrOverloaded", err)
	}
	if d := l.OverloadedFor(); d != 0 {
		t.Fatalf("one refusal: overloaded for %v, want the start of a run (0)", d)
	}
	// A caller that goes away is no overload.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	now = now.Add(2 * admission.Gap)
	if err := l.Acquire(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled caller: %v, want context.Canceled", err)
	}
	if d, sustained := l.Overloaded(); d != 0 || sustained {
		t.Fatalf("after a pause and a cancelled caller: %v %v, want no overload", d, sustained)
	}
	l.Release()
	if err := l.Acquire(ctx); err != nil {
		t.Fatalf("a released slot: %v", err)
	}
	// Refusals without a pause of Gap add up to a sustained overload.
	for end := now.Add(admission.ReadyAfter); now.Before(end); now = now.Add(admission.Gap / 2) {
		l.Refused()
	}
	l.Refused()
	if d, sustained := l.Overloaded(); !sustained || d < admission.ReadyAfter {
		t.Fatalf("refusals for %v: %v %v, want sustained", admission.ReadyAfter, d, sustained)
	}
	now = now.Add(admission.Gap + time.Millisecond)
	if _, sustained := l.Overloaded(); sustained {
		t.Fatal("a pause of Gap ends the overload")
	}
}
