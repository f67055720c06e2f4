package decision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/verdict-authz/verdict/loader/generation"
	"github.com/verdict-authz/verdict/loader/route"
	"github.com/verdict-authz/verdict/loader/store"
)

// Generation is a generation as an engine serves it: what the loader built
// (facts, policy, revisions, state; embedded by value, so reading a field
// costs what it did before) and the engine's own decision cache for it.
type Generation struct {
	generation.Generation
	// cache holds this generation's recent decisions (nil: off). It is set
	// by Engine.Install, so a new generation always starts empty.
	cache *decisionCache
}

// StateInfo says where a generation's run-time facts stand in the state
// shared by a fleet (see generation.StateInfo).
type StateInfo = generation.StateInfo

// StateWaiter catches up with the shared run-time state until it has
// applied a revision (see generation.StateWaiter).
type StateWaiter = generation.StateWaiter

// SetStateWaiter makes requests that carry a consistency revision wait for
// it through w.
func (e *Engine) SetStateWaiter(w StateWaiter) { e.waiter.Store(&w) }

// generationFor is the current generation, after catching up with the
// shared state when the request asks for a newer revision than it has.
func (e *Engine) generationFor(ctx context.Context, c *Consistency) *Generation {
	gen := e.current.Load()
	if c == nil || gen == nil || gen.State.Revision >= c.AtLeast {
		return gen
	}
	if w := e.waiter.Load(); w != nil {
		(*w).WaitForState(ctx, c.AtLeast)
		gen = e.current.Load()
	}
	return gen
}

// ErrNotReady is returned while no generation is installed.
var ErrNotReady = errors.New("no bundle is loaded yet")

// Engine makes decisions against the current generation.
type Engine struct {
	current  atomic.Pointer[Generation]
	log      *slog.Logger
	newID    func() string
	observer Observer // nil: no instrumentation at all
	cacheOpt CacheOptions
	waiter   atomic.Pointer[StateWaiter]
}

// enableUUIDPool makes decision ids come from a pool of random bytes
// (one read of the system's random source per 16 ids). The uuid package's
// switch is a plain global: it is set once, so that engines made at the same
// time (tests, tools) do not race on it.
var enableUUIDPool = sync.OnceFunc(uuid.EnableRandPool)

// NewEngine returns an engine with no generation installed.
func NewEngine(log *slog.Logger, opts ...EngineOption) *Engine {
	if log == nil {
		log = slog.Default()
	}
	enableUUIDPool()
	e := &Engine{log: log, newID: uuid.NewString}
	for _, o := range opts {
		o(e)
	}
	return e
}

// Install makes g the generation every new decision uses, with an empty
// decision cache when the cache is on. The engine serves its own copy of g.
func (e *Engine) Install(g *generation.Generation) {
	e.current.Store(&Generation{Generation: *g, cache: newDecisionCache(e.cacheOpt)})
}

// Current returns the installed generation, or nil.
func (e *Engine) Current() *Generation { return e.current.Load() }

// Decide answers one request. The error is non-nil only for a malformed
// request (an *InputError); every other failure is a deny with the reason
// error.internal.
func (e *Engine) Decide(ctx context.Context, req *Request) (*Decision, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	return e.decideOrFail(ctx, e.generationFor(ctx, req.Consistency), req, nil), nil
}

// DecideBatch answers every item of a batch against one generation, and so
// one frozen store snapshot, in order.
func (e *Engine) DecideBatch(ctx context.Context, b *BatchRequest) (*BatchResponse, error) {
	reqs, err := b.Requests()
	if err != nil {
		return nil, err
	}
	out := &BatchResponse{Results: make([]*Decision, len(reqs))}
	gen := e.generationFor(ctx, b.Consistency)
	for i, req := range reqs {
		out.Results[i] = e.decideOrFail(ctx, gen, req, nil)
	}
	return out, nil
}

