// Package admission bounds how many decisions evaluate at once across all
// of verdict's doors (the HTTP decision endpoints and Envoy ext_authz over
// gRPC): one pool of slots, sized by --max-concurrent-decisions. A request
// that finds no free slot within a short wait is refused (overloaded), and
// the refusals make the signal that readiness reports as sustained
// overload.
package admission

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"
)

// Wait is how long a decision waits for a free slot before it is refused.
const Wait = 10 * time.Millisecond

// Sustained overload: Limiter.Overloaded reports true once decisions have
// been refused for ReadyAfter without a pause of Gap between two refusals,
// and false again Gap after the last refusal.
const (
	ReadyAfter = 5 * time.Second
	Gap        = time.Second
)

// ErrOverloaded is a decision refused because every slot stayed taken for
// Wait.
var ErrOverloaded = errors.New("too many decisions in flight")

// Limiter lets at most Max decisions evaluate at once. It is safe for
// concurrent use; the zero value is not usable (see New).
type Limiter struct {
	max   int
	slots chan struct{}
	now   func() time.Time

	mu sync.Mutex
	// rejectingSince starts the current run of refusals (no pause longer
	// than Gap); lastRejection is the latest refusal.
	rejectingSince, lastRejection time.Time
}

// Option configures a Limiter.
type Option func(*Limiter)

// WithClock makes the Limiter read the time from now (time.Now by default),
// so that tests can move it by hand.
func WithClock(now func() time.Time) Option { return func(l *Limiter) { l.now = now } }

// New returns a Limiter of max slots (max > 0).
func New(max int, opts ...Option) *Limiter {
	l := &Limiter{max: max, slots: make(chan struct{}, max), now: time.Now}
	for _, o := range opts {
		o(l)
	}
	return l
}

// Max is the number of slots.
func (l *Limiter) Max() int { return l.max }

// Acquire takes a slot, waiting at most Wait for one. It returns nil with
// the slot taken (give it back with Release), ErrOverloaded when none freed
// in time (the refusal is recorded), or ctx's error when ctx ended first
// (not recorded: the caller went away).
func (l *Limiter) Acquire(ctx context.Context) error {
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(Wait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-t.C:
		l.Refused()
		return ErrOverloaded
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release gives back a slot taken by Acquire.
func (l *Limiter) Release() { <-l.slots }

// Message is the text of an overloaded answer.
func (l *Limiter) Message() string {
	return "too many decisions in flight (at most " + strconv.Itoa(l.max) + "); retry shortly"
}

// Refused records a decision refused for overload (by Acquire, or by a
// door for a budget of its own, such as the HTTP bodies' memory).
func (l *Limiter) Refused() {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rejectingSince.IsZero() || now.Sub(l.lastRejection) > Gap {
		l.rejectingSince = now
	}
	l.lastRejection = now
}

// OverloadedFor is how long decisions have been refused without a pause
// longer than Gap (0 when they are not being refused).
func (l *Limiter) OverloadedFor() time.Duration {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rejectingSince.IsZero() || now.Sub(l.lastRejection) > Gap {
		return 0
	}
	return now.Sub(l.rejectingSince)
}

// Overloaded reports whether the overload is sustained (OverloadedFor at
// least ReadyAfter), and OverloadedFor: readiness is lost while it is.
func (l *Limiter) Overloaded() (time.Duration, bool) {
	d := l.OverloadedFor()
	return d, d >= ReadyAfter
}
