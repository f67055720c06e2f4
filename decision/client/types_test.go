package client_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/client"
)

// jsonFields describes the JSON a struct type reads and writes, one line
// per field: its name, whether it is left out when empty, and the shape of
// its value (nested structs field by field).
func jsonFields(t reflect.Type, prefix string, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("json")
		if !f.IsExported() || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if !ok || name == "" {
			name = f.Name
		}
		path := prefix + name
		*out = append(*out, fmt.Sprintf("%s %s omitempty=%v", path, shape(f.Type), strings.Contains(opts, "omitempty")))
		ft := f.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice || ft.Kind() == reflect.Map {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			jsonFields(ft, path+".", out)
		}
	}
}

// shape is a type as JSON sees it: "*T" and "T" differ (null), struct
// names do not matter.
func shape(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return "*" + shape(t.Elem())
	case reflect.Slice:
		return "[]" + shape(t.Elem())
	case reflect.Map:
		return "map[" + shape(t.Key()) + "]" + shape(t.Elem())
	case reflect.Struct:
		return "object"
	case reflect.Interface:
		return "any"
	}
	return t.Kind().String()
}

// TestTypesAgreeWithTheServer holds the client's request and answer types
// to the engine's, field by field: a field the server adds, renames or
// stops leaving out when empty fails here rather than in a service.
func TestTypesAgreeWithTheServer(t *testing.T) {
	pairs := []struct {
		client, server any
	}{
		{client.Request{}, decision.Request{}},
		{client.Decision{}, decision.Decision{}},
		{client.BatchRequest{}, decision.BatchRequest{}},
		{client.BatchResponse{}, decision.BatchResponse{}},
		{client.PlanRequest{}, decision.PlanRequest{}},
		{client.Plan{}, decision.Plan{}},
	}
	for _, p := range pairs {
		ct, st := reflect.TypeOf(p.client), reflect.TypeOf(p.server)
		t.Run(ct.Name(), func(t *testing.T) {
			var cf, sf []string
			jsonFields(ct, "", &cf)
			jsonFields(st, "", &sf)
			for _, f := range sf {
				if !slices.Contains(cf, f) {
					t.Errorf("server field %q: the client has no such field", f)
				}
			}
			for _, f := range cf {
				if !slices.Contains(sf, f) {
					t.Errorf("client field %q: the server has no such field", f)
				}
			}
		})
	}
}
