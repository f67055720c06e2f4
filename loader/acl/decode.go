package acl

// Generic decoding with locations: each helper reads one JSON value of the
// bundle data and reports a problem at loc when it has the wrong shape.

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

func eachEntry(obj map[string]any, key string, loc Loc, ps *Problems, f func(k string, v any, l Loc)) {
	raw, ok := obj[key]
	if !ok {
		return
	}
	kl := loc.Key(key)
	m, ok := asObject(raw, kl, ps)
	if !ok {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if k == "" {
			ps.Add(kl, "an entry has an empty name")
			continue
		}
		f(k, m[k], kl.Key(k))
	}
}

func refList(obj map[string]any, key string, loc Loc, ps *Problems) []string {
	raw, ok := obj[key]
	if !ok {
		return nil
	}
	l := loc.Key(key)
	list, _ := asStringList(raw, l, ps)
	seen := make(map[string]bool, len(list))
	for i, r := range list {
		if r == "" {
			continue
		}
		if seen[r] {
			ps.Add(l.Index(i), "%q is listed twice", r)
		}
		seen[r] = true
	}
	return list
}

func warnUnknown(obj map[string]any, loc Loc, ps *Problems, known ...string) {
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		found := false
		for _, kn := range known {
			if k == kn {
				found = true
				break
			}
		}
		if !found {
			ps.Warn(loc.Key(k), "unknown field; it is ignored")
		}
	}
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number, float64, int, int64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%T", v)
	}
}

func asObject(v any, loc Loc, ps *Problems) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		ps.Add(loc, "expected an object, got %s", typeName(v))
	}
	return m, ok
}

func asList(v any, loc Loc, ps *Problems) ([]any, bool) {
	l, ok := v.([]any)
	if !ok {
		ps.Add(loc, "expected a list, got %s", typeName(v))
	}
	return l, ok
}

// asString reads a string; present reports whether v was given at all.
func asString(v any, loc Loc, ps *Problems, required bool) (s string, present bool) {
	if v == nil {
		if required {
			ps.Add(loc, "is required")
		}
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		ps.Add(loc, "expected a string, got %s", typeName(v))
		return "", false
	}
	if s == "" && required {
		ps.Add(loc, "must not be empty")
	}
	return s, true
}

func asBool(v any, loc Loc, ps *Problems) (bool, bool) {
	b, ok := v.(bool)
	if !ok {
		ps.Add(loc, "expected true or false, got %s", typeName(v))
	}
	return b, ok
}

func asStringList(v any, loc Loc, ps *Problems) ([]string, bool) {
	if v == nil {
		return nil, true
	}
	list, ok := asList(v, loc, ps)
	if !ok {
		return nil, false
	}
	// Positions are kept: a bad item is reported and left as "", so that
	// later problems name the index as written.
	out := make([]string, len(list))
	good := true
	for i, item := range list {
		s, ok := item.(string)
		if !ok || s == "" {
			ps.Add(loc.Index(i), "expected a non-empty string, got %s", typeName(item))
			good = false
			continue
		}
		out[i] = s
	}
	return out, good
}

func stringOrList(v any, loc Loc, ps *Problems) ([]string, bool) {
	if s, ok := v.(string); ok {
		if s == "" {
			ps.Add(loc, "must not be empty")
			return nil, false
		}
		return []string{s}, true
	}
	if _, ok := v.([]any); !ok {
		ps.Add(loc, "expected a string or a list of strings, got %s", typeName(v))
		return nil, false
	}
	return asStringList(v, loc, ps)
}

func requiredStringOrList(obj map[string]any, key string, loc Loc, ps *Problems) ([]string, bool) {
	v, ok := obj[key]
	if !ok {
		ps.Add(loc, "%s is required", key)
		return nil, false
	}
	list, ok := stringOrList(v, loc.Key(key), ps)
	if ok && len(list) == 0 {
		ps.Add(loc.Key(key), "must not be empty")
		return nil, false
	}
	return list, ok
}
