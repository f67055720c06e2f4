package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/internal/testfiles"
)

// Decision fixtures point at the fix: a misspelt field fails its case (not
// the whole run) with the file, the line and the closest field; a file
// that is a list says to put it under cases:; a case without expect fails
// instead of passing; other cases still run.
func TestFixtureMistakes(t *testing.T) {
	const good = `
  - name: user_a deletes a note
    input: {tenant: bank, member: user_a, action: "finmars:Note:destroy"}
    expect: {allow: true}
`
	tests := []struct {
		name    string
		fixture string
		want    []string
	}{
		{
			name:    "a misspelt expect field",
			fixture: "cases:\n  - name: typo\n    input: {tenant: bank, member: user_a, action: \"finmars:Note:list\"}\n    expect: {alow: true}\n" + good,
			want: []string{
				"FAIL  case  b/tests/notes_test.yaml:2: typo\n",
				`line 4: unknown field "alow" in expect (it has allow, status, visibility, reasons); did you mean "allow"?`,
				"1 passed, 1 failed",
			},
		},
		{
			name:    "a case without expect fails",
			fixture: "cases:\n  - name: no expect\n    input: {tenant: bank, member: user_a, action: \"finmars:Note:list\"}\n" + good,
			want:    []string{"FAIL  case  b/tests/notes_test.yaml:2: no expect\n", "line 2: the case has no expect", "1 passed, 1 failed"},
		},
		{
			name:    "an expect that checks nothing fails",
			fixture: "cases:\n  - name: empty\n    input: {tenant: bank, member: user_a, action: \"finmars:Note:list\"}\n    expect: {}\n" + good,
			want:    []string{"line 4: expect checks nothing", "1 passed, 1 failed"},
		},
		{
			name:    "a mistyped expect value",
			fixture: "cases:\n  - name: yes\n    input: {tenant: bank, member: user_a, action: \"finmars:Note:list\"}\n    expect: {allow: yes, status: ok}\n" + good,
			want:    []string{`line 4: expect.allow must be true or false, not "yes"`, `expect.status must be a number such as 403, not "ok"`, "1 passed, 1 failed"},
		},
		{
			name:    "a misspelt input field",
			fixture: "cases:\n  - name: tenat\n    input: {tenat: bank, member: user_a, action: \"finmars:Note:list\"}\n    expect: {allow: true}\n" + good,
			want:    []string{`line 3: input: unknown field "tenat"`, "1 passed, 1 failed"},
		},
		{
			name:    "a file that is a list",
			fixture: strings.TrimPrefix(strings.ReplaceAll(good, "\n  ", "\n"), "\n"),
			want: []string{"FAIL  file  b/tests/notes_test.yaml\n",
				"line 1: a fixture file is an object with a list of cases (cases: [{name, input, expect}, …]), not a list; put the list under cases:",
				"0 passed, 1 failed"},
		},
		{
			name:    "a YAML syntax error names its line",
			fixture: "cases:\n  - name: broken\n    input: {tenant: bank, member: [user_a}\n",
			want:    []string{"FAIL  file  b/tests/notes_test.yaml\n", "line 3: did not find expected ',' or ']'"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := notesBundle("")
			files["tests/notes_test.yaml"] = tt.fixture
			dir := filepath.Join(t.TempDir(), "b")
			testfiles.Write(t, dir, files)
			stdout, stderr, code, err := runVerdict(t, "test", dir)
			if err != nil || code != 1 {
				t.Fatalf("exit %d, error %v, want 1\n%s%s", code, err, stdout, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("output lacks %q:\n%s", w, stdout)
				}
			}
		})
	}
}
