package decision

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/loader/generation"
	"github.com/verdict-authz/verdict/loader/store"

	policy "github.com/verdict-authz/verdict/rego"
)

func TestCacheKeyDistinguishesEveryField(t *testing.T) {
	base := Request{Tenant: "bank", Member: "user_a", Action: "finmars:Portfolio:list",
		Request:  &HTTPRequest{Service: "s", Method: "GET", Path: "/p/"},
		Resource: &Resource{FRN: "frn:finmars:a:b:c", Owner: "o", ResourceGroups: []string{"g"}, Reference: true},
		Context:  map[string]any{"hour": 9}}
	variants := map[string]func(r *Request){
		"tenant":      func(r *Request) { r.Tenant = "bank2" },
		"key":         func(r *Request) { r.Key = "k" },
		"member":      func(r *Request) { r.Member = "user_b" },
		"application": func(r *Request) { r.Application = "app" },
		"action":      func(r *Request) { r.Action = "finmars:Portfolio:retrieve" },
		"service":     func(r *Request) { r.Request = &HTTPRequest{Service: "t", Method: "GET", Path: "/p/"} },
		"method":      func(r *Request) { r.Request = &HTTPRequest{Service: "s", Method: "POST", Path: "/p/"} },
		"path":        func(r *Request) { r.Request = &HTTPRequest{Service: "s", Method: "GET", Path: "/q/"} },
		"no request":  func(r *Request) { r.Request = nil },
		"frn": func(r *Request) {
			r.Resource = &Resource{FRN: "frn:finmars:a:b:d", Owner: "o", ResourceGroups: []string{"g"}, Reference: true}
		},
		"owner": func(r *Request) {
			r.Resource = &Resource{FRN: "frn:finmars:a:b:c", Owner: "p", ResourceGroups: []string{"g"}, Reference: true}
		},
		"groups": func(r *Request) {
			r.Resource = &Resource{FRN: "frn:finmars:a:b:c", Owner: "o", ResourceGroups: []string{"g", "h"}, Reference: true}
		},
		"reference": func(r *Request) {
			r.Resource = &Resource{FRN: "frn:finmars:a:b:c", Owner: "o", ResourceGroups: []string{"g"}}
		},
		"no resource": func(r *Request) { r.Resource = nil },
		"context":     func(r *Request) { r.Context = map[string]any{"hour": 10} },
		"no context":  func(r *Request) { r.Context = nil },
		// Field boundaries: "ab"+"c" must not equal "a"+"bc".
		"boundary": func(r *Request) { r.Tenant, r.Member = "bankuser_a", "" },
	}
	k0, ok := cacheKey(&base)
	if !ok {
		t.Fatal("base request not keyable")
	}
	seen := map[string]string{k0: "base"}
	for name, mutate := range variants {
		r := base
		mutate(&r)
		k, ok := cacheKey(&r)
		if !ok {
			t.Fatalf("%s: not keyable", name)
		}
		if other, dup := seen[k]; dup {
			t.Errorf("%s has the same key as %s", name, other)
		}
		seen[k] = name
	}
	// Group counts: twelve groups, the first 17 bytes long, against one
	// group of 217 bytes spelling the twelve's encoding ("12"+"17:…" and
	// "1"+"217:…" read alike unless the count is delimited).
	twelve := []string{strings.Repeat("a", 17)}
	for i := 0; i < 10; i++ {
		twelve = append(twelve, strings.Repeat("b", 16))
	}
	twelve = append(twelve, strings.Repeat("c", 8))
	spelled := twelve[0]
	for _, g := range twelve[1:] {
		spelled += strconv.Itoa(len(g)) + ":" + g
	}
	if len(spelled) != 217 {
		t.Fatalf("the colliding group is %d bytes, want 217", len(spelled))
	}
	for name, groups := range map[string][]string{"twelve groups": twelve, "one group spelling twelve": {spelled}} {
		r := base
		r.Resource = &Resource{FRN: "frn:finmars:a:b:c", ResourceGroups: groups}
		k, _ := cacheKey(&r)
		if other, dup := seen[k]; dup {
			t.Errorf("%s has the same key as %s", name, other)
		}
		seen[k] = name
	}
	same := base
	same.Context = map[string]any{"hour": 9}
	if k, _ := cacheKey(&same); k != k0 {
		t.Error("equal requests have different keys")
	}
}