// decideOrFail makes one decision on gen (ErrNotReady when nil), turns an
// error into a deny and reports the decision to the observer. tracer, when
// not nil, records the Rego evaluation (explain=full).
func (e *Engine) decideOrFail(ctx context.Context, gen *Generation, req *Request, tracer topdown.QueryTracer) *Decision {
	d, _ := e.decideReporting(ctx, gen, req, tracer)
	return d
}

// decideReporting is decideOrFail that also says whether the decision was
// evaluated just now and stored in gen's decision cache (a cache miss that
// succeeded), so that it is as fresh as the cache's TTL allows.
func (e *Engine) decideReporting(ctx context.Context, gen *Generation, req *Request, tracer topdown.QueryTracer) (*Decision, bool) {
	var start time.Time
	if e.observer != nil {
		start = time.Now()
	}
	var d *Decision
	var cached CacheResult
	err := ErrNotReady
	if gen != nil {
		d, cached, err = e.decide(ctx, gen, req, tracer)
	}
	if err != nil {
		d = e.failClosed(req, gen, err)
	}
	if e.observer != nil {
		e.observer.ObserveDecision(ctx, req, d, DecisionInfo{Start: start, Duration: time.Since(start), Err: err, Explained: tracer != nil, Cache: cached})
	}
	return d, err == nil && cached == CacheMiss
}

// facts are what Go gathered for one decision.
type facts struct {
	tenantCode string
	action     string
	input      ast.Value
	// keyPackage and packageRoute are what the package layer judged: the
	// key's package and the route whose API it checked (for its message).
	keyPackage   string
	packageRoute *route.Match
	// expires is when the first time-bound fact gathered stops holding
	// (unix nanoseconds; 0: none is time-bound): a decision made on these
	// facts must not be reused from then on (see cachedForm.expires).
	expires int64
}

// holdsUntil records that a gathered fact holds until t (zero: for ever).
func (f *facts) holdsUntil(t time.Time) {
	if t.IsZero() {
		return
	}
	if ns := t.UnixNano(); f.expires == 0 || ns < f.expires {
		f.expires = ns
	}
}

// decide makes one decision on gen and says what the decision cache did.
// The store is read inside it, under the recover: a broken generation is a
// deny, never a crash.
func (e *Engine) decide(ctx context.Context, gen *Generation, req *Request, tracer topdown.QueryTracer) (d *Decision, cached CacheResult, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic during decision: %v", v)
		}
	}()
	var key string
	// A request asking for a state revision is not cached: whether the
	// generation meets it is part of the answer.
	if gen.cache != nil && tracer == nil && req.Consistency == nil {
		var ok bool
		if key, ok = cacheKey(req); ok {
			if hit := gen.cache.get(key); hit != nil {
				return reuse(hit, e.newID()), CacheHit, nil
			}
			cached = CacheMiss
		}
	}
	var f facts
	if err = f.gather(gen.Facts.Read(), gen.State, req); err != nil {
		return nil, cached, err
	}
	var term *ast.Term
	if tracer == nil {
		term, err = gen.Policy.Eval(ctx, f.input)
	} else {
		term, err = gen.Policy.EvalTraced(ctx, f.input, tracer)
	}
	if err != nil {
		return nil, cached, err
	}
	mf := messageFactsOf(req, &f)
	d, err = decisionFromAST(term.Value, &mf)
	if err != nil {
		return nil, cached, err
	}
	d.DecisionID = e.newID()
	d.Tenant = f.tenantCode
	d.Action = f.action
	d.Revision = gen.Revisions
	d.StateRevision = gen.State.Revision
	if key != "" {
		d.cached = &cachedForm{encodedRest: encodeRest(d), expires: f.expires}
		gen.cache.put(key, d)
	}
	return d, cached, nil
}

