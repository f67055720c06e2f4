package decision

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/cespare/xxhash/v2"
)

// WithDecisionCache turns the decision cache on: a generation answers a
// request it answered in the last TTL from memory (with a new decision_id).
func WithDecisionCache(o CacheOptions) EngineOption {
	return func(e *Engine) { e.cacheOpt = o }
}

// CacheOptions configures the decision cache.
type CacheOptions struct {
	// Size bounds the cached entries; 0 turns the cache off.
	Size int
	// MaxBytes bounds the memory the entries take, as entryCost estimates
	// it (erring high); 0 means DefaultCacheMaxBytes.
	MaxBytes int64
	// TTL bounds how long a decision is reused, for rules that read the
	// clock (time-based conditions). 0 means one second. A decision that
	// read a time-bound fact (a key's expiry) is never reused past it.
	TTL time.Duration
}

// DefaultCacheMaxBytes is the decision cache's memory bound when
// CacheOptions.MaxBytes is not set.
const DefaultCacheMaxBytes = 64 << 20

// MaxCachedRequestBytes is the largest request the decision cache keeps:
// a POST /v1/decide body, or a normalised request (its context encoded as
// JSON), above it is decided every time and never cached, so that large
// requests neither take the cache's memory nor evict the common ones.
const MaxCachedRequestBytes = 16 << 10

const cacheShards = 32

// cachedForm is what the decision cache keeps beside a decision.
type cachedForm struct {
	// encodedRest is the JSON encoding of everything after decision_id,
	// made once when the decision is cached (see AppendJSON).
	encodedRest []byte
	// expires is when a time-bound fact the decision read stops holding
	// (unix nanoseconds; 0: none did). The cache never reuses the decision
	// from then on, whatever its TTL.
	expires int64
}

// decisionCache remembers recent decisions of one generation, keyed by the
// normalised request. A new generation starts with an empty cache, so any
// change (a reload, a registration) invalidates every entry at once.
type decisionCache struct {
	ttl time.Duration
	// perCap and perBytes bound each shard: a shard's share of Size and
	// of MaxBytes.
	perCap   int
	perBytes int64
	shards   [cacheShards]cacheShard
	now      func() time.Time
}

type cacheShard struct {
	mu      sync.Mutex
	entries map[uint64]cacheEntry
	bytes   int64 // the sum of the entries' costs
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
	cost    int64 // entryCost
}

func newDecisionCache(o CacheOptions) *decisionCache {
	if o.Size <= 0 {
		return nil
	}
	if o.TTL <= 0 {
		o.TTL = time.Second
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultCacheMaxBytes
	}
	c := &decisionCache{ttl: o.TTL, perCap: max(1, o.Size/cacheShards), perBytes: max(1, o.MaxBytes/cacheShards), now: time.Now}
	for i := range c.shards {
		c.shards[i].entries = make(map[uint64]cacheEntry, min(c.perCap, 1024))
	}
	return c
}

