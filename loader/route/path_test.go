package route_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/verdict-authz/verdict/loader/route"
)

func TestCanonicalPath(t *testing.T) {
	tests := []struct {
		path string
		want string // "" means refused
	}{
		// Plain paths are kept as they are.
		{"/api/v1/portfolios/portfolio/7/", "/api/v1/portfolios/portfolio/7/"},
		{"/", "/"},
		{"/a//b", "/a//b"},
		{"/a/.../b", "/a/.../b"},
		{"/a/.b/..c/d./", "/a/.b/..c/d./"},
		{"/a/b:c@d;e=f,g!h*i~j", "/a/b:c@d;e=f,g!h*i~j"},
		// The query string and fragment are cut off.
		{"/api/v1/portfolios/portfolio/?page=2", "/api/v1/portfolios/portfolio/"},
		{"/a/b#frag", "/a/b"},
		{"/a/..%2F?x", ""},
		{"/a?/../b", "/a"},
		// Escapes are decoded; only %, ?, #, space and non-ASCII stay escaped.
		{"/api/v1/portfolios/portfolio/%6Cight/", "/api/v1/portfolios/portfolio/light/"},
		{"/a/%40%3a%3B", "/a/@:;"},
		{"/a/caf%c3%a9", "/a/caf%C3%A9"},
		{"/a/café", "/a/caf%C3%A9"},
		{"/a/%25/%3F/%23/%20", "/a/%25/%3F/%23/%20"},
		{"/a/b c", "/a/b%20c"},
		{"/a/%252F", "/a/%252F"},
		// Refused: what a service may read as another route.
		{"", ""},
		{"api/v1/portfolios/portfolio/", ""},
		{"/api/v1/portfolios/portfolio/..%2Fportfolio-type/", ""},
		{"/api/v1/portfolios/portfolio/..%2fportfolio-type/", ""},
		{"/api/v1/portfolios/portfolio/7%2F..%2F..%2Fportfolio-type/", ""},
		{"/api/v1/portfolios/portfolio/../portfolio-type/", ""},
		{"/api/v1/portfolios/portfolio/./7/", ""},
		{"/api/v1/portfolios/portfolio/..", ""},
		{"/api/v1/portfolios/portfolio/%2E%2E/portfolio-type/", ""},
		{"/api/v1/portfolios/portfolio/%2e/", ""},
		{"/a/b%2Ec", ""},
		{`/api/v1/portfolios/portfolio/..\portfolio-type/`, ""},
		{"/api/v1/portfolios/portfolio/..%5Cportfolio-type/", ""},
		{"/a/b%00", ""},
		{"/a/b\x00", ""},
		{"/a/b%0A", ""},
		{"/a/b\n", ""},
		{"/a/b%7f", ""},
		{"/a/b%", ""},
		{"/a/b%2", ""},
		{"/a/b%zz", ""},
		{"/a/b%ff", ""},
		{"/a/\xff", ""},
		{"/a/caf%C3", ""},
	}
	for _, tt := range tests {
		got, err := route.CanonicalPath(tt.path)
		if tt.want == "" {
			var pathErr *route.PathError
			if !errors.As(err, &pathErr) || pathErr.Reason == "" {
				t.Errorf("CanonicalPath(%q) = %q, %v; want a *PathError", tt.path, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("CanonicalPath(%q) = %q, %v; want %q", tt.path, got, err, tt.want)
		}
	}
}

// TestCanonicalPathDoesNotAllocate: a plain path, the common case, is
// returned as is.
func TestCanonicalPathDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := route.CanonicalPath("/api/v1/portfolios/portfolio/7/?page=2"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations, want 0", allocs)
	}
}

// FuzzCanonicalPath: whatever the path, CanonicalPath never panics, and a
// path it accepts
//
//   - is canonical: CanonicalPath keeps it unchanged;
//
//   - decodes (segment by segment, as a service does) to the same segments
//     as the input, so it names the route the service will serve;
//
//   - holds no dot segment, no encoded separator or dot, no backslash, no
//     control byte and nothing but ASCII.
//
//     go test ./loader/route/ -run '^$' -fuzz '^FuzzCanonicalPath$' -fuzztime 60s
func FuzzCanonicalPath(f *testing.F) {
	for _, p := range []string{"/api/v1/portfolios/portfolio/..%2Fportfolio-type/", "/a/%6Cight/?q", "/a/caf%C3%A9", "/a/b c/%25", "/a/./b", `/a\b`, "/%2e%2E/", "/x#y"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, path string) {
		got, err := route.CanonicalPath(path)
		if err != nil {
			return
		}
		again, err := route.CanonicalPath(got)
		if err != nil || again != got {
			t.Fatalf("CanonicalPath(%q) = %q, but that gives %q, %v", path, got, again, err)
		}
		if i := strings.IndexAny(path, "?#"); i >= 0 {
			path = path[:i]
		}
		in, out := strings.Split(path, "/"), strings.Split(got, "/")
		if len(in) != len(out) {
			t.Fatalf("CanonicalPath(%q) = %q: %d segments, want %d", path, got, len(out), len(in))
		}
		for i := range in {
			a, errA := url.PathUnescape(in[i])
			b, errB := url.PathUnescape(out[i])
			if errA != nil || errB != nil || a != b {
				t.Fatalf("CanonicalPath(%q) = %q: segment %d decodes to %q (%v), want %q (%v)", path, got, i, b, errB, a, errA)
			}
			if a == "." || a == ".." || strings.ContainsAny(a, `/\`) || !utf8.ValidString(a) {
				t.Fatalf("CanonicalPath(%q) accepted segment %q", path, a)
			}
			for _, c := range []byte(a) {
				if c < ' ' || c == 0x7f {
					t.Fatalf("CanonicalPath(%q) accepted a control byte in %q", path, a)
				}
			}
		}
		lower := strings.ToLower(got)
		for _, bad := range []string{"%2f", "%2e", "%5c", "\\"} {
			if strings.Contains(lower, bad) {
				t.Fatalf("CanonicalPath(%q) = %q holds %s", path, got, bad)
			}
		}
		for i := 0; i < len(got); i++ {
			if got[i] <= ' ' || got[i] >= 0x7f {
				t.Fatalf("CanonicalPath(%q) = %q holds byte %#x", path, got, got[i])
			}
		}
	})
}

// TestEncodesUnreserved: only a percent-escape of a letter, digit or -._~
// in the path (RFC 3986's unreserved characters, which no client escapes)
// counts; reserved and other escapes, and the query string, do not.
func TestEncodesUnreserved(t *testing.T) {
	for _, tt := range []struct {
		path string
		want bool
	}{
		{"/api/v1/portfolios/portfolio/bonds-portfolio/", false},
		{"/api/v1/portfolios/portfolio/%62onds-portfolio/", true},
		{"/api/v1/portfolios/portfolio/secret%2Dportfolio/", true},
		{"/a/%2d", true},
		{"/a/%7E", true},
		{"/a/%5F", true},
		{"/a/%30", true},
		{"/a/my%20portfolio/", false},
		{"/a/%2F/", false},
		{"/a/%C3%A9/", false},
		{"/a/100%", false},
		{"/a/%6", false},
		{"/a/%%62", true},
		{"/a/?q=%62", false},
		{"/a/#%62", false},
	} {
		if got := route.EncodesUnreserved(tt.path); got != tt.want {
			t.Errorf("EncodesUnreserved(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}
