package route

import (
	"strings"
	"unicode/utf8"
)

// PathError is a request path that cannot be translated without guessing
// how the service behind the proxy will read it.
type PathError struct {
	Path   string
	Reason string
}

func (e *PathError) Error() string { return e.Reason }

// CanonicalPath is the one way a request path enters verdict (POST
// /v1/decide's request.path, batch items, /v1/authz's X-Original-URI, and
// every other door): it returns the path in the form Match translates, or
// a *PathError for a path that a service could read as another route.
//
// The query string and fragment are cut off. Percent-escapes are decoded
// and only '%', '?', '#', space, control and non-ASCII bytes are written
// back escaped (upper-case hex), so "/portfolio/%6Cight/" is
// "/portfolio/light/", as the service that decodes it sees it. Refused,
// because the service behind the proxy may resolve them to another route
// than the one {id} would absorb them into:
//   - a path not starting with "/";
//   - an encoded separator ("%2F") or dot ("%2E"), a backslash (raw or
//     "%5C"), and a "." or ".." segment;
//   - NUL and other control bytes (raw or escaped), and bytes that are not
//     UTF-8 (raw or escaped);
//   - a '%' not followed by two hex digits.
//
// A path already canonical is returned as is, without allocating, so
// CanonicalPath(CanonicalPath(p)) == CanonicalPath(p).
func CanonicalPath(path string) (string, error) {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	if !strings.HasPrefix(path, "/") {
		return "", &PathError{Path: path, Reason: "must be a path starting with /"}
	}
	plain := true
	for i := 0; i < len(path); i++ {
		if c := path[i]; c == '%' || c == '\\' || c <= ' ' || c >= 0x7f {
			plain = false
			break
		}
	}
	if plain {
		if err := checkDotSegments(path); err != nil {
			return "", err
		}
		return path, nil
	}
	var b strings.Builder
	b.Grow(len(path))
	var segment []byte // the current segment, decoded
	for i := 0; i <= len(path); i++ {
		if i == len(path) || path[i] == '/' {
			if err := appendSegment(&b, path, segment); err != nil {
				return "", err
			}
			if i < len(path) {
				b.WriteByte('/')
			}
			segment = segment[:0]
			continue
		}
		c := path[i]
		switch {
		case c == '%':
			if i+2 >= len(path) || !isHex(path[i+1]) || !isHex(path[i+2]) {
				return "", &PathError{Path: path, Reason: "holds a '%' that is not a percent-escape (%XX)"}
			}
			c = unhex(path[i+1])<<4 | unhex(path[i+2])
			i += 2
			switch c {
			case '/':
				return "", &PathError{Path: path, Reason: "holds an encoded / (%2F): a service may read it as a separator"}
			case '.':
				return "", &PathError{Path: path, Reason: "holds an encoded dot (%2E): a service may read it as a . or .. segment"}
			}
		}
		switch {
		case c == '\\':
			return "", &PathError{Path: path, Reason: `holds a backslash (raw or %5C): a service may read it as a separator`}
		case c < ' ' || c == 0x7f:
			return "", &PathError{Path: path, Reason: "holds a control character (NUL, newline, ...)"}
		}
		segment = append(segment, c)
	}
	return b.String(), nil
}

// appendSegment writes a decoded segment in canonical form.
func appendSegment(b *strings.Builder, path string, segment []byte) error {
	if !utf8.Valid(segment) {
		return &PathError{Path: path, Reason: "holds bytes that are not UTF-8"}
	}
	if isDotSegment(string(segment)) {
		return errDotSegment(path)
	}
	const hexDigits = "0123456789ABCDEF"
	for _, c := range segment {
		if c == '%' || c == '?' || c == '#' || c <= ' ' || c >= 0x7f {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
			continue
		}
		b.WriteByte(c)
	}
	return nil
}

func checkDotSegments(path string) error {
	for rest := path; rest != ""; {
		seg, next, _ := strings.Cut(rest, "/")
		if isDotSegment(seg) {
			return errDotSegment(path)
		}
		rest = next
	}
	return nil
}

func isDotSegment(seg string) bool { return seg == "." || seg == ".." }

func errDotSegment(path string) error {
	return &PathError{Path: path, Reason: `holds a "." or ".." segment: a service may resolve it to another route`}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// EncodesUnreserved reports whether the path (the query string and fragment
// cut off) percent-encodes an unreserved character: a letter, a digit, '-',
// '.', '_' or '~'. RFC 3986 (section 2.3) says such a URI means the same as
// the one with the character written out, and that URI producers should
// not create it: browsers, curl and HTTP libraries never do, so a path that
// does was written to look unlike the one the service decodes (a proxy
// matching the raw URI, for the object's FRN say, would miss it).
func EncodesUnreserved(path string) bool {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	for i := strings.IndexByte(path, '%'); i >= 0 && i+2 < len(path); {
		if isHex(path[i+1]) && isHex(path[i+2]) && isUnreserved(unhex(path[i+1])<<4|unhex(path[i+2])) {
			return true
		}
		next := strings.IndexByte(path[i+1:], '%')
		if next < 0 {
			break
		}
		i += 1 + next
	}
	return false
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}
