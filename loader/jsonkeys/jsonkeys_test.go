package jsonkeys_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/loader/jsonkeys"
)

type resource struct {
	FRN    string   `json:"frn,omitempty"`
	Groups []string `json:"resource_groups,omitempty"`
}

type item struct {
	Action   string    `json:"action,omitempty"`
	Resource *resource `json:"resource,omitempty"`
	Context  any       `json:"context,omitempty"`
}

type embedded struct {
	Tenant string `json:"tenant"`
}

type batch struct {
	embedded
	Member  string          `json:"member"`
	Items   []item          `json:"items"`
	Labels  map[string]item `json:"labels"`
	Raw     json.RawMessage `json:"raw"`
	Ignored string          `json:"-"`
	NoTag   int
	hidden  int
}

func TestCheck(t *testing.T) {
	shape := jsonkeys.ShapeOf(reflect.TypeFor[*batch]())
	tests := []struct {
		body string
		want string // the problem's error; "" for none
		path string
	}{
		{`{"tenant":"a","member":"m","items":[{"action":"x","resource":{"frn":"f","resource_groups":["g"]},"context":{"ip":"1","IP":"2"}}],"NoTag":1}`, "", ""},
		{`{"labels":{"A":{"action":"x"},"a":{"action":"y"}},"raw":{"anything":1,"ANYTHING":2}}`, "", ""},
		// Duplicates, wherever they are.
		{`{"tenant":"TNT2","tenant":"acme"}`, `tenant: key "tenant" is given twice; JSON readers disagree on which one counts`, "tenant"},
		{`{"items":[{},{"context":{"ip":"1","ip":"2"}}]}`, `items[1].context.ip: key "ip" is given twice; JSON readers disagree on which one counts`, "items[1].context.ip"},
		{`{"raw":{"x":[{"k":1,"k":2}]}}`, `raw.x[0].k: key "k" is given twice; JSON readers disagree on which one counts`, "raw.x[0].k"},
		{`{"member":"a","memb\u0065r":"b"}`, `member: key "member" is given twice; JSON readers disagree on which one counts`, "member"},
		// Keys the type does not declare with that exact case.
		{`{"tenant":"acme","MEMBER":"admin"}`, `MEMBER: unknown field "MEMBER" (field names are case-sensitive: did you mean "member"?)`, "MEMBER"},
		{`{"member":"intern","Member":"admin"}`, `Member: unknown field "Member" (field names are case-sensitive: did you mean "member"?)`, "Member"},
		{`{"items":[{"action":"x"},{"resource":{"frnn":"f"}}]}`, `items[1].resource.frnn: unknown field "frnn"`, "items[1].resource.frnn"},
		{`{"labels":{"x":{"Action":"y"}}}`, `labels.x.Action: unknown field "Action" (field names are case-sensitive: did you mean "action"?)`, "labels.x.Action"},
		{`{"Ignored":"x"}`, `Ignored: unknown field "Ignored"`, "Ignored"},
		{`{"hidden":1}`, `hidden: unknown field "hidden"`, "hidden"},
		{`{"notag":1}`, `notag: unknown field "notag" (field names are case-sensitive: did you mean "NoTag"?)`, "notag"},
		// Malformed JSON is the decoder's to report.
		{`{"tenant":`, "", ""},
		{`{"tenant" 1, "tenant": 2}`, "", ""},
	}
	for _, tt := range tests {
		p := jsonkeys.Check([]byte(tt.body), shape)
		switch {
		case tt.want == "" && p != nil:
			t.Errorf("%s: %v, want no problem", tt.body, p)
		case tt.want != "" && p == nil:
			t.Errorf("%s: no problem, want %s", tt.body, tt.want)
		case p != nil && (p.Error() != tt.want || p.Path != tt.path):
			t.Errorf("%s:\n got %s (path %q)\nwant %s (path %q)", tt.body, p, p.Path, tt.want, tt.path)
		}
	}
	// A nil shape checks duplicates only.
	if p := jsonkeys.Check([]byte(`{"MEMBER":1,"x":{"y":1}}`), nil); p != nil {
		t.Errorf("nil shape: %v", p)
	}
	if p := jsonkeys.Check([]byte(`{"x":{"y":1,"y":2}}`), nil); p == nil || p.Path != "x.y" {
		t.Errorf("nil shape, duplicate: %v", p)
	}
}

