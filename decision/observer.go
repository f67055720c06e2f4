package decision

import (
	"context"
	"time"
)

// Observer is told about every decision the engine makes, allowed, denied
// or failed: package telemetry turns it into metrics, a span and a decision
// log line. ObserveDecision runs on the deciding goroutine after the
// decision is made; it must be fast, must not block and must not change req
// or d (which it may hand to another goroutine).
type Observer interface {
	ObserveDecision(ctx context.Context, req *Request, d *Decision, info DecisionInfo)
}

// DecisionInfo is what an Observer learns about a decision besides the
// request and the answer.
type DecisionInfo struct {
	// Start is when the engine began the decision.
	Start time.Time
	// Duration is how long the decision took in the engine.
	Duration time.Duration
	// Err is the internal error behind an error.internal deny, else nil.
	Err error
	// Explained is set when the Rego evaluation was traced (explain=full),
	// which makes Duration much longer than a served decision's.
	Explained bool
	// Cache is what the decision cache did for this decision: CacheHit,
	// CacheMiss, or "" when the cache is off or was not asked (explain=full,
	// a request it cannot key, a failure before the lookup).
	Cache CacheResult
}

// CacheResult is a decision cache lookup's outcome.
type CacheResult string

// Decision cache outcomes (DecisionInfo.Cache).
const (
	CacheHit  CacheResult = "hit"
	CacheMiss CacheResult = "miss"
)

// EngineOption configures an Engine.
type EngineOption func(*Engine)

// WithObserver reports every decision to o.
func WithObserver(o Observer) EngineOption {
	return func(e *Engine) { e.observer = o }
}
