package decision

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/loader/store"
)

// PlanRequest asks what a list request may return (POST /v1/plan).
type PlanRequest struct {
	Tenant      string       `json:"tenant,omitempty"`
	Key         string       `json:"key,omitempty"`
	Member      string       `json:"member,omitempty"`
	Application string       `json:"application,omitempty"`
	Request     *HTTPRequest `json:"request,omitempty"`
	Action      string       `json:"action,omitempty"`
	Context     any          `json:"context,omitempty"`
	// Model, "<app>:<model>" as in frn:finmars:<app>:<model>:<user_code>,
	// names what is listed: only FRNs of that model then shape the filter.
	// Without it, user codes from every model's FRNs are included, which is
	// only exact when user codes are unique across models.
	Model string `json:"model,omitempty"`
}

// Plan tells a service how to filter a list query so that it returns
// exactly the objects /v1/decide would allow.
//
// Kind "all": no filter; "none": nothing; "some": an object passes when it
// matches any criterion of Filter and no criterion of Exclude. Criteria:
// owner (the object's owner), user_codes (exact, lower case),
// user_code_prefixes, user_code_patterns (globs with "*"), resource_groups
// and resource_group_patterns. Resource groups the bundle assigns objects to
// are also expanded into those objects' user codes, so a service that does
// not track groups can filter by user code alone.
type Plan struct {
	DecisionID string            `json:"decision_id"`
	Kind       string            `json:"kind"`
	Tenant     string            `json:"tenant"`
	Action     string            `json:"action,omitempty"`
	Filter     map[string]any    `json:"filter,omitempty"`
	Exclude    map[string]any    `json:"exclude,omitempty"`
	Reasons    []Reason          `json:"reasons"`
	Revision   map[string]string `json:"revision"`
}

// Plan answers a list plan. Errors other than an *InputError become a plan
// of kind "none" with the reason error.internal.
func (e *Engine) Plan(ctx context.Context, pr *PlanRequest) (*Plan, error) {
	req := &Request{Tenant: pr.Tenant, Key: pr.Key, Member: pr.Member, Application: pr.Application,
		Request: pr.Request, Action: pr.Action, Context: pr.Context}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	modelPrefix := ""
	if pr.Model != "" {
		app, model, ok := strings.Cut(pr.Model, ":")
		if !ok || app == "" || model == "" || strings.ContainsAny(model, ":*") || strings.Contains(app, "*") {
			return nil, &InputError{Field: "model", Message: fmt.Sprintf("%q must be <app>:<model>, e.g. portfolios:portfolio", pr.Model)}
		}
		modelPrefix = strings.ToLower("frn:finmars:" + pr.Model + ":")
	}
	gen := e.current.Load()
	if gen == nil {
		return e.failClosedPlan(req, nil, ErrNotReady), nil
	}
	p, err := e.plan(ctx, gen, req, modelPrefix)
	if err != nil {
		return e.failClosedPlan(req, gen, err), nil
	}
	return p, nil
}

func (e *Engine) plan(ctx context.Context, gen *Generation, req *Request, modelPrefix string) (p *Plan, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic during plan: %v", v)
		}
	}()
	r := gen.Facts.Read()
	var f facts
	if err := f.gather(r, gen.State, req); err != nil {
		return nil, err
	}
	if modelPrefix != "" {
		f.input.(ast.Object).Insert(ast.StringTerm("plan"), ast.ObjectTerm(
			ast.Item(ast.StringTerm("model_prefix"), ast.StringTerm(modelPrefix))))
	}
	term, err := gen.Policy.EvalPlan(ctx, f.input)
	if err != nil {
		return nil, err
	}
	mf := messageFactsOf(req, &f)
	p, err = planFromAST(term.Value, &mf)
	if err != nil {
		return nil, err
	}
	if p.Kind == "some" {
		tenant, err := r.Tenant(f.tenantCode)
		if err != nil {
			return nil, err
		}
		expandGroups(tenant, p.Filter, modelPrefix)
		expandGroups(tenant, p.Exclude, modelPrefix)
		if len(p.Exclude) == 0 {
			p.Exclude = nil
		}
	}
	p.DecisionID = e.newID()
	p.Tenant = f.tenantCode
	p.Action = f.action
	p.Revision = gen.Revisions
	return p, nil
}

