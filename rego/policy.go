package rego

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Policy is the compiled Rego of one generation: verdict's engine rules
// plus every loaded bundle's modules, over the bundles' other data.
type Policy struct {
	compiler  *ast.Compiler
	store     storage.Store
	query     *ruleQuery
	planQuery *ruleQuery
	// dataQueries caches the Data API's prepared queries (an LRU).
	dataQueries queryCache
}

// ModuleError is a module CompilePolicy refuses before compiling it: one
// that would add rules to the engine's own package. Module is the name the
// caller gave it; Row, when not 0, the line of the offending rule.
type ModuleError struct {
	Module string
	Row    int
	Err    error
}

func (e *ModuleError) Error() string {
	if e.Row > 0 {
		return fmt.Sprintf("%s:%d: %v", e.Module, e.Row, e.Err)
	}
	return e.Module + ": " + e.Err.Error()
}

func (e *ModuleError) Unwrap() error { return e.Err }

// CompilePolicy compiles the engine's rules with the bundles' modules and
// prepares the decision query. Data is the bundles' data other than
// verdict.catalog and verdict.tenants.
func CompilePolicy(ctx context.Context, modules map[string]*ast.Module, data map[string]any) (*Policy, error) {
	system, err := Modules(false)
	if err != nil {
		return nil, err
	}
	all := make(map[string]*ast.Module, len(system)+len(modules))
	for name, m := range modules {
		if isReserved(m.Package.Path) {
			return nil, &ModuleError{Module: name, Err: fmt.Errorf("package %s is reserved for verdict's engine", strings.TrimPrefix(m.Package.Path.String(), "data."))}
		}
		// A rule head is a ref too: "engine.covers(r) if …" in package
		// verdict would add a definition to the engine's own rules.
		for _, r := range m.Rules {
			if path := m.Package.Path.Extend(r.Head.Ref()); isReserved(path) {
				return nil, &ModuleError{Module: name, Row: r.Location.Row, Err: fmt.Errorf("rule %s is in data.%s, which is reserved for verdict's engine",
					strings.TrimPrefix(path.String(), "data."), Package)}
			}
		}
		all[name] = m
	}
	for name, m := range system {
		all[name] = m
	}
	compiler := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	compiler.Compile(all)
	if compiler.Failed() {
		return nil, fmt.Errorf("compile policy: %w", compiler.Errors)
	}
	st := inmem.NewFromObjectWithOpts(data, inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(true))
	query, err := compileRuleQuery(compiler, DecisionQuery)
	if err != nil {
		return nil, err
	}
	planQuery, err := compileRuleQuery(compiler, PlanQuery)
	if err != nil {
		return nil, err
	}
	return &Policy{compiler: compiler, store: st, query: query, planQuery: planQuery}, nil
}

// Eval evaluates the decision query on input and returns the decision term.
func (p *Policy) Eval(ctx context.Context, input ast.Value) (*ast.Term, error) {
	return p.evalRule(ctx, p.query, input, nil)
}

// EvalTraced is Eval with a query tracer attached.
func (p *Policy) EvalTraced(ctx context.Context, input ast.Value, tracer topdown.QueryTracer) (*ast.Term, error) {
	return p.evalRule(ctx, p.query, input, tracer)
}

// EvalPlan evaluates the list-plan query on input.
func (p *Policy) EvalPlan(ctx context.Context, input ast.Value) (*ast.Term, error) {
	return p.evalRule(ctx, p.planQuery, input, nil)
}

// ruleQuery is one document of the engine's rules (the decision, the
// plan) compiled once into a query that topdown evaluates directly. The
// rego package's PreparedEvalQuery.Eval does the same evaluation with a
// result set, metrics and an evaluation context built around it on every
// call; the decision needs none of them. What OPA's semantics depend on is
// kept as topdown sets it per evaluation: a fresh builtins cache, one
// time.now_ns for the whole evaluation, and the cancellation (CancelWith)
// tied to the request's context. Rule values are cached per evaluation as
// topdown caches them, in a cache of our own (ruleCache).
type ruleQuery struct {
	body     ast.Body
	compiler ast.QueryCompiler
	// result is the variable the document is bound to in body.
	result ast.Var
}

// ruleResult is the variable a ruleQuery binds its document to: the name
// the rego package gives it, so that an evaluation trace (explain=full)
// reads as it did through the rego package.
const ruleResult = ast.Var(ast.WildcardPrefix + "term1")

