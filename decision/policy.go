package decision

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"

	policy "github.com/verdict-authz/verdict/rego"
)

// Policy is the compiled Rego of one generation: verdict's engine rules
// plus every loaded bundle's modules, over the bundles' other data.
type Policy struct {
	compiler  *ast.Compiler
	store     storage.Store
	query     rego.PreparedEvalQuery
	planQuery rego.PreparedEvalQuery
	// dataQueries caches the Data API's prepared queries (an LRU).
	dataQueries queryCache
}

// CompilePolicy compiles the engine's rules with the bundles' modules and
// prepares the decision query. Data is the bundles' data other than
// verdict.catalog and verdict.tenants.
func CompilePolicy(ctx context.Context, modules map[string]*ast.Module, data map[string]any) (*Policy, error) {
	system, err := policy.Modules(false)
	if err != nil {
		return nil, err
	}
	all := make(map[string]*ast.Module, len(system)+len(modules))
	for name, m := range modules {
		if isReserved(m.Package.Path) {
			return nil, fmt.Errorf("%s: package %s is reserved for verdict's engine", name, strings.TrimPrefix(m.Package.Path.String(), "data."))
		}
		// A rule head is a ref too: "engine.covers(r) if …" in package
		// verdict would add a definition to the engine's own rules.
		for _, r := range m.Rules {
			if path := m.Package.Path.Extend(r.Head.Ref()); isReserved(path) {
				return nil, fmt.Errorf("%s:%d: rule %s is in data.%s, which is reserved for verdict's engine",
					name, r.Location.Row, strings.TrimPrefix(path.String(), "data."), policy.Package)
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
	prepare := func(q string) (rego.PreparedEvalQuery, error) {
		pq, err := rego.New(
			rego.Query(q),
			rego.Compiler(compiler),
			rego.Store(st),
			rego.StoreReadAST(true),
			rego.GenerateJSON(keepAST),
		).PrepareForEval(ctx)
		if err != nil {
			return pq, fmt.Errorf("prepare %s: %w", q, err)
		}
		return pq, nil
	}
	query, err := prepare(policy.DecisionQuery)
	if err != nil {
		return nil, err
	}
	planQuery, err := prepare(policy.PlanQuery)
	if err != nil {
		return nil, err
	}
	return &Policy{compiler: compiler, store: st, query: query, planQuery: planQuery}, nil
}

// eval evaluates the decision query on input and returns the decision term.
func (p *Policy) eval(ctx context.Context, input ast.Value) (*ast.Term, error) {
	return evalOne(ctx, p.query, input)
}

// evalPlan evaluates the list-plan query on input.
func (p *Policy) evalPlan(ctx context.Context, input ast.Value) (*ast.Term, error) {
	return evalOne(ctx, p.planQuery, input)
}

func evalOne(ctx context.Context, query rego.PreparedEvalQuery, input ast.Value) (*ast.Term, error) {
	cancel, stop := cancelWith(ctx)
	defer stop()
	rs, err := query.Eval(ctx,
		rego.EvalParsedInput(input),
		rego.EvalExternalCancel(cancel),
	)
	if err != nil {
		return nil, fmt.Errorf("evaluate policy: %w", err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return nil, errors.New("evaluate policy: the decision is undefined")
	}
	term, ok := rs[0].Expressions[0].Value.(*ast.Term)
	if !ok {
		return nil, fmt.Errorf("evaluate policy: unexpected result %T", rs[0].Expressions[0].Value)
	}
	return term, nil
}

// cancelWith returns a Rego cancel that fires when ctx ends (its deadline
// passes or the client goes away), and stop, which releases it once the
// evaluation is over. A cancelled evaluation ends with an error, which a
// decision turns into a deny. context.AfterFunc registers the cancel with
// ctx, where the rego package would otherwise start a goroutine per
// evaluation to watch ctx; a context that can never end costs nothing.
func cancelWith(ctx context.Context) (topdown.Cancel, func() bool) {
	cancel := topdown.NewCancel()
	if ctx.Done() == nil {
		return cancel, noStop
	}
	return cancel, context.AfterFunc(ctx, cancel.Cancel)
}

func noStop() bool { return false }

// keepAST hands the evaluated term back as is, so the engine reads the
// decision straight from the AST without a JSON round trip.
func keepAST(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }

var reservedPath = ast.MustParseRef("data." + policy.Package)

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
