package loader

import (
	"errors"
	"testing"

	"github.com/verdict-authz/verdict/internal/testfiles"
)

// A data file that does not parse is reported with its path in the bundle
// (not OPA's "/verdict/…") and the line the mistake is on: go-yaml's parser
// errors said one line early ("line 6" for an unclosed "[" on line 7).
func TestDataSyntaxErrorsNameTheFileAndLine(t *testing.T) {
	const file = "verdict/tenants/ta/data.yaml"
	tests := []struct {
		name, file, content string
		wantLine            int
		wantMessage         string
	}{
		{"unclosed [", file, "name: ta\n# a\n# b\n# c\n# d\nmembers:\n  alice: {policies: [read}\n  bob: {}\n", 7, "did not find expected ',' or ']'"},
		{"unclosed {", file, "name: ta\nmembers:\n  alice: {policies: [read]\n  bob: {}\n", 3, "did not find expected ',' or '}'"},
		{"indentation", file, "name: ta\nmembers:\n  alice: {}\n bob: {}\n", 4, "did not find expected key"},
		{"a mapping inside a plain scalar (a scanner error)", file, "name: ta\nmembers: a: b\n", 2, "mapping values are not allowed in this context"},
		{"JSON", "verdict/tenants/ta/data.json", "{\"name\": \"ta\",\n \"members\": {\n  \"alice\": {},,\n }\n}\n", 3, "invalid character ',' looking for beginning of object key string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			testfiles.Write(t, dir, map[string]string{tt.file: tt.content})
			_, err := Read(Source{Name: "a", Location: dir})
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Read: %v, want a *SyntaxError", err)
			}
			if se.File != tt.file || se.Line != tt.wantLine || se.Message != tt.wantMessage {
				t.Errorf("syntax error %+v, want %s line %d %q", se, tt.file, tt.wantLine, tt.wantMessage)
			}
			// The status shows the same.
			l, _ := newTestLoader(t)
			l.LoadAll(t.Context(), []Source{{Name: "a", Location: dir}})
			le := bundleStatus(t, flush(t, l), "a").LastError
			if le == nil || le.File != tt.file || le.Line != tt.wantLine || le.Message != tt.wantMessage {
				t.Errorf("status last error %+v, want %s line %d %q", le, tt.file, tt.wantLine, tt.wantMessage)
			}
		})
	}
}
