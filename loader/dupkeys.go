package loader

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"

	"github.com/verdict-authz/verdict/loader/acl"
)

// duplicateKeys reports every object key written twice in a data file.
// OPA's reader lets the last one win silently; a bundle author who defines
// a member twice almost certainly made a mistake, so verdict rejects it.
func duplicateKeys(file string, content []byte) []acl.Problem {
	if strings.HasSuffix(file, ".json") {
		return duplicateJSONKeys(file, content)
	}
	return duplicateYAMLKeys(file, content)
}

func duplicateYAMLKeys(file string, content []byte) []acl.Problem {
	var doc yaml.Node
	if err := yaml.Unmarshal(content, &doc); err != nil {
		return nil // OPA's reader reports syntax errors with their line
	}
	var out []acl.Problem
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			seen := map[string]int{}
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				child := joinEntry(path, k.Value)
				if first, dup := seen[k.Value]; dup {
					out = append(out, acl.Problem{File: file, Entry: child,
						Message: fmt.Sprintf("key %q is defined twice (lines %d and %d)", k.Value, first, k.Line)})
				} else {
					seen[k.Value] = k.Line
				}
				walk(v, child)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, path+"["+strconv.Itoa(i)+"]")
			}
		}
	}
	walk(&doc, "")
	return out
}

// duplicateJSONKeys scans the JSON text once, without decoding it: object
// keys are compared as they are written (decoded only when they hold an
// escape or bytes that are not UTF-8), and an entry's path is only built for
// a key written twice. At the first syntax error it stops with what it found:
// OPA's reader reports the error.
func duplicateJSONKeys(file string, content []byte) []acl.Problem {
	s := &jsonKeyScanner{file: file, content: content, line: 1}
	s.value()
	return s.out
}

// jsonKeyScanner walks JSON text, reporting object keys written twice.
type jsonKeyScanner struct {
	file    string
	content []byte
	pos     int
	// line is the line of lineOffset: lines are counted incrementally, as
	// the scanner only moves forward.
	line, lineOffset int
	// path holds the object keys (index < 0) and list indices leading to
	// the value being scanned.
	path   []pathSeg
	out    []acl.Problem
	failed bool
}

type pathSeg struct {
	key   []byte
	index int
}

// smallObject is the number of keys up to which an object's keys are
// compared in a list rather than a map.
const smallObject = 16

func (s *jsonKeyScanner) lineAt(offset int) int {
	if offset > s.lineOffset {
		s.line += bytes.Count(s.content[s.lineOffset:offset], []byte{'\n'})
		s.lineOffset = offset
	}
	return s.line
}

func (s *jsonKeyScanner) skipSpace() {
	for s.pos < len(s.content) {
		switch s.content[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value scans one JSON value.
func (s *jsonKeyScanner) value() {
	s.skipSpace()
	if s.pos >= len(s.content) {
		s.failed = true
		return
	}
	switch c := s.content[s.pos]; {
	case c == '{':
		s.object()
	case c == '[':
		s.array()
	case c == '"':
		if _, ok := s.str(); !ok {
			s.failed = true
		}
	default:
		start := s.pos
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
}

// str scans a string and returns its raw text between the quotes.
func (s *jsonKeyScanner) str() (raw []byte, ok bool) {
	start := s.pos + 1
	for i := start; i < len(s.content); i++ {
		switch s.content[i] {
		case '"':
			s.pos = i + 1
			return s.content[start:i], true
		case '\\':
			i++
		}
	}
	return nil, false
}

// key returns a key's value as the JSON decoder would: its raw text unless
// it holds an escape or bytes that are not UTF-8.
func (s *jsonKeyScanner) key(raw []byte) []byte {
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

func (s *jsonKeyScanner) object() {
	s.pos++ // {
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
		raw, ok := s.str()
		if !ok {
			s.failed = true
			return
		}
		line := s.lineAt(s.pos)
		k := s.key(raw)
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
		s.path = append(s.path, pathSeg{key: k, index: -1})
		if dup {
			s.out = append(s.out, acl.Problem{File: s.file, Entry: s.entry(),
				Message: fmt.Sprintf("key %q is defined twice (lines %d and %d)", string(k), first, line)})
		}
		s.skipSpace()
		if s.pos >= len(s.content) || s.content[s.pos] != ':' {
			s.failed = true
			return
		}
		s.pos++
		s.value()
		s.path = s.path[:len(s.path)-1]
		if s.afterElement('}') {
			return
		}
	}
}

func (s *jsonKeyScanner) array() {
	s.pos++ // [
	s.skipSpace()
	if s.pos < len(s.content) && s.content[s.pos] == ']' {
		s.pos++
		return
	}
	for i := 0; !s.failed; i++ {
		s.path = append(s.path, pathSeg{index: i})
		s.value()
		s.path = s.path[:len(s.path)-1]
		if s.afterElement(']') {
			return
		}
	}
}

// afterElement reads what follows an object member or array element: a
// ',' (false: another comes) or closer (true). Anything else marks the
// input malformed and is true as well.
func (s *jsonKeyScanner) afterElement(closer byte) (done bool) {
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

// entry names the value being scanned as problems do: keys joined by ".",
// list indices as "[i]".
func (s *jsonKeyScanner) entry() string {
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

func joinEntry(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
