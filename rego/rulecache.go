package rego

import (
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// ruleCache is an evaluation's virtual cache (topdown.VirtualCache): the
// value of each rule, and of each function call, the evaluation has
// computed, so that a rule read twice is evaluated once. topdown's own
// cache is a tree of hash maps, one per ref element, built afresh for
// every evaluation: about a fifth of the allocations of a short decision.
// A decision caches a few tens of refs, so a flat list searched from the
// end costs less, and the list is reused from one evaluation to the next
// (ruleCaches). An evaluation that caches more (a bundle's rule calling a
// function with many arguments) gets a hash index over the list, so that
// it costs no more than topdown's.
//
// It answers as topdown's does: Get finds a ref only where it was Put, in
// the top frame; Push starts an empty frame (a "with" statement) and Pop
// drops it with everything Put in it.
type ruleCache struct {
	entries []ruleCacheEntry
	// frames holds, for each frame below the top one, the length of
	// entries when it was pushed; the top frame's entries follow the last.
	frames []int
	// terms backs the entries' refs: topdown may reuse the slice it hands
	// Put, so each ref is copied, into one growing array.
	terms []*ast.Term
	// byHash indexes the entries by their ref's hash (positions in
	// entries, ascending) once there are more than maxLinearEntries of
	// them; nil before.
	byHash map[int][]int
	// base is the same evaluation's base document cache, pooled with it.
	base baseCache
}

type ruleCacheEntry struct {
	ref       ast.Ref
	hash      int // ref.Hash(), set once byHash is in use
	value     *ast.Term
	undefined bool
}

// maxLinearEntries is how many entries find searches one by one before the
// cache indexes them by hash.
const maxLinearEntries = 48

var _ topdown.VirtualCache = (*ruleCache)(nil)

// ruleCaches holds reset caches for reuse.
var ruleCaches = sync.Pool{New: func() any { return new(ruleCache) }}

// newRuleCache returns an empty cache; release it once the evaluation is
// over.
func newRuleCache() *ruleCache { return ruleCaches.Get().(*ruleCache) }

// maxReusedTerms bounds the ref terms a released cache keeps room for, so
// that one evaluation that cached a great many refs does not keep its
// arrays alive in the pool.
const maxReusedTerms = 4096

// release empties c (dropping its references to the evaluation's values)
// and returns it to the pool.
func (c *ruleCache) release() {
	if cap(c.terms) > maxReusedTerms {
		return
	}
	clear(c.entries)
	clear(c.terms)
	c.entries, c.frames, c.terms, c.byHash = c.entries[:0], c.frames[:0], c.terms[:0], nil
	c.base.reset()
	ruleCaches.Put(c)
}

// top is the index in entries where the top frame starts.
func (c *ruleCache) top() int {
	if len(c.frames) == 0 {
		return 0
	}
	return c.frames[len(c.frames)-1]
}

// Push starts a new, empty frame.
func (c *ruleCache) Push() { c.frames = append(c.frames, len(c.entries)) }

// Pop drops the top frame and what was Put in it.
func (c *ruleCache) Pop() {
	if len(c.frames) == 0 {
		return
	}
	start := c.frames[len(c.frames)-1]
	if c.byHash != nil {
		// The dropped entries are the last of their lists.
		for i := len(c.entries) - 1; i >= start; i-- {
			h := c.entries[i].hash
			if list := c.byHash[h]; len(list) == 1 {
				delete(c.byHash, h)
			} else {
				c.byHash[h] = list[:len(list)-1]
			}
		}
	}
	clear(c.entries[start:])
	c.entries = c.entries[:start]
	c.frames = c.frames[:len(c.frames)-1]
}

// Get returns the value cached for ref in the top frame: (value, false)
// when it is defined, (nil, true) when it was found undefined, and (nil,
// false) when nothing is cached for it.
func (c *ruleCache) Get(ref ast.Ref) (*ast.Term, bool) {
	if e := c.find(ref); e != nil {
		if e.undefined {
			return nil, true
		}
		return e.value, false
	}
	return nil, false
}

// Put caches value for ref in the top frame; a nil value records that ref
// is undefined. As in topdown's cache, a ref once recorded undefined stays
// so.
func (c *ruleCache) Put(ref ast.Ref, value *ast.Term) {
	if e := c.find(ref); e != nil {
		if value != nil {
			e.value = value
		} else {
			e.undefined = true
		}
		return
	}
	start := len(c.terms)
	c.terms = append(c.terms, ref...)
	c.entries = append(c.entries, ruleCacheEntry{
		ref:       ast.Ref(c.terms[start:len(c.terms):len(c.terms)]),
		value:     value,
		undefined: value == nil,
	})
	switch n := len(c.entries); {
	case c.byHash != nil:
		e := &c.entries[n-1]
		e.hash = e.ref.Hash()
		c.byHash[e.hash] = append(c.byHash[e.hash], n-1)
	case n > maxLinearEntries:
		c.byHash = make(map[int][]int, 2*n)
		for i := range c.entries {
			e := &c.entries[i]
			e.hash = e.ref.Hash()
			c.byHash[e.hash] = append(c.byHash[e.hash], i)
		}
	}
}

// Keys returns the refs cached with a value in the top frame.
func (c *ruleCache) Keys() []ast.Ref {
	var keys []ast.Ref
	for _, e := range c.entries[c.top():] {
		if e.value != nil {
			keys = append(keys, e.ref.Copy())
		}
	}
	return keys
}

// find returns the top frame's entry for ref, or nil. The newest entries
// are searched first, and refs compared from their last term, which tells
// two rules of a package apart.
func (c *ruleCache) find(ref ast.Ref) *ruleCacheEntry {
	top := c.top()
	if c.byHash != nil {
		list := c.byHash[ref.Hash()]
		for j := len(list) - 1; j >= 0 && list[j] >= top; j-- {
			if e := &c.entries[list[j]]; refsEqual(e.ref, ref) {
				return e
			}
		}
		return nil
	}
	for i := len(c.entries) - 1; i >= top; i-- {
		if e := &c.entries[i]; refsEqual(e.ref, ref) {
			return e
		}
	}
	return nil
}

func refsEqual(a, b ast.Ref) bool {
	if len(a) != len(b) {
		return false
	}
	for i := len(a) - 1; i >= 0; i-- {
		if a[i] != b[i] && !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}