// TestPathAtNamesWhatTheDecoderRejects: encoding/json's type errors carry
// no list index; PathAt finds the field at the error's offset.
func TestPathAtNamesWhatTheDecoderRejects(t *testing.T) {
	for body, want := range map[string]string{
		`{"items":[{},{"resource":{"frn":5}}]}`:                   "items[1].resource.frn",
		`{"items":[{},{"resource":{"frn":{"a":1}}}]}`:             "items[1].resource.frn",
		`{"items":[{},{"resource":{"resource_groups":["a",7]}}]}`: "items[1].resource.resource_groups[1]",
		`{"items":[{"resource":"x"}]}`:                            "items[0].resource",
		`{"items":{}}`:                                            "items",
		`[]`:                                                      "",
		` {"member" : true }`:                                     "member",
	} {
		var b batch
		err := json.Unmarshal([]byte(body), &b)
		var typeErr *json.UnmarshalTypeError
		if !errors.As(err, &typeErr) {
			t.Fatalf("%s: %v, want a type error", body, err)
		}
		if got := jsonkeys.PathAt([]byte(body), typeErr.Offset-1); got != want {
			t.Errorf("%s: PathAt(%d) = %q, want %q", body, typeErr.Offset-1, got, want)
		}
	}
}

func TestDuplicatesReportsEveryOneWithLines(t *testing.T) {
	var got []string
	for _, p := range jsonkeys.Duplicates([]byte("{\n\"a\": 1,\n\"b\": [{\"c\": 1, \"c\": 2}],\n\"a\": 3\n}")) {
		got = append(got, fmt.Sprintf("%d %s %s %d %d", p.Kind, p.Path, p.Key, p.FirstLine, p.Line))
	}
	want := []string{"1 b[0].c c 3 3", "1 a a 2 4"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// TestCheckDoesNotAllocate: a valid body, the common case, is checked
// without allocating (the shape is built once per type).
func TestCheckDoesNotAllocate(t *testing.T) {
	shape := jsonkeys.ShapeOf(reflect.TypeFor[*batch]())
	body := []byte(`{"tenant":"bank","member":"user_a","items":[{"action":"finmars:Portfolio:list","resource":{"frn":"frn:finmars:a:b:c","resource_groups":["g"]},"context":{"ip":"10.0.0.1","hour":10}}]}`)
	if allocs := testing.AllocsPerRun(100, func() {
		if p := jsonkeys.Check(body, shape); p != nil {
			t.Fatal(p)
		}
	}); allocs != 0 {
		t.Errorf("%v allocations, want 0", allocs)
	}
}

// FuzzCheck: Check agrees with a model built on encoding/json's tokens:
// on valid JSON it reports a duplicate exactly when some object repeats a
// key, and never panics on anything.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"items":[{"resource":{"frn":"x","frn":"y"}}]}`, `[{"x":{}},{"x":{"y":1,"y":1}}]`, `{"a\u0062":1,"ab":2}`, `{`, `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p := jsonkeys.Check(body, nil)
		if !json.Valid(body) {
			return
		}
		want := hasDuplicateByTokens(body)
		if (p != nil) != want {
			t.Fatalf("%q: Check = %v, the token walk finds a duplicate: %v", body, p, want)
		}
		if p != nil && !strings.HasSuffix(p.Path, p.Key) {
			t.Fatalf("%q: path %q does not end with the key %q", body, p.Path, p.Key)
		}
	})
}

func hasDuplicateByTokens(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	var walk func() bool
	walk = func() bool {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			dup := false
			for dec.More() {
				k, _ := dec.Token()
				if seen[k.(string)] {
					dup = true
				}
				seen[k.(string)] = true
				dup = walk() || dup
			}
			dec.Token()
			return dup
		case json.Delim('['):
			dup := false
			for dec.More() {
				dup = walk() || dup
			}
			dec.Token()
			return dup
		}
		return false
	}
	return walk()
}
