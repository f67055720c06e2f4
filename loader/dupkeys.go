package loader

import (
	"fmt"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/loader/jsonkeys"
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

// duplicateJSONKeys scans the JSON text once, without decoding it
// (jsonkeys.Duplicates, the scanner API request bodies are checked with
// too). At the first syntax error it stops with what it found: OPA's reader
// reports the error.
func duplicateJSONKeys(file string, content []byte) []acl.Problem {
	var out []acl.Problem
	for _, d := range jsonkeys.Duplicates(content) {
		out = append(out, acl.Problem{File: file, Entry: d.Path,
			Message: fmt.Sprintf("key %q is defined twice (lines %d and %d)", d.Key, d.FirstLine, d.Line)})
	}
	return out
}

func joinEntry(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