func (e *Engine) failClosedPlan(req *Request, gen *Generation, err error) *Plan {
	d := e.failClosed(req, gen, err)
	return &Plan{DecisionID: d.DecisionID, Kind: "none", Tenant: d.Tenant, Action: d.Action, Reasons: d.Reasons, Revision: d.Revision}
}

// expandGroups adds the user codes of the objects the bundle assigns to the
// criteria's resource groups, literal or matching a pattern (of the listed
// model, when known).
func expandGroups(tenant *store.TenantRecord, criteria map[string]any, modelPrefix string) {
	if tenant == nil || criteria == nil {
		return
	}
	groups, _ := criteria["resource_groups"].([]string)
	patterns, _ := criteria["resource_group_patterns"].([]string)
	if len(groups) == 0 && len(patterns) == 0 {
		return
	}
	codes := map[string]struct{}{}
	if existing, ok := criteria["user_codes"].([]string); ok {
		for _, c := range existing {
			codes[c] = struct{}{}
		}
	}
	for code, rg := range tenant.Tenant.ResourceGroups {
		if !slices.ContainsFunc(groups, func(g string) bool { return strings.EqualFold(code, g) }) &&
			!slices.ContainsFunc(patterns, func(p string) bool { return starMatch(strings.ToLower(p), strings.ToLower(code)) }) {
			continue
		}
		for _, frn := range rg.Assignments {
			if modelPrefix != "" && !strings.HasPrefix(frn, modelPrefix) {
				continue
			}
			if f, err := acl.ParseFRN(frn); err == nil {
				codes[strings.ToLower(f.UserCode)] = struct{}{}
			}
		}
	}
	if len(codes) == 0 {
		return
	}
	list := make([]string, 0, len(codes))
	for c := range codes {
		list = append(list, c)
	}
	sort.Strings(list)
	criteria["user_codes"] = list
}

func planFromAST(v ast.Value, mf *messageFacts) (*Plan, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, fmt.Errorf("plan is %T, not an object", v)
	}
	p := &Plan{}
	var err error
	if p.Kind, err = stringField(obj, "kind"); err != nil {
		return nil, err
	}
	switch p.Kind {
	case "all", "none", "some":
	default:
		return nil, fmt.Errorf("plan kind %q is not all, none or some", p.Kind)
	}
	if p.Filter, err = criteriaFromAST(obj, "filter"); err != nil {
		return nil, err
	}
	if p.Exclude, err = criteriaFromAST(obj, "exclude"); err != nil {
		return nil, err
	}
	reasons, ok := obj.Get(keyTerm("reasons")).Value.(*ast.Array)
	if !ok {
		return nil, fmt.Errorf("plan.reasons is not an array")
	}
	if p.Reasons, err = reasonsFromAST(reasons, mf); err != nil {
		return nil, fmt.Errorf("plan.%w", err)
	}
	return p, nil
}

// criteriaFromAST reads a filter or exclusion: string lists, the owner
// string and the boolean "all".
func criteriaFromAST(obj ast.Object, key string) (map[string]any, error) {
	t := obj.Get(keyTerm(key))
	if t == nil {
		return nil, nil
	}
	c, ok := t.Value.(ast.Object)
	if !ok {
		return nil, fmt.Errorf("plan.%s is not an object", key)
	}
	out := make(map[string]any, c.Len())
	err := c.Iter(func(k, v *ast.Term) error {
		name, ok := k.Value.(ast.String)
		if !ok {
			return fmt.Errorf("plan.%s has a non-string key", key)
		}
		switch val := v.Value.(type) {
		case ast.String:
			out[string(name)] = string(val)
		case ast.Boolean:
			out[string(name)] = bool(val)
		case *ast.Array:
			list := make([]string, 0, val.Len())
			for i := 0; i < val.Len(); i++ {
				s, ok := val.Elem(i).Value.(ast.String)
				if !ok {
					return fmt.Errorf("plan.%s.%s[%d] is not a string", key, name, i)
				}
				list = append(list, string(s))
			}
			out[string(name)] = list
		default:
			return fmt.Errorf("plan.%s.%s has an unexpected type", key, name)
		}
		return nil
	})
	return out, err
}

// starMatch reports whether s matches pattern, a plan's pattern in which
// "*" matches any run of characters (none included) and every other
// character stands for itself (the statement's text, see plan.rego).
func starMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}
