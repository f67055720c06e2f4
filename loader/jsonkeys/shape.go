package jsonkeys

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
)

// Shape is what a Go type lets a JSON document hold, as far as object keys
// go: the exact names of a struct's fields (and what each holds), the
// elements of a list, the values of a map. A nil *Shape holds anything (an
// interface, json.RawMessage, a scalar): only duplicates are checked below
// it.
type Shape struct {
	// fields, for a struct, maps each JSON name to the shape of its value.
	fields map[string]*Shape
	// elem is the shape of a list's elements or of a map's values.
	elem *Shape
}

var shapes sync.Map // reflect.Type → *Shape

// ShapeOf is the shape of values of t, as encoding/json decodes them
// (json tags, "-", embedded structs); it is built once per type.
func ShapeOf(t reflect.Type) *Shape {
	if v, ok := shapes.Load(t); ok {
		return v.(*Shape)
	}
	s := build(t, map[reflect.Type]*Shape{})
	shapes.Store(t, s)
	return s
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func build(t reflect.Type, building map[reflect.Type]*Shape) *Shape {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if p := reflect.PointerTo(t); p.Implements(jsonUnmarshaler) || p.Implements(textUnmarshaler) {
		return nil // decodes itself
	}
	switch t.Kind() {
	case reflect.Struct:
		if s, ok := building[t]; ok {
			return s // a recursive type
		}
		s := &Shape{fields: map[string]*Shape{}}
		building[t] = s
		addFields(s, t, building)
		return s
	case reflect.Slice, reflect.Array, reflect.Map:
		if t.Kind() == reflect.Map && t.Key().Kind() != reflect.String {
			return nil
		}
		elem := build(t.Elem(), building)
		if elem == nil {
			return nil
		}
		return &Shape{elem: elem}
	}
	return nil
}

// addFields adds t's JSON fields to s, those of embedded structs included.
func addFields(s *Shape, t reflect.Type, building map[reflect.Type]*Shape) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(s, ft, building)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, taken := s.fields[name]; !taken {
			s.fields[name] = build(f.Type, building)
		}
	}
}

// field is the shape of the value of key k, and whether s lets an object
// hold that key.
func (s *Shape) field(k []byte) (*Shape, bool) {
	switch {
	case s == nil:
		return nil, true
	case s.fields == nil:
		return s.elem, true // a map
	}
	f, ok := s.fields[string(k)]
	return f, ok
}

// element is the shape of a list's elements.
func (s *Shape) element() *Shape {
	if s == nil || s.fields != nil {
		return nil
	}
	return s.elem
}

// sameButCase is the declared field that k spells in another case, if any.
func (s *Shape) sameButCase(k []byte) string {
	if s == nil {
		return ""
	}
	for name := range s.fields {
		if strings.EqualFold(name, string(k)) {
			return name
		}
	}
	return ""
}