// failClosed turns an internal error into a deny.
func (e *Engine) failClosed(req *Request, gen *Generation, err error) *Decision {
	id := e.newID()
	e.log.Error("decision failed; denying", "decision_id", id, "tenant", req.Tenant, "error", err)
	d := &Decision{
		DecisionID: id,
		Allow:      false,
		Status:     403,
		Tenant:     req.Tenant,
		Action:     req.Action,
		Visibility: "none",
		Fields:     []string{},
		Reasons: []Reason{{
			Layer:   "engine",
			Code:    "error.internal",
			Effect:  "deny",
			Message: "The decision could not be made: " + err.Error(),
		}},
		Revision: map[string]string{},
	}
	if gen != nil {
		d.Revision = gen.Revisions
		d.StateRevision = gen.State.Revision
	}
	return d
}

// Pre-built keys of the input document.
var (
	keyTenant            = ast.StringTerm("tenant")
	keyMember            = ast.StringTerm("member")
	keyApplication       = ast.StringTerm("application")
	keyAction            = ast.StringTerm("action")
	keyRequest           = ast.StringTerm("request")
	keyResource          = ast.StringTerm("resource")
	keyContext           = ast.StringTerm("context")
	keyFacts             = ast.StringTerm("facts")
	keyService           = ast.StringTerm("service")
	keyMethod            = ast.StringTerm("method")
	keyPath              = ast.StringTerm("path")
	keyFRN               = ast.StringTerm("frn")
	keyOwner             = ast.StringTerm("owner")
	keyResourceGroups    = ast.StringTerm("resource_groups")
	keyReference         = ast.StringTerm("reference")
	keyGroups            = ast.StringTerm("groups")
	keyRoute             = ast.StringTerm("route")
	keyPackageRoute      = ast.StringTerm("package_route")
	keyStatements        = ast.StringTerm("statements")
	keyStatementsMatched = ast.StringTerm("statements_matched")
	keyResourcesMatched  = ast.StringTerm("resources_matched")
	keyGetRouteAction    = ast.StringTerm("get_route_action")
	keyActionParts       = ast.StringTerm("action")
	keyName              = ast.StringTerm("name")
	keyCode              = ast.StringTerm("code")
	keyKey               = ast.StringTerm("key")
	keyACL               = ast.StringTerm("acl")
	keyMemberKey         = ast.StringTerm("member_key")
	keyMemberPackage     = ast.StringTerm("member_package")
	keyPackage           = ast.StringTerm("package")
	keyState             = ast.StringTerm("state")
	keyStateRevision     = ast.StringTerm("revision")
	keyStale             = ast.StringTerm("stale")
	keyConsistency       = ast.StringTerm("consistency")
	keyAtLeast           = ast.StringTerm("at_least")
	trueTerm             = ast.BooleanTerm(true)
)

