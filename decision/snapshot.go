package decision

import "context"

// Snapshot answers the questions of one request that asks several (OPA's
// batch Data API) on one generation: one store snapshot and the Rego
// compiled with it, whatever is reloaded meanwhile. Unlike Pinned (for
// analysis), its decisions are live traffic: they are observed (metrics,
// spans, decision log) and use the decision cache, as Engine.Decide's are.
type Snapshot struct {
	engine *Engine
	gen    *Generation
	id     string
}

// Snapshot takes the installed generation; ErrNotReady while there is none.
// With c, it first catches up with that state revision, as Decide does for
// one request (a batch asks for the newest revision any of its inputs asks
// for); an input that asks for a newer revision than the snapshot's is then
// denied state.stale by the rules.
func (e *Engine) Snapshot(ctx context.Context, c *Consistency) (*Snapshot, error) {
	gen := e.generationFor(ctx, c)
	if gen == nil {
		return nil, ErrNotReady
	}
	return &Snapshot{engine: e, gen: gen, id: e.newID()}, nil
}

// ID identifies the snapshot's batch (OPA's batch_decision_id), in the
// form of a decision id.
func (s *Snapshot) ID() string { return s.id }

// Generation returns the generation every answer comes from.
func (s *Snapshot) Generation() *Generation { return s.gen }

// Decide answers one request on the snapshot, as Engine.Decide does on the
// installed generation: the error is non-nil only for a malformed request
// (an *InputError); any other failure is a deny with the reason
// error.internal.
func (s *Snapshot) Decide(ctx context.Context, req *Request) (*Decision, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	return s.engine.decideOrFail(ctx, s.gen, req, nil), nil
}

// Query evaluates the document data.<path> on input on the snapshot, as
// Engine.Query does on the installed generation.
func (s *Snapshot) Query(ctx context.Context, path []string, input any) (*QueryResult, error) {
	return s.engine.queryOn(ctx, s.gen, path, input)
}

// QueryEngine evaluates the engine's document data.<path> on the facts
// gathered for a request, on the snapshot, as Engine.QueryEngine does on
// the installed generation.
func (s *Snapshot) QueryEngine(ctx context.Context, path []string, input func() (*Request, error)) (*QueryResult, error) {
	return s.engine.queryEngineOn(ctx, s.gen, false, path, input)
}
