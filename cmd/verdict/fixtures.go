package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/loader/acl"
)

// fixtureCase is one case of a decision fixture file:
//
//	cases:
//	  - name: …
//	    input: {…a decision request…}
//	    expect: {allow, status, visibility, reasons}
type fixtureCase struct {
	Name   string
	Input  decision.Request
	Expect fixtureExpect
	// Line is where the case starts in its file.
	Line int
	// Problem, when set, is why the case cannot run: it fails with it.
	Problem string
}

type fixtureExpect struct {
	Allow      *bool
	Status     int
	Visibility string
	Reasons    []string
}

var (
	caseFields   = []string{"name", "input", "expect"}
	expectFields = []string{"allow", "status", "visibility", "reasons"}
)

// readFixtures parses a fixture file (YAML, or JSON, which is YAML). A
// problem of the file as a whole (syntax, shape) is an error naming the file
// and the line; a problem of one case (an unknown or mistyped field, a
// malformed input, no expect) is kept on that case, so the other cases
// still run and the case fails with a message naming its line.
func readFixtures(file string, raw []byte) ([]fixtureCase, error) {
	if se := loader.ParseSyntaxError(file, raw); se != nil {
		return nil, se
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: the file is empty; a fixture file is an object with a list of cases: cases: [{name, input, expect}, …]", file)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: line %d: a fixture file is an object with a list of cases (cases: [{name, input, expect}, …]), not %s; put the list under cases:",
			file, root.Line, nodeKind(root))
	}
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "cases" {
			return nil, fmt.Errorf("%s: line %d: unknown field %q; a fixture file has only cases", file, k.Line, k.Value)
		}
		list = v
	}
	if list == nil || list.Kind != yaml.SequenceNode {
		line := root.Line
		if list != nil {
			line = list.Line
		}
		return nil, fmt.Errorf("%s: line %d: cases must be a list of cases ({name, input, expect})", file, line)
	}
	out := make([]fixtureCase, 0, len(list.Content))
	for i, n := range list.Content {
		c := fixtureCase{Name: fmt.Sprintf("case %d", i), Line: n.Line}
		c.Problem = c.parse(n)
		out = append(out, c)
	}
	return out, nil
}

// parse reads one case; it returns what is wrong with it, or "".
func (c *fixtureCase) parse(n *yaml.Node) string {
	if n.Kind != yaml.MappingNode {
		return fmt.Sprintf("line %d: a case is an object {name, input, expect}, not %s", n.Line, nodeKind(n))
	}
	var input, expect *yaml.Node
	var problems []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "name":
			if err := v.Decode(&c.Name); err != nil || v.Kind != yaml.ScalarNode {
				problems = append(problems, fmt.Sprintf("line %d: name must be a string", v.Line))
			}
		case "input":
			input = v
		case "expect":
			expect = v
		default:
			problems = append(problems, unknownField(k, "case", caseFields))
		}
	}
	if input == nil {
		problems = append(problems, fmt.Sprintf("line %d: the case has no input (a decision request)", n.Line))
	} else if err := decodeInput(input, &c.Input); err != nil {
		problems = append(problems, fmt.Sprintf("line %d: input: %v", input.Line, err))
	}
	if expect == nil {
		problems = append(problems, fmt.Sprintf("line %d: the case has no expect; say what the decision must be (allow, status, visibility or reasons): a case that checks nothing would always pass", n.Line))
	} else {
		problems = append(problems, c.Expect.parse(expect)...)
	}
	return strings.Join(problems, "; ")
}

func (e *fixtureExpect) parse(n *yaml.Node) []string {
	if n.Kind != yaml.MappingNode {
		return []string{fmt.Sprintf("line %d: expect is an object {allow, status, visibility, reasons}, not %s", n.Line, nodeKind(n))}
	}
	var problems []string
	checked := 0
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var err error
		switch k.Value {
		case "allow":
			var b bool
			if err = decodeScalar(v, "!!bool", &b); err == nil {
				e.Allow = &b
			}
		case "status":
			err = decodeScalar(v, "!!int", &e.Status)
		case "visibility":
			err = decodeScalar(v, "!!str", &e.Visibility)
		case "reasons":
			if v.Kind != yaml.SequenceNode || v.Decode(&e.Reasons) != nil {
				err = fmt.Errorf("must be a list of reason codes")
			} else if e.Reasons == nil {
				e.Reasons = []string{}
			}
		default:
			problems = append(problems, unknownField(k, "expect", expectFields))
			continue
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("line %d: expect.%s %v", v.Line, k.Value, err))
			continue
		}
		checked++
	}
	if checked == 0 && len(problems) == 0 {
		problems = append(problems, fmt.Sprintf("line %d: expect checks nothing; give allow, status, visibility or reasons", n.Line))
	}
	return problems
}

// decodeScalar decodes a scalar of the YAML tag want into out.
func decodeScalar(v *yaml.Node, want string, out any) error {
	if v.Kind != yaml.ScalarNode || v.ShortTag() != want {
		hint := map[string]string{"!!bool": "must be true or false", "!!int": "must be a number such as 403", "!!str": "must be a string"}[want]
		return fmt.Errorf("%s, not %q", hint, v.Value)
	}
	return v.Decode(out)
}

// decodeInput decodes a case's input as /v1/decide decodes a request body:
// an unknown field is an error.
func decodeInput(n *yaml.Node, req *decision.Request) error {
	var v any
	if err := n.Decode(&v); err != nil {
		return err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		return fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// unknownField describes a misspelt key, with the closest known one.
func unknownField(k *yaml.Node, where string, known []string) string {
	msg := fmt.Sprintf("line %d: unknown field %q in %s (it has %s)", k.Line, k.Value, where, strings.Join(known, ", "))
	if best, ok := acl.ClosestName(k.Value, known); ok {
		msg += fmt.Sprintf("; did you mean %q?", best)
	}
	return msg
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "an object"
	}
	return fmt.Sprintf("the value %q", n.Value)
}