// gather resolves the key, tenant, route, member, statements, ACLs and
// resource groups from the snapshot and builds the Rego input into f (which
// a decision keeps on its stack):
//
//	input = {tenant, member, application, action, request, resource, context,
//	         consistency: {at_least},
//	         facts: {key, tenant, route, action, get_route_action, member,
//	                 statements, statements_matched, resources_matched,
//	                 acl, package_route, resource,
//	                 delegation, state: {revision, stale}}}
//
// statements are those that match the member and the action, each with
// only the resources that cover the object when the request names one
// (resources_matched); acl holds every ACL that may govern the route's
// service (see candidateACLs). facts.delegation is present when the request
// names an application; see delegationFacts. facts.state
// is present in fleet mode (st.Shared): the revision of the shared run-time
// state the facts include, and whether it is stale (not confirmed current
// within --state-max-staleness).
func (f *facts) gather(r *store.Reader, st StateInfo, req *Request) error {
	*f = facts{tenantCode: req.Tenant, action: req.Action}
	// At most 13 facts and 9 input items: both stay on the stack.
	factItems := make([][2]*ast.Term, 0, 13)
	if st.Shared {
		factItems = append(factItems, [2]*ast.Term{keyState, ast.ObjectTerm(
			[2]*ast.Term{keyStateRevision, ast.UIntNumberTerm(st.Revision)},
			[2]*ast.Term{keyStale, ast.BooleanTerm(st.Stale)},
		)})
	}

	// Layer 1: the key names its tenant when the request does not.
	var key *store.KeyRecord
	if req.Key != "" {
		var err error
		if key, err = r.Key(req.Key); err != nil {
			return err
		}
		if key == nil {
			factItems = append(factItems, [2]*ast.Term{keyKey, store.UnknownKeyFacts})
		} else {
			factItems = append(factItems, [2]*ast.Term{keyKey, key.Facts})
			// The only time-bound fact: Rego compares expires_ns with
			// the clock. Nothing else gathered here carries a time.
			f.holdsUntil(key.Expires)
			if f.tenantCode == "" {
				f.tenantCode = key.Tenant
			}
		}
	}
	tenant, err := r.Tenant(f.tenantCode)
	if err != nil {
		return err
	}
	// input.tenant is the tenant's code: the term of its facts when the
	// store knows it (the lookup is exact).
	var tenantTerm *ast.Term
	if tenant != nil {
		factItems = append(factItems, [2]*ast.Term{keyTenant, tenant.Facts})
		tenantTerm = sharedFact(tenant.Facts, keyCode, f.tenantCode)
	} else {
		tenantTerm = ast.StringTerm(f.tenantCode)
	}

	// Layer 2: the route gives the action.
	var match *route.Match
	var routes *route.Table
	scope := store.AllServices
	if req.Request != nil && req.Request.Service != "" {
		scope = req.Request.Service
	}
	if routes, err = r.RouteTable(scope); err != nil {
		return err
	}
	if hr := req.Request; hr != nil {
		if m, ok := routes.Match(hr.Method, hr.Path); ok {
			match = m
			if f.action == "" {
				f.action = m.Action
			}
		}
	}
	// The action in lower case, from the route table when a route maps to it.
	actionLower, byAction, ok := routes.FoldAction(f.action)
	if req.Request == nil && ok {
		match = byAction
	}
	if match != nil {
		factItems = append(factItems, [2]*ast.Term{keyRoute, routes.Facts(match)})
	}
	// input.action and input.facts.action: the route's own terms when the
	// action is spelled as the route spells it.
	var actionTerm *ast.Term
	if f.action != "" {
		var parts *ast.Term
		actionTerm, parts = routes.ActionTerms(match, f.action)
		factItems = append(factItems, [2]*ast.Term{keyActionParts, parts})
	}
	if f.action != "" && routes != nil && routes.IsGetAction(actionLower) {
		factItems = append(factItems, [2]*ast.Term{keyGetRouteAction, trueTerm})
	}

	// Layer 5: the route's permittable groups and the application's
	// delegation entries for them (see delegationFacts).
	if req.Application != "" && tenant != nil {
		d, err := delegationFacts(r, tenant.Code, req.Application, routes.Groups(match))
		if err != nil {
			return err
		}
		factItems = append(factItems, [2]*ast.Term{keyDelegation, d})
	}

	// The requested object, which the statements' resources cover or not.
	var object *store.Object
	if res := req.Resource; res != nil {
		frnLower := strings.ToLower(res.FRN)
		groups, err := objectGroups(r, tenant, res, frnLower)
		if err != nil {
			return err
		}
		object = &store.Object{FRN: frnLower, Groups: groups}
	}

	// Layers 3 and 4: the member, its statements and its ACL overrides.
	var member *store.MemberRecord
	var memberTerm *ast.Term // input.member
	if tenant != nil && req.Member != "" {
		if member, err = r.Member(tenant.Code, req.Member); err != nil {
			return err
		}
		if member != nil {
			memberFacts := member.Facts()
			factItems = append(factItems, [2]*ast.Term{keyMember, memberFacts})
			// The lookup is exact: input.member is the facts' name.
			memberTerm = sharedFact(memberFacts, keyName, req.Member)
			if f.action != "" {
				// Only the statements that match the member and the
				// action, matched as the Rego rule "matching" would,
				// each with only the resources that cover the object
				// as "covers" would (TestGoMatchingAgreesWithRego).
				statements := member.MatchingStatements(actionLower, object)
				factItems = append(factItems,
					[2]*ast.Term{keyStatements, statements.Array},
					[2]*ast.Term{keyStatementsMatched, trueTerm})
				if object != nil && len(statements.Facts) > 0 {
					// (Without a statement there is nothing to
					// narrow: a fact less keeps the facts object
					// small.)
					factItems = append(factItems, [2]*ast.Term{keyResourcesMatched, trueTerm})
				}
			}
		}
	}
	if tenant != nil && key != nil && key.Tenant == tenant.Code && tenant.Tenant.HasCheck("package") {
		if judged := packageRoute(match, byAction, req); judged != nil {
			acls, err := candidateACLs(r, tenant, member, key, req.Key, judged.Service)
			if err != nil {
				return err
			}
			factItems = append(factItems,
				[2]*ast.Term{keyACL, acls},
				[2]*ast.Term{keyPackageRoute, routes.Facts(judged)})
			f.keyPackage, f.packageRoute = key.Package, judged
		}
	}

	items := make([][2]*ast.Term, 0, 9)
	items = append(items, [2]*ast.Term{keyTenant, tenantTerm})
	if req.Member != "" {
		if memberTerm == nil {
			memberTerm = ast.StringTerm(req.Member)
		}
		items = append(items, [2]*ast.Term{keyMember, memberTerm})
	}
	if req.Application != "" {
		items = append(items, [2]*ast.Term{keyApplication, ast.StringTerm(req.Application)})
	}
	if actionTerm != nil {
		items = append(items, [2]*ast.Term{keyAction, actionTerm})
	}
	if hr := req.Request; hr != nil {
		items = append(items, [2]*ast.Term{keyRequest, requestTerm(hr, routes, match)})
	}
	if res := req.Resource; res != nil {
		frnLower := object.FRN
		resFacts := make([][2]*ast.Term, 1, 2)
		resFacts[0] = [2]*ast.Term{keyGroups, store.StringSet(object.Groups)}
		obj := make([][2]*ast.Term, 0, 4)
		if res.FRN != "" {
			frn := ast.StringTerm(res.FRN)
			obj = append(obj, [2]*ast.Term{keyFRN, frn})
			if frnLower != res.FRN {
				frn = ast.StringTerm(frnLower)
			}
			resFacts = append(resFacts, [2]*ast.Term{keyFRN, frn})
		}
		if res.Owner != "" {
			obj = append(obj, [2]*ast.Term{keyOwner, ast.StringTerm(res.Owner)})
		}
		if len(res.ResourceGroups) > 0 {
			gs := make([]*ast.Term, len(res.ResourceGroups))
			for i, g := range res.ResourceGroups {
				gs[i] = ast.StringTerm(g)
			}
			obj = append(obj, [2]*ast.Term{keyResourceGroups, ast.ArrayTerm(gs...)})
		}
		obj = append(obj, [2]*ast.Term{keyReference, ast.InternedTerm(res.Reference)})
		items = append(items, [2]*ast.Term{keyResource, ast.ObjectTerm(obj...)})
		factItems = append(factItems, [2]*ast.Term{keyResource, ast.ObjectTerm(resFacts...)})
	}
	if req.Context != nil {
		c, err := req.contextTerm()
		if err != nil {
			return fmt.Errorf("convert context: %w", err)
		}
		items = append(items, [2]*ast.Term{keyContext, c})
	}
	if c := req.Consistency; c != nil {
		items = append(items, [2]*ast.Term{keyConsistency, ast.ObjectTerm([2]*ast.Term{keyAtLeast, ast.UIntNumberTerm(c.AtLeast)})})
	}
	items = append(items, [2]*ast.Term{keyFacts, ast.ObjectTerm(factItems...)})
	f.input = ast.NewObject(items...)
	return nil
}

