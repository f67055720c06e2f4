// Package jsonkeys checks the object keys of JSON text in one pass, without
// decoding it: keys written twice (encoding/json lets the last one win
// silently) and keys that a Go type does not declare with exactly that case
// (encoding/json matches them ignoring case, so {"MEMBER": …} would fill
// Member). Bundle data files and every JSON body of the HTTP API are
// checked with it, so that no reader in front of verdict can disagree with
// it about what a document says.
//
// Problems name the key by its path: object keys joined by ".", list
// indices as "[i]", e.g. items[1].resource.frnn.
package jsonkeys

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind says what is wrong with a key.
type Kind int

const (
	// Duplicate is a key written twice in one object.
	Duplicate Kind = iota + 1
	// Unknown is a key the target type does not declare with that exact
	// case.
	Unknown
)

// Problem is one key that makes a JSON document ambiguous.
type Problem struct {
	Kind Kind
	// Path names the key: the path of its object, then the key.
	Path string
	Key  string
	// Line is the key's line; FirstLine, for a Duplicate, is the line of
	// its first occurrence. Lines are counted by Duplicates only.
	Line, FirstLine int
	// Field, for an Unknown key that differs from a declared field only in
	// case, is that field.
	Field string

	offset int // of the key's opening quote
}

func (p *Problem) Error() string {
	switch {
	case p.Kind == Duplicate:
		return fmt.Sprintf("%s: key %q is given twice; JSON readers disagree on which one counts", p.Path, p.Key)
	case p.Field != "":
		return fmt.Sprintf("%s: unknown field %q (field names are case-sensitive: did you mean %q?)", p.Path, p.Key, p.Field)
	}
	return fmt.Sprintf("%s: unknown field %q", p.Path, p.Key)
}

// maxDepth is the nesting at which scanning stops, as encoding/json's
// decoder stops with an error (its limit is 10,000).
const maxDepth = 10000

// Duplicates returns every key written twice in content, with lines. At the
// first syntax error it stops with what it found: the decoder reports the
// error.
func Duplicates(content []byte) []Problem {
	s := &scanner{content: content, line: 1, countLines: true, all: true, trackPath: true, target: -1, keyTarget: -1}
	s.value(nil)
	return s.out
}

// Check returns the first key of content written twice in its object or,
// within objects that shape describes, not declared with exactly that case
// (a nil shape describes nothing: duplicates only). Malformed JSON is not
// its concern: it returns what it found before the error, if anything.
func Check(content []byte, shape *Shape) *Problem {
	s := &scanner{content: content, target: -1, keyTarget: -1}
	s.value(shape)
	if len(s.out) == 0 {
		return nil
	}
	// Only now is the key's path worth building: a second scan, up to the
	// key, keeps the common case free of allocations.
	p := &s.out[0]
	named := &scanner{content: content, trackPath: true, target: -1, keyTarget: p.offset}
	named.value(nil)
	p.Path = named.found
	return p
}

// PathAt names the innermost value of content that holds the byte at
// offset, as problems name keys; "" for the top-level value. Decoders
// report where an error is (encoding/json's UnmarshalTypeError.Offset is
// just past the value it could not store, or its first byte), and PathAt
// turns that into a field, e.g. items[1].resource.frn.
func PathAt(content []byte, offset int64) string {
	s := &scanner{content: content, trackPath: true, target: offset, keyTarget: -1}
	s.value(nil)
	return s.found
}

// scanner walks JSON text.
type scanner struct {
	content []byte
	pos     int
	depth   int
	// countLines: line is the line of lineOffset, counted incrementally
	// as the scanner only moves forward.
	countLines       bool
	line, lineOffset int
	// all: report every duplicate (else stop at the first problem).
	all bool
	// path, when trackPath, holds the object keys (index < 0) and list
	// indices leading to the value being scanned.
	trackPath bool
	path      []pathSeg
	out       []Problem
	failed    bool
	// target, when >= 0, is the offset whose value PathAt looks for, and
	// keyTarget the offset of the key whose path Check names; found names
	// it once hasFound.
	target    int64
	keyTarget int
	found     string
	hasFound  bool
}

type pathSeg struct {
	key   []byte
	index int
}

// smallObject is the number of keys up to which an object's keys are
// compared in a list rather than a map.
const smallObject = 16

