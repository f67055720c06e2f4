package decision

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
)

// WithDecisionCache turns the decision cache on: a generation answers a
// request it answered in the last TTL from memory (with a new decision_id).
func WithDecisionCache(o CacheOptions) EngineOption {
	return func(e *Engine) { e.cacheOpt = o }
}

// CacheOptions configures the decision cache.
type CacheOptions struct {
	// Size bounds the cached decisions; 0 turns the cache off.
	Size int
	// TTL bounds how long a decision is reused, for rules that read the
	// clock (time-based conditions). 0 means one second. A decision that
	// read a time-bound fact (a key's expiry) is never reused past it.
	TTL time.Duration
}

const cacheShards = 32

// decisionCache remembers recent decisions of one generation, keyed by the
// normalised request. A new generation starts with an empty cache, so any
// change (a reload, a registration) invalidates every entry at once.
type decisionCache struct {
	ttl    time.Duration
	perCap int
	shards [cacheShards]cacheShard
	now    func() time.Time
}

type cacheShard struct {
	mu      sync.Mutex
	entries map[uint64]cacheEntry
}

type cacheEntry struct {
	key      string // the full key: a hash collision must never match
	decision *Decision
	// req is set on entries keyed by a request body (putBody): the
	// request the body parsed to, for the observer.
	req *Request
	// expires is the first instant the entry is stale (unix nanoseconds):
	// the TTL's end, or earlier when a fact the decision read stops
	// holding then.
	expires int64
}

func newDecisionCache(o CacheOptions) *decisionCache {
	if o.Size <= 0 {
		return nil
	}
	if o.TTL <= 0 {
		o.TTL = time.Second
	}
	c := &decisionCache{ttl: o.TTL, perCap: max(1, o.Size/cacheShards), now: time.Now}
	for i := range c.shards {
		c.shards[i].entries = make(map[uint64]cacheEntry, min(c.perCap, 1024))
	}
	return c
}

// get returns the cached decision for key, or nil.
func (c *decisionCache) get(key string) *Decision {
	h := xxhash.Sum64String(key)
	s := &c.shards[h%cacheShards]
	s.mu.Lock()
	e, ok := s.entries[h]
	s.mu.Unlock()
	if !ok || e.req != nil || e.key != key || c.now().UnixNano() >= e.expires {
		return nil
	}
	return e.decision
}

// getBody returns the decision cached for a request body, byte for byte,
// and the request it parsed to; nil if there is none.
func (c *decisionCache) getBody(body []byte) (*Decision, *Request) {
	h := xxhash.Sum64(body)
	s := &c.shards[h%cacheShards]
	s.mu.Lock()
	e, ok := s.entries[h]
	s.mu.Unlock()
	if !ok || e.req == nil || e.key != string(body) || c.now().UnixNano() >= e.expires {
		return nil, nil
	}
	return e.decision, e.req
}

// putBody remembers d, decided for req, under the request body it was
// parsed from. Body entries share the cache's bound with the others.
func (c *decisionCache) putBody(body []byte, req *Request, d *Decision) {
	c.store(xxhash.Sum64(body), cacheEntry{key: string(body), decision: d, req: req})
}

// put remembers d under key, evicting an arbitrary entry when the shard is
// full (map iteration order is random enough for a cache of hot keys).
func (c *decisionCache) put(key string, d *Decision) {
	c.store(xxhash.Sum64String(key), cacheEntry{key: key, decision: d})
}

func (c *decisionCache) store(h uint64, e cacheEntry) {
	now := c.now()
	e.expires = now.Add(c.ttl).UnixNano()
	if until := e.decision.expires; until != 0 && until < e.expires {
		e.expires = until
	}
	if e.expires <= now.UnixNano() {
		// Stale already: a fact it read (a key) has expired.
		return
	}
	s := &c.shards[h%cacheShards]
	s.mu.Lock()
	if _, exists := s.entries[h]; !exists && len(s.entries) >= c.perCap {
		for victim := range s.entries {
			delete(s.entries, victim)
			break
		}
	}
	s.entries[h] = e
	s.mu.Unlock()
}

// cacheKey normalises a validated request into a key; ok is false when
// the request cannot be keyed (its context does not encode). The key is a
// sequence of length-prefixed fields ("5:hello") and one-letter markers,
// so two different requests cannot make the same key.
func cacheKey(r *Request) (key string, ok bool) {
	var b strings.Builder
	b.Grow(128)
	field := func(s string) {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	field(r.Tenant)
	field(r.Key)
	field(r.Member)
	field(r.Application)
	field(r.Action)
	if hr := r.Request; hr != nil {
		b.WriteByte('R')
		field(hr.Service)
		field(hr.Method)
		field(hr.Path)
	}
	if res := r.Resource; res != nil {
		b.WriteByte('O')
		field(res.FRN)
		field(res.Owner)
		// The count is a field too: a bare "1" followed by "217:…" would
		// read the same as "12" followed by "17:…".
		field(strconv.Itoa(len(res.ResourceGroups)))
		for _, g := range res.ResourceGroups {
			field(g)
		}
		if res.Reference {
			b.WriteByte('r')
		}
	}
	if r.Context != nil {
		// encoding/json writes map keys sorted: equal contexts encode alike.
		ctx, err := json.Marshal(r.Context)
		if err != nil {
			return "", false
		}
		b.WriteByte('C')
		field(string(ctx))
	}
	return b.String(), true
}

// reuse returns a cached decision as a new one: the same answer with its
// own decision_id.
func reuse(d *Decision, id string) *Decision {
	c := *d
	c.DecisionID = id
	return &c
}