// requestTerm is the HTTP request as Rego sees it (input.request): {method,
// path, service?}. The method and service are the matched route's terms when
// they are spelled alike.
func requestTerm(hr *HTTPRequest, routes *route.Table, match *route.Match) *ast.Term {
	var routeFacts *ast.Term
	if match != nil {
		routeFacts = routes.Facts(match)
	}
	obj := make([][2]*ast.Term, 2, 3)
	obj[0] = [2]*ast.Term{keyMethod, sharedFact(routeFacts, keyMethod, hr.Method)}
	obj[1] = [2]*ast.Term{keyPath, ast.StringTerm(hr.Path)}
	if hr.Service != "" {
		obj = append(obj, [2]*ast.Term{keyService, sharedFact(routeFacts, keyService, hr.Service)})
	}
	return ast.ObjectTerm(obj...)
}

// sharedFact is the string s as a term: the one pre-built facts (nil:
// none) hold under key when it is s, so that the input does not build it
// again.
func sharedFact(facts, key *ast.Term, s string) *ast.Term {
	if facts == nil {
		return ast.StringTerm(s)
	}
	if obj, ok := facts.Value.(ast.Object); ok {
		if t := obj.Get(key); t != nil {
			if v, ok := t.Value.(ast.String); ok && string(v) == s {
				return t
			}
		}
	}
	return ast.StringTerm(s)
}

