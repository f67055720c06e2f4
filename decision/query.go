package decision

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	policy "github.com/verdict-authz/verdict/rego"
)

// QueryResult is the answer to a Data API query.
type QueryResult struct {
	DecisionID string
	// Defined is false when the document is undefined (OPA then answers
	// without "result").
	Defined bool
	Result  any
}

// Bounds on a Data API path: every distinct path is compiled into a
// prepared query, so its size bounds the memory one query may take.
const (
	// MaxDataPathBytes bounds the length of a path (its segments and the
	// "/" between them).
	MaxDataPathBytes = 512
	// MaxDataPathSegments bounds the segments of a path.
	MaxDataPathSegments = 32
)

// enginePath is data.verdict.engine as path segments.
var enginePath = strings.Split(policy.Package, ".")

// IsEngineDocument reports whether path is data.verdict.engine or a
// document below it. The engine's rules read input.facts, the facts only
// verdict gathers: such a document is evaluated with QueryEngine, on the
// facts of a decision request, never on a caller's input.
func IsEngineDocument(path []string) bool {
	if len(path) < len(enginePath) {
		return false
	}
	for i, seg := range enginePath {
		if path[i] != seg {
			return false
		}
	}
	return true
}

// containsEngine reports whether the document at path has
// data.verdict.engine inside it (data, data.verdict).
func containsEngine(path []string) bool {
	if len(path) >= len(enginePath) {
		return false
	}
	for i, seg := range path {
		if enginePath[i] != seg {
			return false
		}
	}
	return true
}

// Query evaluates the document data.<path> (path segments, e.g.
// ["verdict","conditions","office_hours"]) on input, against the current
// generation's compiled bundles and data, as OPA's Data API does.
//
// A document of the engine (see IsEngineDocument) is refused: it is only
// meaningful, and only safe, on gathered facts (QueryEngine). The
// documents around it (data, data.verdict) are answered without it.
func (e *Engine) Query(ctx context.Context, path []string, input any) (*QueryResult, error) {
	return e.queryOn(ctx, e.current.Load(), path, input)
}

// queryOn is Query on gen (ErrNotReady when nil).
func (e *Engine) queryOn(ctx context.Context, gen *Generation, path []string, input any) (*QueryResult, error) {
	if err := document(gen, path); err != nil {
		return nil, err
	}
	if IsEngineDocument(path) {
		return nil, &InputError{Field: "path", Message: fmt.Sprintf("%s is a document of verdict's engine: it is evaluated on a decision request's gathered facts (QueryEngine)", dataRef(path))}
	}
	pq, err := preparedQuery(ctx, gen.Policy, path)
	if err != nil {
		return nil, err
	}
	var parsed ast.Value
	if input != nil {
		v, err := ast.InterfaceToValue(input)
		if err != nil {
			return nil, &InputError{Field: "input", Message: err.Error()}
		}
		parsed = v
	}
	res, err := e.evalData(ctx, gen, pq, path, parsed)
	if err != nil {
		return nil, err
	}
	if res.Defined && containsEngine(path) {
		dropEngine(res.Result, path)
	}
	return res, nil
}

// QueryEngine evaluates the engine's document data.<path> (see
// IsEngineDocument) on the input /v1/decide would evaluate for a request:
// the request and the facts verdict gathers for it.
// data.verdict.engine.decision is then the decision /v1/decide answers
// (without its decision id, tenant, action and revisions).
//
// input returns the request; its error is returned as is. It is called
// once the path has been checked, so that a path that is no document is
// reported before the input. Without input (nil) the document is
// undefined, as a rule that needs input would be.
func (e *Engine) QueryEngine(ctx context.Context, path []string, input func() (*Request, error)) (*QueryResult, error) {
	return e.queryEngineOn(ctx, e.current.Load(), true, path, input)
}