func (s *scanner) lineAt(offset int) int {
	if !s.countLines {
		return 0
	}
	if offset > s.lineOffset {
		s.line += bytes.Count(s.content[s.lineOffset:offset], []byte{'\n'})
		s.lineOffset = offset
	}
	return s.line
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.content) {
		switch s.content[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value scans one JSON value that shape describes.
func (s *scanner) value(shape *Shape) {
	s.skipSpace()
	if s.pos >= len(s.content) {
		s.failed = true
		return
	}
	start := s.pos
	switch c := s.content[s.pos]; {
	case c == '{':
		s.object(shape)
	case c == '[':
		s.array(shape)
	case c == '"':
		if _, _, ok := s.str(); !ok {
			s.failed = true
		}
	default:
		for s.pos < len(s.content) {
			c := s.content[s.pos]
			if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
				break
			}
			s.pos++
		}
		if s.pos == start {
			s.failed = true
		}
	}
	if s.target >= 0 && !s.hasFound && int64(start) <= s.target && s.target < int64(s.pos) {
		s.found, s.hasFound = s.entry(), true
	}
}

// str scans a string and returns its raw text between the quotes, and
// whether that text is the string's value (no escape, only ASCII).
func (s *scanner) str() (raw []byte, plain, ok bool) {
	start := s.pos + 1
	plain = true
	for i := start; i < len(s.content); i++ {
		switch c := s.content[i]; {
		case c == '"':
			s.pos = i + 1
			return s.content[start:i], plain, true
		case c == '\\':
			plain = false
			i++
		case c >= utf8.RuneSelf:
			plain = false
		}
	}
	return nil, false, false
}

// key returns a key's value as the JSON decoder would: its raw text unless
// it holds an escape or bytes that are not UTF-8.
func (s *scanner) key(raw []byte) []byte {
	if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return raw
	}
	quoted := make([]byte, 0, len(raw)+2)
	quoted = append(append(append(quoted, '"'), raw...), '"')
	var k string
	if err := json.Unmarshal(quoted, &k); err != nil {
		s.failed = true
	}
	return []byte(k)
}

func (s *scanner) object(shape *Shape) {
	s.pos++ // {
	if s.depth++; s.depth > maxDepth {
		s.failed = true
		return
	}
	defer func() { s.depth-- }()
	type seenKey struct {
		key  []byte
		line int
	}
	var small [smallObject]seenKey
	list := small[:0]
	var seen map[string]int
	s.skipSpace()
	if s.pos < len(s.content) && s.content[s.pos] == '}' {
		s.pos++
		return
	}
	for !s.failed {
		s.skipSpace()
		if s.pos >= len(s.content) || s.content[s.pos] != '"' {
			s.failed = true
			return
		}
		keyStart := s.pos
		raw, plain, ok := s.str()
		if !ok {
			s.failed = true
			return
		}
		line := s.lineAt(s.pos)
		k := raw
		if !plain {
			k = s.key(raw)
		}
		first, dup := 0, false
		if seen == nil {
			for _, e := range list {
				if bytes.Equal(e.key, k) {
					first, dup = e.line, true
					break
				}
			}
			if !dup {
				if len(list) < smallObject {
					list = append(list, seenKey{key: k, line: line})
				} else {
					seen = make(map[string]int, 2*smallObject)
					for _, e := range list {
						seen[string(e.key)] = e.line
					}
				}
			}
		}
		if seen != nil {
			if first, dup = seen[string(k)]; !dup {
				seen[string(k)] = line
			}
		}
		if s.trackPath {
			s.path = append(s.path, pathSeg{key: k, index: -1})
			if keyStart == s.keyTarget {
				s.found, s.hasFound, s.failed = s.entry(), true, true
				return
			}
		}
		child, declared := shape.field(k)
		switch {
		case dup:
			s.report(Problem{Kind: Duplicate, Path: s.entry(), Key: string(k), Line: line, FirstLine: first, offset: keyStart})
		case !declared:
			s.report(Problem{Kind: Unknown, Path: s.entry(), Key: string(k), Line: line, Field: shape.sameButCase(k), offset: keyStart})
		}
		if s.failed {
			return
		}
		s.skipSpace()
		if s.pos >= len(s.content) || s.content[s.pos] != ':' {
			s.failed = true
			return
		}
		s.pos++
		s.value(child)
		if s.trackPath {
			s.path = s.path[:len(s.path)-1]
		}
		if s.afterElement('}') {
			return
		}
	}
}

// report records a problem; unless every duplicate is wanted, scanning
// stops at the first.
func (s *scanner) report(p Problem) {
	s.out = append(s.out, p)
	if !s.all {
		s.failed = true
	}
}

func (s *scanner) array(shape *Shape) {
	s.pos++ // [
	if s.depth++; s.depth > maxDepth {
		s.failed = true
		return
	}
	defer func() { s.depth-- }()
	s.skipSpace()
	if s.pos < len(s.content) && s.content[s.pos] == ']' {
		s.pos++
		return
	}
	elem := shape.element()
	for i := 0; !s.failed; i++ {
		if s.trackPath {
			s.path = append(s.path, pathSeg{index: i})
		}
		s.value(elem)
		if s.trackPath {
			s.path = s.path[:len(s.path)-1]
		}
		if s.afterElement(']') {
			return
		}
	}
}

// afterElement reads what follows an object member or array element: a
// ',' (false: another comes) or closer (true). Anything else marks the
// input malformed and is true as well.
func (s *scanner) afterElement(closer byte) (done bool) {
	s.skipSpace()
	if s.pos >= len(s.content) {
		s.failed = true
		return true
	}
	switch s.content[s.pos] {
	case ',':
		s.pos++
		return false
	case closer:
		s.pos++
		return true
	default:
		s.failed = true
		return true
	}
}

// entry names the value being scanned: keys joined by ".", list indices as
// "[i]" ("" unless trackPath).
func (s *scanner) entry() string {
	var b strings.Builder
	for _, seg := range s.path {
		if seg.index >= 0 {
			b.WriteString("[" + strconv.Itoa(seg.index) + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.Write(seg.key)
	}
	return b.String()
}