// compileRuleQuery compiles "<ref> = $term1" against compiler, parsed as
// the rego package parses a query (so that trace locations read "query:1").
func compileRuleQuery(compiler *ast.Compiler, ref string) (*ruleQuery, error) {
	parsed, err := ast.ParseBodyWithOpts(ref, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return nil, fmt.Errorf("prepare %s: %w", ref, err)
	}
	term, ok := parsed[0].Terms.(*ast.Term)
	if len(parsed) != 1 || !ok {
		return nil, fmt.Errorf("prepare %s: not a reference", ref)
	}
	parsed[0].Terms = ast.Equality.Expr(term, ast.NewTerm(ruleResult)).Terms
	qc := compiler.QueryCompiler()
	body, err := qc.Compile(parsed)
	if err != nil {
		return nil, fmt.Errorf("prepare %s: %w", ref, err)
	}
	result := ruleResult
	for compiled, written := range qc.RewrittenVars() {
		if written == ruleResult {
			result = compiled
		}
	}
	return &ruleQuery{body: body, compiler: qc, result: result}, nil
}

// evalRule evaluates q on input, traced by tracer when it is not nil, and
// returns the document. An undefined document is an error: the engine's
// documents are defined for every input.
func (p *Policy) evalRule(ctx context.Context, q *ruleQuery, input ast.Value, tracer topdown.QueryTracer) (*ast.Term, error) {
	cancel, stop := CancelWith(ctx)
	defer stop()
	txn, err := p.store.NewTransaction(ctx)
	if err != nil {
		return nil, fmt.Errorf("evaluate policy: %w", err)
	}
	defer p.store.Abort(ctx, txn)
	cache := newRuleCache()
	defer cache.release()
	query := topdown.NewQuery(q.body).
		WithQueryCompiler(q.compiler).
		WithCompiler(p.compiler).
		WithStore(p.store).
		WithTransaction(txn).
		WithInput(ast.NewTerm(input)).
		WithCancel(cancel).
		WithVirtualCache(cache).
		WithBaseCache(&cache.base).
		WithRequestMetadata(noRequestMetadata).
		WithMetrics(noMetrics)
	if tracer != nil {
		query = query.WithQueryTracer(tracer)
	}
	var doc *ast.Term
	n := 0
	err = query.Iter(ctx, func(qr topdown.QueryResult) error {
		n++
		doc = qr[q.result]
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("evaluate policy: %w", err)
	}
	if n != 1 || doc == nil {
		return nil, errors.New("evaluate policy: the decision is undefined")
	}
	return doc, nil
}

// noMetrics drops the evaluation's metrics, which nothing reads (topdown
// would otherwise allocate a set per evaluation).
var noMetrics = metrics.NoOp()

// noRequestMetadata is the metadata verdict hands the builtins of every
// evaluation: none. (topdown would otherwise allocate an empty map per
// evaluation; no builtin writes to it, it is the caller's to give.)
var noRequestMetadata = map[string]any{}

// CancelWith returns a Rego cancel that fires when ctx ends (its deadline
// passes or the client goes away), and stop, which releases it once the
// evaluation is over. A cancelled evaluation ends with an error, which a
// decision turns into a deny. context.AfterFunc registers the cancel with
// ctx, where the rego package would otherwise start a goroutine per
// evaluation to watch ctx; a context that can never end costs nothing.
func CancelWith(ctx context.Context) (topdown.Cancel, func() bool) {
	cancel := topdown.NewCancel()
	if ctx.Done() == nil {
		return cancel, noStop
	}
	return cancel, context.AfterFunc(ctx, cancel.Cancel)
}

func noStop() bool { return false }

var reservedPath = ast.MustParseRef("data." + Package)

func isReserved(path ast.Ref) bool {
	return path.HasPrefix(reservedPath)
}

// HasRule reports whether some module defines a rule at the data path,
// e.g. "verdict.conditions.office_hours".
func (p *Policy) HasRule(path string) bool {
	ref, err := ast.ParseRef("data." + path)
	if err != nil {
		return false
	}
	return len(p.compiler.GetRulesExact(ref)) > 0
}

// Compiler exposes the compiled modules (for the Data API and tests).
func (p *Policy) Compiler() *ast.Compiler { return p.compiler }

// Store exposes the policy's data store.
func (p *Policy) Store() storage.Store { return p.store }

// ModuleNames lists the bundle modules compiled in, sorted.
func (p *Policy) ModuleNames() []string {
	names := make([]string, 0, len(p.compiler.Modules))
	for n := range p.compiler.Modules {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