// queryEngineOn is QueryEngine on gen (ErrNotReady when nil); with
// catchUp, a request asking for a newer state revision is evaluated on the
// generation that has it, as Decide does.
func (e *Engine) queryEngineOn(ctx context.Context, gen *Generation, catchUp bool, path []string, input func() (*Request, error)) (*QueryResult, error) {
	if !IsEngineDocument(path) {
		return nil, &InputError{Field: "path", Message: fmt.Sprintf("%s is not a document of verdict's engine", dataRef(path))}
	}
	// A reason's message is written by Go (messages.go), not by the rules:
	// a path to one is answered from the reason it belongs to.
	requested := path
	if n := len(path); n > len(enginePath) && path[n-1] == "message" {
		path = path[:n-1]
	}
	if err := document(gen, path); err != nil {
		return nil, err
	}
	pq, err := preparedQuery(ctx, gen.Policy, path)
	if err != nil {
		return nil, err
	}
	if input == nil {
		return &QueryResult{DecisionID: e.newID()}, nil
	}
	req, err := input()
	if err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	// As Decide does, catch up with the state revision the request asks
	// for; the newer generation has its own compiled policy.
	if catchUp {
		if newer := e.generationFor(ctx, req.Consistency); newer != gen {
			gen = newer
			if err := checkDocument(gen.Policy, path); err != nil {
				return nil, err
			}
			if pq, err = preparedQuery(ctx, gen.Policy, path); err != nil {
				return nil, err
			}
		}
	}
	f, err := gatherRecovering(gen, req)
	if err != nil {
		return nil, err
	}
	res, err := e.evalData(ctx, gen, pq, path, f.input)
	if err != nil || !res.Defined {
		return res, err
	}
	// The document carries the messages /v1/decide renders.
	mf := messageFactsOf(req, f)
	if err := mf.renderDocument(res.Result); err != nil {
		return nil, fmt.Errorf("data.%s: %w", strings.Join(path, "."), err)
	}
	if len(requested) > len(path) {
		res.Result, res.Defined = messageOf(res.Result)
	}
	return res, nil
}

// messageOf is the message of doc when doc is an object that has one (a
// reason, its message rendered).
func messageOf(doc any) (any, bool) {
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, false
	}
	msg, ok := obj["message"]
	return msg, ok
}

// gatherRecovering is gather on gen's snapshot, with a panic turned into an
// error as decide does.
func gatherRecovering(gen *Generation, req *Request) (f *facts, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic while gathering facts: %v", v)
		}
	}()
	f = new(facts)
	if err := f.gather(gen.Facts.Read(), gen.State, req); err != nil {
		return nil, err
	}
	return f, nil
}

// document checks that path may be asked for on gen (its size, and that
// it is not a function); ErrNotReady when gen is nil.
func document(gen *Generation, path []string) error {
	if err := checkDataPath(path); err != nil {
		return err
	}
	if gen == nil {
		return ErrNotReady
	}
	return checkDocument(gen.Policy, path)
}

// evalData evaluates a prepared Data API query; input nil means no input.
// The evaluation stops when ctx ends (an error, never a result).
func (e *Engine) evalData(ctx context.Context, gen *Generation, pq *rego.PreparedEvalQuery, path []string, input ast.Value) (res *QueryResult, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic during data.%s: %v", strings.Join(path, "."), v)
		}
	}()
	cancel, stop := policy.CancelWith(ctx)
	defer stop()
	opts := []rego.EvalOption{rego.EvalExternalCancel(cancel)}
	if input != nil {
		opts = append(opts, rego.EvalParsedInput(input))
	}
	rs, err := pq.Eval(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("evaluate data.%s: %w", strings.Join(path, "."), err)
	}
	out := &QueryResult{DecisionID: e.newID()}
	if len(rs) > 0 && len(rs[0].Expressions) > 0 {
		out.Defined = true
		out.Result = rs[0].Expressions[0].Value
	}
	return out, nil
}