func TestCacheTTLBoundAndCollisions(t *testing.T) {
	now := time.Unix(0, 0)
	c := newDecisionCache(CacheOptions{Size: cacheShards * 2, TTL: time.Second})
	c.now = func() time.Time { return now }
	d := &Decision{Allow: true}
	c.put("a", d)
	if c.get("a") != d {
		t.Fatal("miss right after put")
	}
	now = now.Add(time.Second)
	if c.get("a") != nil {
		t.Error("an entry outlived its TTL")
	}
	for i := 0; i < 10*cacheShards; i++ {
		c.put(fmt.Sprint(i), d)
	}
	total := 0
	for i := range c.shards {
		total += len(c.shards[i].entries)
	}
	if total > 2*cacheShards {
		t.Errorf("%d entries, bound is %d", total, 2*cacheShards)
	}
	// An entry stored under the same hash for another key (a collision)
	// must not answer: the full key is compared.
	now = now.Add(-time.Second)
	c.put("x", d)
	for i := range c.shards {
		for h, e := range c.shards[i].entries {
			if e.key == "x" {
				e.key = "y"
				c.shards[i].entries[h] = e
			}
		}
	}
	if c.get("x") != nil {
		t.Error("a hash collision answered with another request's decision")
	}
	if newDecisionCache(CacheOptions{}) != nil {
		t.Error("size 0 must turn the cache off")
	}
}