// get returns the cached decision for key, or nil.
func (c *decisionCache) get(key string) *Decision {
	if len(key) > MaxCachedRequestBytes {
		return nil
	}
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
	if len(body) > MaxCachedRequestBytes {
		return nil, nil
	}
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
// parsed from. Body entries share the cache's bounds with the others.
func (c *decisionCache) putBody(body []byte, req *Request, d *Decision) {
	if len(body) > MaxCachedRequestBytes {
		return
	}
	e := cacheEntry{key: string(body), decision: d, req: req}
	e.cost = entryCost(e)
	c.store(xxhash.Sum64(body), e)
}

// put remembers d under key.
func (c *decisionCache) put(key string, d *Decision) {
	if len(key) > MaxCachedRequestBytes {
		return
	}
	e := cacheEntry{key: key, decision: d}
	e.cost = entryCost(e)
	c.store(xxhash.Sum64String(key), e)
}

// store adds e, evicting arbitrary entries of its shard until it fits both
// of the shard's bounds (map iteration order is random enough for a cache
// of hot keys). An entry that would be stale at once, or that alone takes
// more than a shard's bytes, is not stored.
func (c *decisionCache) store(h uint64, e cacheEntry) {
	now := c.now()
	e.expires = now.Add(c.ttl).UnixNano()
	if f := e.decision.cached; f != nil && f.expires != 0 && f.expires < e.expires {
		e.expires = f.expires
	}
	if e.expires <= now.UnixNano() || e.cost > c.perBytes {
		return
	}
	s := &c.shards[h%cacheShards]
	s.mu.Lock()
	if old, exists := s.entries[h]; exists {
		delete(s.entries, h)
		s.bytes -= old.cost
	}
	if len(s.entries) >= c.perCap || s.bytes+e.cost > c.perBytes {
		for victim, v := range s.entries {
			delete(s.entries, victim)
			s.bytes -= v.cost
			if len(s.entries) < c.perCap && s.bytes+e.cost <= c.perBytes {
				break
			}
		}
	}
	s.entries[h] = e
	s.bytes += e.cost
	s.mu.Unlock()
}

// Sizes for entryCost, in bytes.
const (
	// entryOverhead is an entry's map slot and the slack of the map's
	// load factor.
	entryOverhead = 128
	stringHeader  = int64(unsafe.Sizeof(""))
	sliceHeader   = int64(unsafe.Sizeof([]any(nil)))
	ifaceHeader   = int64(unsafe.Sizeof(any(nil)))
	// mapOverhead is a map's header and its first group of slots.
	mapOverhead = 64
)

// entryCost estimates, erring high, the memory an entry holds: its key, its
// decision (with its cached encoding) and, for a body entry, the parsed
// request. A decision shared by a key entry and a body entry is counted in
// both; the generation's revision map, shared by every decision, in none.
func entryCost(e cacheEntry) int64 {
	n := entryOverhead + int64(len(e.key)) + decisionCost(e.decision)
	if e.req != nil {
		n += requestCost(e.req)
	}
	// The allocator rounds each block up to its size class (by at most
	// an eighth for blocks above a few bytes).
	return n + n/8
}

func decisionCost(d *Decision) int64 {
	n := int64(unsafe.Sizeof(*d)) + int64(len(d.Tenant)+len(d.Action)+len(d.Visibility))
	if f := d.cached; f != nil {
		n += int64(unsafe.Sizeof(*f)) + int64(len(f.encodedRest))
	}
	for _, f := range d.Fields {
		n += stringHeader + int64(len(f))
	}
	for i := range d.Reasons {
		r := &d.Reasons[i]
		n += int64(unsafe.Sizeof(*r)) + int64(len(r.Layer)+len(r.Code)+len(r.Effect)+len(r.Message)+len(r.Policy)+len(r.ResourceGroup))
		if r.Statement != nil {
			n += 8
		}
	}
	return n
}

func requestCost(r *Request) int64 {
	n := int64(unsafe.Sizeof(*r)) + int64(len(r.Tenant)+len(r.Key)+len(r.Member)+len(r.Application)+len(r.Action))
	if hr := r.Request; hr != nil {
		n += int64(unsafe.Sizeof(*hr)) + int64(len(hr.Service)+len(hr.Method)+len(hr.Path))
	}
	if res := r.Resource; res != nil {
		n += int64(unsafe.Sizeof(*res)) + int64(len(res.FRN)+len(res.Owner))
		for _, g := range res.ResourceGroups {
			n += stringHeader + int64(len(g))
		}
	}
	return n + valueCost(r.Context)
}

// valueCost estimates the memory of a decoded JSON value held in an
// interface: the interface and what it points to.
func valueCost(v any) int64 {
	n := ifaceHeader
	switch v := v.(type) {
	case nil, bool:
	case string:
		n += stringHeader + int64(len(v))
	case json.Number:
		n += stringHeader + int64(len(v))
	case map[string]any:
		n += mapOverhead
		for k, e := range v {
			// A slot: the key's header and bytes, the value, and slack.
			n += stringHeader + int64(len(k)) + valueCost(e) + 8
		}
	case []any:
		n += sliceHeader
		for _, e := range v {
			n += valueCost(e)
		}
	default:
		// A number (float64) or another scalar, boxed.
		n += 16
	}
	return n
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