// dropEngine removes data.verdict.engine from the document at path (data
// or data.verdict), as evaluated on a caller's input.
func dropEngine(doc any, path []string) {
	for _, seg := range enginePath[len(path) : len(enginePath)-1] {
		m, ok := doc.(map[string]any)
		if !ok {
			return
		}
		doc = m[seg]
	}
	if m, ok := doc.(map[string]any); ok {
		delete(m, enginePath[len(enginePath)-1])
	}
}

// checkDataPath refuses a path over the bounds, or one that is not UTF-8,
// with an InputError on "path" that names it (shortened).
func checkDataPath(path []string) error {
	size := max(len(path)-1, 0) // the "/" between segments
	for _, seg := range path {
		size += len(seg)
	}
	switch {
	case size > MaxDataPathBytes:
		return &InputError{Field: "path", Message: fmt.Sprintf("%s is %d bytes long; a path may have at most %d", shortPath(path), size, MaxDataPathBytes)}
	case len(path) > MaxDataPathSegments:
		return &InputError{Field: "path", Message: fmt.Sprintf("%s has %d segments; a path may have at most %d", shortPath(path), len(path), MaxDataPathSegments)}
	}
	for _, seg := range path {
		if !utf8.ValidString(seg) {
			return &InputError{Field: "path", Message: fmt.Sprintf("%s is not valid UTF-8", shortPath(path))}
		}
	}
	return nil
}

// shortPath shows a path in an error message, cut after 64 bytes.
func shortPath(path []string) string {
	const show = 64
	p := strings.Join(path, "/")
	if len(p) > show {
		cut := show
		for cut > 0 && !utf8.RuneStart(p[cut]) {
			cut--
		}
		p = p[:cut] + "…"
	}
	return fmt.Sprintf("%q", p)
}

// dataRef is the reference data.<path>.
func dataRef(path []string) ast.Ref {
	ref := ast.DefaultRootRef.Copy()
	for _, seg := range path {
		ref = append(ref, ast.StringTerm(seg))
	}
	return ref
}

// checkDocument refuses a path that names a function (a rule with
// arguments), or lies below one, with an InputError on "path": a function
// is not a document, and evaluating it as one is a Rego type error. OPA's
// server answers that with 500 internal_error; it is the caller's mistake.
func checkDocument(p *policy.Policy, path []string) error {
	ref := dataRef(path)
	for _, r := range p.Compiler().GetRulesForVirtualDocument(ref) {
		if len(r.Head.Args) == 0 || r.Module == nil {
			continue
		}
		const hint = "the Data API evaluates documents (data, and rules without arguments); call the function from a rule"
		fn := r.Path()
		if fn.Equal(ref) {
			return &InputError{Field: "path", Message: fmt.Sprintf("%s is a function, not a document: %s", fn, hint)}
		}
		return &InputError{Field: "path", Message: fmt.Sprintf("%s is inside the function %s, not a document: %s", ref, fn, hint)}
	}
	return nil
}

// preparedQuery returns the prepared query of data.<path>, from the
// policy's cache or prepared now. A path the type checker refuses (one
// below a scalar, such as data.verdict.engine.decision.allow.x) is an
// InputError on "path": no evaluation could give it a value.
func preparedQuery(ctx context.Context, p *policy.Policy, path []string) (*rego.PreparedEvalQuery, error) {
	ref := dataRef(path)
	prepared, err := p.PreparedQuery(ctx, ref)
	if err != nil {
		key := ref.String()
		var astErrs ast.Errors
		if errors.As(err, &astErrs) && len(astErrs) > 0 && astErrs[0].Code == ast.TypeErr {
			return nil, &InputError{Field: "path", Message: fmt.Sprintf("%s can have no value: %s", key, astErrs[0].Message)}
		}
		return nil, fmt.Errorf("prepare %s: %w", key, err)
	}
	return prepared, nil
}
