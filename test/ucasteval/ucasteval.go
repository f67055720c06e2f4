// Package ucasteval evaluates OPA's UCAST condition trees (what the Compile
// API answers for the ucast targets) against one row, as a data layer
// applying the filter would: for tests that check a filter keeps exactly
// the objects /v1/decide allows.
package ucasteval

import (
	"fmt"
	"strings"
)

// Eval reports whether row (column → value) passes the UCAST condition
// tree, decoded from JSON. {} passes every row. A field the row lacks is
// NULL, which no comparison matches. Unknown operators and shapes are
// errors, never a pass.
func Eval(cond map[string]any, row map[string]string) (bool, error) {
	if len(cond) == 0 {
		return true, nil
	}
	op, _ := cond["operator"].(string)
	switch cond["type"] {
	case "compound":
		kids, ok := cond["value"].([]any)
		if !ok || len(kids) == 0 {
			return false, fmt.Errorf("compound %s: value is %T, want a non-empty list", op, cond["value"])
		}
		results := make([]bool, len(kids))
		for i, k := range kids {
			m, ok := k.(map[string]any)
			if !ok {
				return false, fmt.Errorf("compound %s: item %d is %T", op, i, k)
			}
			var err error
			if results[i], err = Eval(m, row); err != nil {
				return false, err
			}
		}
		switch op {
		case "and":
			for _, r := range results {
				if !r {
					return false, nil
				}
			}
			return true, nil
		case "or":
			for _, r := range results {
				if r {
					return true, nil
				}
			}
			return false, nil
		case "not":
			if len(results) != 1 {
				return false, fmt.Errorf("not with %d conditions", len(results))
			}
			return !results[0], nil
		}
		return false, fmt.Errorf("unknown compound operator %q", op)
	case "field":
	default:
		return false, fmt.Errorf("unknown node type %v", cond["type"])
	}
	name, _ := cond["field"].(string)
	v, present := row[name]
	if !present {
		return false, nil
	}
	switch op {
	case "in":
		list, ok := cond["value"].([]any)
		if !ok {
			return false, fmt.Errorf("in on %s: value is %T, want a list", name, cond["value"])
		}
		for _, item := range list {
			if s, _ := item.(string); s == v {
				return true, nil
			}
		}
		return false, nil
	}
	want, ok := cond["value"].(string)
	if !ok {
		return false, fmt.Errorf("%s on %s: value is %T, want a string", op, name, cond["value"])
	}
	switch op {
	case "eq":
		return v == want, nil
	case "ne":
		return v != want, nil
	case "startswith":
		return strings.HasPrefix(v, want), nil
	case "endswith":
		return strings.HasSuffix(v, want), nil
	case "contains":
		return strings.Contains(v, want), nil
	}
	return false, fmt.Errorf("unknown field operator %q", op)
}
