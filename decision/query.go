package decision

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// QueryResult is the answer to a Data API query.
type QueryResult struct {
	DecisionID string
	// Defined is false when the document is undefined (OPA then answers
	// without "result").
	Defined bool
	Result  any
}

// Query evaluates the document data.<path> (path segments, e.g.
// ["verdict","conditions","office_hours"]) on input, against the current
// generation's compiled bundles and data, as OPA's Data API does.
func (e *Engine) Query(ctx context.Context, path []string, input any) (*QueryResult, error) {
	gen := e.current.Load()
	if gen == nil {
		return nil, ErrNotReady
	}
	if err := gen.Policy.checkDocument(path); err != nil {
		return nil, err
	}
	pq, err := gen.Policy.preparedQuery(ctx, path)
	if err != nil {
		return nil, err
	}
	opts := []rego.EvalOption{rego.EvalExternalCancel(topdown.NewCancel())}
	if input != nil {
		v, err := ast.InterfaceToValue(input)
		if err != nil {
			return nil, &InputError{Field: "input", Message: err.Error()}
		}
		opts = append(opts, rego.EvalParsedInput(v))
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

// queryCache holds the prepared Data API queries of one policy, by path.
type queryCache struct {
	mu      sync.Mutex
	queries map[string]*rego.PreparedEvalQuery
}

// maxCachedQueries bounds the prepared Data API queries kept per generation.
const maxCachedQueries = 1024

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
func (p *Policy) checkDocument(path []string) error {
	ref := dataRef(path)
	for _, r := range p.compiler.GetRulesForVirtualDocument(ref) {
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

func (p *Policy) preparedQuery(ctx context.Context, path []string) (*rego.PreparedEvalQuery, error) {
	ref := dataRef(path)
	key := ref.String()
	p.dataQueries.mu.Lock()
	pq, ok := p.dataQueries.queries[key]
	p.dataQueries.mu.Unlock()
	if ok {
		return pq, nil
	}
	prepared, err := rego.New(
		rego.ParsedQuery(ast.NewBody(ast.NewExpr(ast.NewTerm(ref)))),
		rego.Compiler(p.compiler),
		rego.Store(p.store),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("prepare %s: %w", key, err)
	}
	p.dataQueries.mu.Lock()
	defer p.dataQueries.mu.Unlock()
	if p.dataQueries.queries == nil || len(p.dataQueries.queries) >= maxCachedQueries {
		p.dataQueries.queries = map[string]*rego.PreparedEvalQuery{}
	}
	p.dataQueries.queries[key] = &prepared
	return &prepared, nil
}