func TestEngineCacheAnswersAgainWithNewIDsAndEmptiesOnInstall(t *testing.T) {
	engine := NewEngine(nil, WithDecisionCache(CacheOptions{Size: 100, TTL: time.Minute}))
	pol, err := policy.CompilePolicy(t.Context(), nil, map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	install := func() *Generation {
		engine.Install(&generation.Generation{Number: 1, Facts: emptySnapshot(t), Policy: pol, Revisions: map[string]string{}})
		return engine.Current()
	}
	g := install()
	req := func() *Request { return &Request{Tenant: "nope", Action: "finmars:Portfolio:list"} }
	first, _ := engine.Decide(t.Context(), req())
	second, _ := engine.Decide(t.Context(), req())
	if first.DecisionID == second.DecisionID {
		t.Error("a cached decision reused the decision_id")
	}
	if first.Allow != second.Allow || first.Status != second.Status || len(second.Reasons) != 1 {
		t.Errorf("cached answer differs: %+v vs %+v", first, second)
	}
	k, _ := cacheKey(req())
	if g.cache.get(k) == nil {
		t.Fatal("the decision was not cached")
	}
	g2 := install()
	if g2.cache == nil || g2.cache.get(k) != nil {
		t.Error("a new generation must start with an empty cache")
	}
}

// emptySnapshot is a store with nothing in it.
func emptySnapshot(t *testing.T) *store.Snapshot {
	t.Helper()
	st, err := store.New()
	if err != nil {
		t.Fatal(err)
	}
	return st.Snapshot()
}

// A generation whose snapshot is missing must deny, not crash the caller:
// the store is read under the engine's recover (single, batch and explain).
func TestBrokenGenerationDeniesInsteadOfPanicking(t *testing.T) {
	engine := NewEngine(nil)
	pol, err := policy.CompilePolicy(t.Context(), nil, map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	engine.Install(&generation.Generation{Number: 1, Policy: pol})
	req := func() *Request { return &Request{Tenant: "bank", Member: "m", Action: "finmars:Portfolio:list"} }
	d, err := engine.Decide(t.Context(), req())
	if err != nil || d.Allow || d.Reasons[0].Code != "error.internal" {
		t.Fatalf("Decide = %+v, %v; want a deny with error.internal", d, err)
	}
	b, err := engine.DecideBatch(t.Context(), &BatchRequest{Tenant: "bank", Items: []BatchItem{{Action: "finmars:Portfolio:list"}}})
	if err != nil || b.Results[0].Allow || b.Results[0].Reasons[0].Code != "error.internal" {
		t.Fatalf("DecideBatch = %+v, %v", b, err)
	}
	d, _, err = engine.DecideExplained(t.Context(), req())
	if err != nil || d.Allow {
		t.Fatalf("DecideExplained = %+v, %v", d, err)
	}
}

// cacheRecorder remembers what the decision cache did for each decision.
type cacheRecorder struct{ results []CacheResult }

func (r *cacheRecorder) ObserveDecision(_ context.Context, _ *Request, _ *Decision, info DecisionInfo) {
	r.results = append(r.results, info.Cache)
}

func TestObserverLearnsCacheHitsAndMisses(t *testing.T) {
	pol, err := policy.CompilePolicy(t.Context(), nil, map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	req := func() *Request { return &Request{Tenant: "nope", Action: "finmars:Portfolio:list"} }
	for _, tc := range []struct {
		name  string
		cache bool
		want  []CacheResult
	}{
		{"cache on: miss, hit, explained (not asked)", true, []CacheResult{CacheMiss, CacheHit, ""}},
		{"cache off: never asked", false, []CacheResult{"", "", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &cacheRecorder{}
			opts := []EngineOption{WithObserver(rec)}
			if tc.cache {
				opts = append(opts, WithDecisionCache(CacheOptions{Size: 100, TTL: time.Minute}))
			}
			engine := NewEngine(nil, opts...)
			engine.Install(&generation.Generation{Number: 1, Facts: emptySnapshot(t), Policy: pol, Revisions: map[string]string{}})
			for range 2 {
				if _, err := engine.Decide(t.Context(), req()); err != nil {
					t.Fatal(err)
				}
			}
			if _, _, err := engine.DecideExplained(t.Context(), req()); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(rec.results) != fmt.Sprint(tc.want) {
				t.Errorf("cache results %q, want %q", rec.results, tc.want)
			}
		})
	}
}

// A decision answered from the cache under its normalised key is not
// remembered again under a new body: that would let it outlive its TTL.
func TestDecideJSONKeepsTheTTLOfTheEvaluation(t *testing.T) {
	pol, err := policy.CompilePolicy(t.Context(), nil, map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &cacheRecorder{}
	engine := NewEngine(nil, WithObserver(rec), WithDecisionCache(CacheOptions{Size: 100, TTL: time.Second}))
	engine.Install(&generation.Generation{Number: 1, Facts: emptySnapshot(t), Policy: pol, Revisions: map[string]string{}})
	gen := engine.Current()
	now := time.Unix(0, 0)
	gen.cache.now = func() time.Time { return now }
	parse := func(b []byte) (*Request, error) {
		var r Request
		return &r, json.Unmarshal(b, &r)
	}
	decide := func(body string) {
		t.Helper()
		if _, err := engine.DecideJSON(t.Context(), []byte(body), parse); err != nil {
			t.Fatal(err)
		}
	}
	decide(`{"tenant":"nope","action":"finmars:Portfolio:list"}`) // evaluated at 0
	now = now.Add(900 * time.Millisecond)
	decide(`{"action":"finmars:Portfolio:list","tenant":"nope"}`) // same request, other bytes: a hit
	now = now.Add(600 * time.Millisecond)
	decide(`{"action":"finmars:Portfolio:list","tenant":"nope"}`) // 1.5 s after the evaluation
	want := []CacheResult{CacheMiss, CacheHit, CacheMiss}
	if fmt.Sprint(rec.results) != fmt.Sprint(want) {
		t.Errorf("cache results %q, want %q (an answer outlived its TTL)", rec.results, want)
	}
}

// usage counts c's entries and sums their costs, checking each shard's
// running total against that sum.
func (c *decisionCache) usage(t *testing.T) (entries int, bytes int64) {
	t.Helper()
	for i := range c.shards {
		s := &c.shards[i]
		var sum int64
		for _, e := range s.entries {
			sum += e.cost
		}
		if sum != s.bytes {
			t.Fatalf("shard %d counts %d bytes, its entries cost %d", i, s.bytes, sum)
		}
		if s.bytes > c.perBytes || len(s.entries) > c.perCap {
			t.Fatalf("shard %d holds %d entries, %d bytes; bounds %d, %d", i, len(s.entries), s.bytes, c.perCap, c.perBytes)
		}
		entries += len(s.entries)
		bytes += s.bytes
	}
	return entries, bytes
}

// The cache is bounded in bytes as well as in entries: 10 KB entries under
// a 1 MiB bound never add up to more than it, however loose the entry
// bound; a key or body over MaxCachedRequestBytes is never stored; an entry
// is charged for its key, its decision and its parsed request.
func TestCacheBoundedInBytes(t *testing.T) {
	const maxBytes = 1 << 20
	c := newDecisionCache(CacheOptions{Size: 1 << 20, MaxBytes: maxBytes, TTL: time.Hour})
	d := &Decision{Allow: true, Tenant: "bank", Visibility: "full", Fields: []string{"id"},
		Reasons: []Reason{{Layer: "iam", Code: "iam.allow", Effect: "allow", Message: strings.Repeat("m", 500)}}}
	d.cached = &cachedForm{encodedRest: encodeRest(d)}
	pad := strings.Repeat("k", 10<<10)
	for i := range 2000 {
		key := fmt.Sprintf("%05d%s", i, pad)
		if i%2 == 0 {
			c.put(key, d)
		} else {
			c.putBody([]byte(key), &Request{Tenant: "bank", Context: map[string]any{"pad": pad[:2<<10]}}, d)
		}
	}
	entries, bytes := c.usage(t)
	if bytes > maxBytes {
		t.Errorf("%d entries take %d bytes, over the bound of %d", entries, bytes, maxBytes)
	}
	if entries < 40 {
		t.Errorf("only %d entries of about 13 KB kept under %d bytes", entries, maxBytes)
	}

	big := strings.Repeat("b", MaxCachedRequestBytes+1)
	c.put(big, d)
	c.putBody([]byte(big), &Request{Tenant: "bank"}, d)
	if c.get(big) != nil {
		t.Error("a key over MaxCachedRequestBytes was cached")
	}
	if hit, _ := c.getBody([]byte(big)); hit != nil {
		t.Error("a body over MaxCachedRequestBytes was cached")
	}
	fits := strings.Repeat("f", MaxCachedRequestBytes)
	c.put(fits, d)
	if c.get(fits) == nil {
		t.Error("a key of MaxCachedRequestBytes was not cached")
	}

	// What an entry is charged for.
	bare := entryCost(cacheEntry{key: "k", decision: d})
	if bare < int64(len(d.cached.encodedRest)+500) {
		t.Errorf("a decision with a %d-byte encoding and a 500-byte message costs %d", len(d.cached.encodedRest), bare)
	}
	if got := entryCost(cacheEntry{key: pad, decision: d}) - bare; got < int64(len(pad)-1) {
		t.Errorf("a key %d bytes longer costs only %d more", len(pad)-1, got)
	}
	numbers := make([]any, 1000)
	for i := range numbers {
		numbers[i] = float64(i)
	}
	withBody := entryCost(cacheEntry{key: "k", decision: d, req: &Request{Tenant: "bank", Context: map[string]any{"n": numbers}}})
	if withBody-bare < 1000*24 {
		t.Errorf("a parsed request holding 1,000 numbers costs %d", withBody-bare)
	}
}
