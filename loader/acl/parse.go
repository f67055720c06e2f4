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
	return doc
}
