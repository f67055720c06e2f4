package rego

import (
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// baseCache is an evaluation's base document cache (topdown.BaseCache):
// the documents it read from the store, converted to Rego values, so that a
// document read twice is converted once. topdown's own cache is a tree of
// maps allocated for every evaluation, whether it reads a document or not
// (most decisions read none: the tenants' facts come in the input). This
// one is a list, kept in the pooled ruleCache with the rest of an
// evaluation's caches, and answers as topdown's does: Get finds the value
// of the shortest cached ref that ref starts with, the part of it ref
// names; Put replaces what was cached at or under ref.
//
// It holds at most maxBaseEntries documents: both methods scan the list, and
// a rule that reads thousands of distinct documents (data.x[k] for every k)
// must not make each read cost a scan of all the others. A document not
// cached is read from the store again, in the same transaction, so with the
// same value.
type baseCache struct {
	entries []baseCacheEntry
}

type baseCacheEntry struct {
	ref   ast.Ref
	value ast.Value
}

// maxBaseEntries bounds the documents a baseCache holds.
const maxBaseEntries = 64

var _ topdown.BaseCache = (*baseCache)(nil)

// Get returns the cached document at ref, or nil.
func (c *baseCache) Get(ref ast.Ref) ast.Value {
	var found *baseCacheEntry
	for i := range c.entries {
		e := &c.entries[i]
		if len(e.ref) <= len(ref) && ref.HasPrefix(e.ref) && (found == nil || len(e.ref) < len(found.ref)) {
			found = e
		}
	}
	if found == nil {
		return nil
	}
	if len(found.ref) == len(ref) {
		return found.value
	}
	v, err := found.value.Find(ref[len(found.ref):])
	if err != nil {
		return nil
	}
	return v
}

// Put caches value as the document at ref, dropping what was cached at or
// under it. ref's slice is copied (topdown may reuse it), not its terms.
func (c *baseCache) Put(ref ast.Ref, value ast.Value) {
	kept := c.entries[:0]
	for _, e := range c.entries {
		if !e.ref.HasPrefix(ref) {
			kept = append(kept, e)
		}
	}
	clear(c.entries[len(kept):])
	c.entries = kept
	if len(c.entries) < maxBaseEntries {
		c.entries = append(c.entries, baseCacheEntry{ref: slices.Clone(ref), value: value})
	}
}

// reset empties c, dropping its references to the evaluation's values.
func (c *baseCache) reset() {
	clear(c.entries)
	c.entries = c.entries[:0]
}
