package state

import (
	"strings"
	"testing"
)

// Two different keys never share a file name, and a file name is a plain,
// visible file of the entry's directory.
func FuzzFileNameIsInjective(f *testing.F) {
	long := strings.Repeat("x", 201)
	for _, seed := range [][6]string{
		{"a,b", "c", "d", "a", "b,c", "d"},
		{long, "", "", "+sha256-" + long, "", ""},
		{".", "a", "b", "%2E", "a", "b"},
		{"é", "a", "b", "%C3%A9", "a", "b"},
		{"a", "b", "c", "a", "b", "c\xff"},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3], seed[4], seed[5])
	}
	f.Fuzz(func(t *testing.T, a1, a2, a3, b1, b2, b3 string) {
		for _, parts := range [][]string{{a1, a2, a3}, {b1, b2, b3}, {a1}, {b1}} {
			name := fileName(parts...)
			if strings.HasPrefix(name, ".") || strings.ContainsAny(name, "/\x00") || len(name) > 255 {
				t.Fatalf("fileName(%q) = %q", parts, name)
			}
		}
		if [3]string{a1, a2, a3} != [3]string{b1, b2, b3} && fileName(a1, a2, a3) == fileName(b1, b2, b3) {
			t.Fatalf("%q and %q share the file %s", []string{a1, a2, a3}, []string{b1, b2, b3}, fileName(a1, a2, a3))
		}
		if a1 != b1 && fileName(a1) == fileName(b1) {
			t.Fatalf("%q and %q share the file %s", a1, b1, fileName(a1))
		}
	})
}
