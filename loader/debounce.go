package loader

import (
	"sync"
	"time"
)

// debouncer collapses bursts of events per key: a key fires once its events
// have been quiet for the window, or at the latest maxWait after the first
// event of the burst (so a file rewritten continuously still reloads).
type debouncer struct {
	window, maxWait time.Duration
	fire            func(key string)

	mu     sync.Mutex
	bursts map[string]*burst
	closed bool
}

type burst struct {
	timer *time.Timer
	first time.Time
}

func newDebouncer(window, maxWait time.Duration, fire func(key string)) *debouncer {
	if maxWait < window {
		maxWait = window
	}
	return &debouncer{window: window, maxWait: maxWait, fire: fire, bursts: map[string]*burst{}}
}

// touch records an event for key.
func (d *debouncer) touch(key string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	now := time.Now()
	b, ok := d.bursts[key]
	if !ok {
		b = &burst{first: now}
		d.bursts[key] = b
		b.timer = time.AfterFunc(d.window, func() { d.expire(key, b) })
		return
	}
	wait := d.window
	if left := d.maxWait - now.Sub(b.first); left < wait {
		wait = max(left, 0)
	}
	b.timer.Reset(wait)
}

func (d *debouncer) expire(key string, b *burst) {
	d.mu.Lock()
	if d.closed || d.bursts[key] != b {
		d.mu.Unlock()
		return
	}
	delete(d.bursts, key)
	d.mu.Unlock()
	d.fire(key)
}

// stop cancels every pending burst.
func (d *debouncer) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	for k, b := range d.bursts {
		b.timer.Stop()
		delete(d.bursts, k)
	}
}
