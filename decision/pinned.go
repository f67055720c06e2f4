package decision

import "context"

// Pinned answers many questions on one generation: the store snapshot and
// the compiled Rego installed when it was pinned. Analysis tools (access
// review, diff, shadow evaluation) ask through it, so that every answer of
// one review comes from the same facts, and Rego makes each of them.
//
// Its decisions are not reported to the engine's observer (no metrics,
// spans or decision log lines) and neither read nor fill the decision cache:
// a review of a large tenant must not evict the live traffic's entries.
type Pinned struct {
	engine *Engine
	gen    Generation // a copy of the installed generation, without its cache
}

// Pin pins the installed generation; ErrNotReady while there is none.
func (e *Engine) Pin() (*Pinned, error) {
	gen := e.current.Load()
	if gen == nil {
		return nil, ErrNotReady
	}
	return e.PinGeneration(gen), nil
}

// PinGeneration pins gen, which need not be installed.
func (e *Engine) PinGeneration(gen *Generation) *Pinned {
	p := &Pinned{engine: e, gen: *gen}
	p.gen.cache = nil
	return p
}

// Generation returns the pinned generation (its facts, policy and
// revisions).
func (p *Pinned) Generation() *Generation { return &p.gen }

// Decide answers one request on the pinned generation, as Engine.Decide
// does on the installed one: the error is non-nil only for a malformed
// request (an *InputError); any other failure is a deny with the reason
// error.internal.
func (p *Pinned) Decide(ctx context.Context, req *Request) (*Decision, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	d, _, err := p.engine.decide(ctx, &p.gen, req, nil)
	if err != nil {
		return p.engine.failClosed(req, &p.gen, err), nil
	}
	return d, nil
}
