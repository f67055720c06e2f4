package loader

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"testing"

	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/test/worldgen"
)

var duplicateKeyCases = []string{
	`{"members": {"bob": {"roles": []}, "bob": {"is_admin": true}}}`,
	"{\n  \"a\": 1,\n  \"b\": {\"x\": [1, {\"y\": 2, \"y\": 3}], \"x\": null},\n  \"a\": \"z\"\n}\n",
	`[{"k": 1, "k": 2}, [{"": 1, "": 2}], {"": {"q": 1, "q": 2}}]`,
	`{"esc\u0061ped": 1, "escaped": 2, "tab\t": 3, "tab\u0009": 4, "\"": 5, "\\\"": 6, "\"": 7}`,
	"{\"caf\u00e9\": 1, \"caf\\u00e9\": 2, \"bad\xff\": 3, \"bad\xfe\": 4}",
	`{"n": -1.5e+3, "t": true, "f": false, "z": null, "s": "a,b}]", "n": 0}`,
	`{"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6, "g": 7, "h": 8, "i": 9, "j": 10, "k": 11, "l": 12, "m": 13, "n": 14, "o": 15, "p": 16, "q": 17, "a": 18, "q": 19}`,
	`{}`, `[]`, `"s"`, `1`, ``, ` `, `{"a": 1, "a": 2`, `{"a" 1}`, `{"a": 1,, "a": 2}`, `{"a": [1, 2}`, `{"a": 1} {"a": 1, "a": 2}`,
	`{"a": {"b": 1, "b": 2}, "a": {"b": 1, "b": 2}}`, "\ufeff{\"a\": 1, \"a\": 2}", `{"a": "unterminated}`,
}

// TestDuplicateJSONKeysAsTheDecoder: the one-pass scanner reports exactly
// what the json.Decoder token walk it replaced reported (problems, lines
// and entries, in order), on hand-written cases and a generated tenant.
func TestDuplicateJSONKeysAsTheDecoder(t *testing.T) {
	cases := append([]string(nil), duplicateKeyCases...)
	spec := worldgen.Small
	w := worldgen.Generate(spec)
	for _, tenant := range w.Tenants {
		pretty, err := json.MarshalIndent(tenant, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, string(pretty))
		// The same member written twice, deep inside a large file.
		i := bytes.Index(pretty, []byte(`"m00003": {`))
		j := i + bytes.Index(pretty[i:], []byte("}"))
		cases = append(cases, string(pretty[:j+1])+",\n"+string(pretty[i:j+1])+string(pretty[j+1:]))
	}
	found := 0
	for i, c := range cases {
		got := duplicateJSONKeys("data.json", []byte(c))
		want := duplicateJSONKeysByTokens("data.json", []byte(c))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("case %d %.80q:\n got %v\nwant %v", i, c, got, want)
		}
		found += len(want)
	}
	if found < 15 {
		t.Errorf("only %d duplicates in all cases: the cases do not exercise the check", found)
	}
}

func FuzzDuplicateJSONKeys(f *testing.F) {
	for _, c := range duplicateKeyCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, content []byte) {
		if !json.Valid(content) {
			// OPA's reader rejects the file: what the check found is not used.
			return
		}
		got := duplicateJSONKeys("data.json", content)
		want := duplicateJSONKeysByTokens("data.json", content)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %v\nwant %v", content, got, want)
		}
	})
}

// BenchmarkDuplicateJSONKeys checks a 100,000-member tenant's data file.
func BenchmarkDuplicateJSONKeys(b *testing.B) {
	spec := worldgen.Bench
	spec.Members = 100000
	content, err := json.Marshal(worldgen.Generate(spec).Tenants[worldgen.TenantCode(0)])
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(content)))
	b.ResetTimer()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if ps := duplicateJSONKeys("data.json", content); len(ps) != 0 {
			b.Fatal(ps)
		}
	}
}

// duplicateJSONKeysByTokens is the check as it was before the one-pass
// scanner: a walk over json.Decoder tokens. It is the scanner's reference.
func duplicateJSONKeysByTokens(file string, content []byte) []acl.Problem {
	dec := json.NewDecoder(bytes.NewReader(content))
	dec.UseNumber()
	var out []acl.Problem
	lastOffset, lastLine := int64(0), 1
	line := func(offset int64) int {
		if offset > lastOffset {
			lastLine += bytes.Count(content[lastOffset:offset], []byte{'\n'})
			lastOffset = offset
		}
		return lastLine
	}
	var walk func(path string) error
	walk = func(path string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]int{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				k, _ := kt.(string)
				at := line(dec.InputOffset())
				child := joinEntry(path, k)
				if first, dup := seen[k]; dup {
					out = append(out, acl.Problem{File: file, Entry: child,
						Message: fmt.Sprintf("key %q is defined twice (lines %d and %d)", k, first, at)})
				} else {
					seen[k] = at
				}
				if err := walk(child); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('['):
			for i := 0; dec.More(); i++ {
				if err := walk(path + "[" + strconv.Itoa(i) + "]"); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	_ = walk("")
	return out
}
