package loader

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// SyntaxError is a data file of a bundle that does not parse: its path
// inside the bundle (as problems name files, verdict/tenants/acme/data.yaml),
// the 1-based line where the parser stopped, and the parser's message.
type SyntaxError struct {
	File    string
	Line    int
	Message string
}

func (e *SyntaxError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s: line %d: %s", e.File, e.Line, e.Message)
	}
	return e.File + ": " + e.Message
}

// dataSyntaxError parses again the data file that OPA's reader failed on,
// which its error names, to report it as a *SyntaxError with the file's
// path in the bundle and the line the parser stopped at. It returns nil
// when the error names no data file of the bundle, or that file parses.
func (l *recordingLoader) dataSyntaxError(readErr error) *SyntaxError {
	msg := readErr.Error()
	for _, f := range l.dataFiles {
		if !strings.Contains(msg, "failed on "+f.path+":") {
			continue
		}
		content, err := io.ReadAll(flate.NewReader(bytes.NewReader(f.deflated)))
		if err != nil {
			return nil
		}
		return ParseSyntaxError(strings.TrimPrefix(f.path, "/"), content)
	}
	return nil
}

// ParseSyntaxError is the syntax error of a data file's content (YAML, or
// JSON for a .json file) with its 1-based line, or nil when it parses.
func ParseSyntaxError(file string, content []byte) *SyntaxError {
	if strings.HasSuffix(file, ".json") {
		var v any
		err := json.Unmarshal(content, &v)
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return &SyntaxError{File: file, Line: 1 + bytes.Count(content[:min(int(se.Offset), len(content))], []byte{'\n'}), Message: se.Error()}
		}
		if err != nil {
			return &SyntaxError{File: file, Message: err.Error()}
		}
		return nil
	}
	var doc yaml.Node
	err := yaml.Unmarshal(content, &doc)
	if err == nil {
		return nil
	}
	return yamlSyntaxError(file, err)
}

var yamlErrorRE = regexp.MustCompile(`(?s)^yaml: (?:line (\d+): )?(.*)$`)

// yamlParserErrors are the messages of go-yaml's parser (not its scanner).
// For them go-yaml writes the 0-based line of the mark ("line 6" for an
// unclosed "[" on line 7); scanner errors carry the 1-based line.
var yamlParserErrors = []string{
	"did not find expected <stream-start>",
	"did not find expected <document start>",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found duplicate %TAG directive",
	"found undefined tag handle",
	"did not find expected node content",
	"did not find expected key",
	"did not find expected '-' indicator",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
}

// yamlSyntaxError turns go-yaml's error into a *SyntaxError with the
// 1-based line.
func yamlSyntaxError(file string, err error) *SyntaxError {
	m := yamlErrorRE.FindStringSubmatch(err.Error())
	if m == nil {
		return &SyntaxError{File: file, Message: err.Error()}
	}
	se := &SyntaxError{File: file, Message: m[2]}
	if m[1] != "" {
		se.Line, _ = strconv.Atoi(m[1])
		for _, p := range yamlParserErrors {
			if strings.HasPrefix(m[2], p) {
				se.Line++
				break
			}
		}
	}
	return se
}