// packageRoute is the route whose API the package layer judges (nil when
// there is none): the action's, as the IAM layer judges the action. For a
// request that names an explicit action besides its HTTP request, that is
// the request's route when it maps to that action, else the first route
// that does, as for an action-only request (the request's route must still
// exist: layer 2 checks match). Otherwise it is match, the route of the
// request or of the action alone.
//
// byAction is the first route that maps to the request's action (gather's
// FoldAction of it).
func packageRoute(match, byAction *route.Match, req *Request) *route.Match {
	if req.Request == nil || req.Action == "" || match == nil || strings.EqualFold(match.Action, req.Action) {
		return match
	}
	return byAction
}

// candidateACLs gathers every ACL that may govern the service, by where it
// comes from: {member_key, member_package, application, package}. Rego picks
// the one that takes precedence.
func candidateACLs(r *store.Reader, tenant *store.TenantRecord, member *store.MemberRecord, key *store.KeyRecord, rawKey, service string) (*ast.Term, error) {
	items := make([][2]*ast.Term, 0, 4)
	if member != nil {
		if t := member.KeyACLs[rawKey][service]; t != nil {
			items = append(items, [2]*ast.Term{keyMemberKey, t})
		}
		if t := member.PackageACLs[key.Package][service]; t != nil {
			items = append(items, [2]*ast.Term{keyMemberPackage, t})
		}
	}
	if t := tenant.ApplicationACLs[key.Application][service]; t != nil {
		items = append(items, [2]*ast.Term{keyApplication, t})
	}
	pkg, err := r.Package(key.Package)
	if err != nil {
		return nil, err
	}
	if pkg != nil {
		if t := pkg.ACL[service]; t != nil {
			items = append(items, [2]*ast.Term{keyPackage, t})
		}
	}
	return ast.ObjectTerm(items...), nil
}

// objectGroups are the (lower-cased) resource groups of the requested
// object: those the tenant's bundle assigns plus those the request names.
// frnLower is the object's FRN in lower case.
func objectGroups(r *store.Reader, tenant *store.TenantRecord, res *Resource, frnLower string) ([]string, error) {
	var assigned []string
	if tenant != nil && frnLower != "" {
		var err error
		if assigned, err = r.ObjectGroups(tenant.Code, frnLower); err != nil {
			return nil, err
		}
	}
	if len(res.ResourceGroups) == 0 {
		return assigned, nil
	}
	groups := make([]string, len(assigned), len(assigned)+len(res.ResourceGroups))
	copy(groups, assigned)
	for _, g := range res.ResourceGroups {
		groups = append(groups, strings.ToLower(g))
	}
	return groups, nil
}
