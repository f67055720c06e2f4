package loader

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

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

func duplicateJSONKeys(file string, content []byte) []acl.Problem {
	dec := json.NewDecoder(bytes.NewReader(content))
	dec.UseNumber()
	var out []acl.Problem
	// line counts newlines incrementally: the decoder's offsets only grow,
	// and counting from the start for every key is quadratic in the file.
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
			_, err = dec.Token() // }
			return err
		case json.Delim('['):
			for i := 0; dec.More(); i++ {
				if err := walk(path + "[" + strconv.Itoa(i) + "]"); err != nil {
					return err
				}
			}
			_, err = dec.Token() // ]
			return err
		}
		return nil
	}
	if err := walk(""); err != nil && !errors.Is(err, io.EOF) {
		return out // OPA's reader reports syntax errors
	}
	return out
}

func joinEntry(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
