package acl

import (
	"maps"
	"slices"
)

// Document is what one bundle's verdict data declares.
type Document struct {
	Catalog Catalog
	Tenants map[string]*Tenant
	// Refs are the references the whole set of bundles must resolve.
	Refs []Ref
	// interned holds one copy of each string the statements repeat, while
	// the document is parsed (see intern).
	interned map[string]string
}

// intern returns the document's copy of s: tens of thousands of statements
// name a few hundred actions, principals and conditions, and each would
// otherwise keep the decoder's copy, or a pattern's lower-cased one.
func (d *Document) intern(s string) string {
	if shared, ok := d.interned[s]; ok {
		return shared
	}
	if d.interned == nil {
		d.interned = map[string]string{}
	}
	d.interned[s] = s
	return s
}

// NewDocument returns an empty document.
func NewDocument() *Document {
	return &Document{
		Catalog: Catalog{Services: map[string]*Service{}, Products: map[string]*Product{}, Packages: map[string]*Package{}},
		Tenants: map[string]*Tenant{},
	}
}

// Parse reads the verdict.catalog and verdict.tenants documents out of a
// bundle's verdict data subtree (the value at data.verdict). Problems are
// recorded in ps; the returned document holds whatever parsed cleanly.
func Parse(verdict map[string]any, files FileResolver, ps *Problems) *Document {
	doc := NewDocument()
	if raw, ok := verdict["catalog"]; ok {
		parseCatalog(raw, NewLoc(files, "verdict", "catalog"), doc, ps)
	}
	if raw, ok := verdict["tenants"]; ok {
		loc := NewLoc(files, "verdict", "tenants")
		if obj, ok := asObject(raw, loc, ps); ok {
			for _, code := range slices.Sorted(maps.Keys(obj)) {
				tloc := NewLoc(files, "verdict", "tenants", code)
				if t := parseTenant(code, obj[code], tloc, ps, doc); t != nil {
					doc.Tenants[code] = t
				}
			}
		}
	}
	doc.interned = nil
	return doc
}
