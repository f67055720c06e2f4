package client

import (
	"math/rand/v2"
	"time"
)

// Backoff is how long RegisterService waits between attempts: exponential
// growth from Initial by Multiplier up to Max, with full jitter (a random
// wait between zero and that bound) so that many services restarting
// together do not knock on the sidecar in step.
type Backoff struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
	// OnRetry, when set, is called before each wait with the attempt that
	// failed (from 1), its error and the wait; services log it.
	OnRetry func(attempt int, err error, wait time.Duration)
}

// DefaultBackoff starts at 100 ms and doubles up to 10 s.
var DefaultBackoff = Backoff{Initial: 100 * time.Millisecond, Max: 10 * time.Second, Multiplier: 2}

// Delay is the wait after the failed attempt number attempt (from 0).
func (b Backoff) Delay(attempt int) time.Duration {
	initial, maxWait, mult := b.Initial, b.Max, b.Multiplier
	if initial <= 0 {
		initial = DefaultBackoff.Initial
	}
	if maxWait <= 0 {
		maxWait = DefaultBackoff.Max
	}
	if mult < 1 {
		mult = DefaultBackoff.Multiplier
	}
	bound := float64(initial)
	for i := 0; i < attempt && bound < float64(maxWait); i++ {
		bound *= mult
	}
	if bound > float64(maxWait) {
		bound = float64(maxWait)
	}
	// Full jitter, but never less than a tenth of the bound: a wait of
	// zero would turn a down sidecar into a busy loop.
	low := bound / 10
	return time.Duration(low + rand.Float64()*(bound-low))
}
