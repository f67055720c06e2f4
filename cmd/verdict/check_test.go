package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/internal/testfiles"
)

// notesBundle is a catalog with a notes viewset and a tenant whose policies
// end with the statements a case appends.
func notesBundle(statements string) map[string]string {
	return map[string]string{
		"verdict/catalog/data.yaml": `
services:
  notes:
    routes:
      - {path: /api/v1/notes/note/, viewset: Note}
`,
		"verdict/tenants/bank/data.yaml": `
members:
  user_a: {policies: [notes]}
access_policies:
  notes:
    Statement:
      - {Effect: Allow, Action: "finmars:Note:*", Resource: "*"}
` + statements,
		"tests/notes_test.yaml": `
cases:
  - name: user_a deletes a note
    input: {tenant: bank, member: user_a, action: "finmars:Note:destroy"}
    expect: {allow: true}
`,
	}
}

// A new user's first mistakes are caught by `verdict check` and `verdict
// test` with a message naming the file, the entry and the fix: a misspelt
// Deny (which would widen access), a misspelt Allow or member field
// (warnings), a path one level too deep, a directory with no verdict data,
// and a test run that finds no test.
func TestCheckCatchesFirstMistakes(t *testing.T) {
	tests := []struct {
		name     string
		command  string
		files    map[string]string
		path     string // relative to the bundle directory
		wantCode int
		wantOut  []string
		wantErr  []string
		notOut   []string
	}{
		{
			name: "a misspelt Deny is an error with the closest action", command: "check",
			files:    notesBundle(`      - {Effect: Deny, Action: "finmars:Note:destory", Resource: "*"}` + "\n"),
			wantCode: 1,
			wantErr: []string{`error: bundle b: verdict/tenants/bank/data.yaml: access_policies.notes.Statement[1].Action[0]: ` +
				`action "finmars:Note:destory" matches no action of the catalog's routes or of a registered service, so this Deny would forbid nothing; did you mean "finmars:Note:destroy"?`},
			notOut: []string{"ok:"},
		},
		{
			name: "a misspelt Allow and a misspelt member field are warnings", command: "check",
			files: func() map[string]string {
				f := notesBundle(`      - {Effect: Allow, Action: "finmars:Note:retreive", Resource: "*"}` + "\n")
				f["verdict/tenants/bank/data.yaml"] = strings.Replace(f["verdict/tenants/bank/data.yaml"], "{policies: [notes]}", "{policies: [notes], rolse: [viewer]}", 1)
				return f
			}(),
			wantCode: 0,
			wantOut: []string{
				`warning: bundle b: verdict/tenants/bank/data.yaml: members.user_a.rolse: unknown field; it is ignored`,
				`warning: bundle b: verdict/tenants/bank/data.yaml: access_policies.notes.Statement[1].Action[0]: action "finmars:Note:retreive" matches no action of the catalog's routes or of a registered service: this Allow grants nothing; did you mean "finmars:Note:retrieve"?`,
				"ok: 1 bundle(s), 1 service(s), 1 tenant(s), 1 member(s), 1 access policy\n",
			},
		},
		{
			name: "check: a path one level too deep", command: "check", files: notesBundle(""), path: "verdict",
			wantCode: 1,
			wantErr: []string{`error: bundle verdict (DIR/verdict): no verdict data, but catalog/ and tenants/ at the bundle's top; ` +
				`verdict reads services and products from verdict/catalog/data.yaml`, `DIR/verdict is one level too deep: give DIR`},
			notOut: []string{"ok:"},
		},
		{
			name: "test: a path one level too deep", command: "test", files: notesBundle(""), path: "verdict",
			wantCode: 1,
			wantErr:  []string{`DIR/verdict is one level too deep: give DIR`},
			notOut:   []string{"passed"},
		},
		{
			name: "check: a directory with no verdict data", command: "check", files: notesBundle(""), path: "tests",
			wantCode: 1,
			wantErr:  []string{`error: no verdict data in DIR/tests: no service, product or tenant; verdict reads services and products from verdict/catalog/data.yaml`},
			notOut:   []string{"ok:"},
		},
		{
			name: "check: a data file instead of the bundle", command: "check", files: notesBundle(""), path: "verdict/tenants/bank/data.yaml",
			wantCode: 1,
			wantErr: []string{`error: bundle data.yaml: DIR/verdict/tenants/bank/data.yaml is neither a directory nor a .tar.gz (it has no gzip header): ` +
				`a bundle is a directory (the one holding verdict/, e.g. verdict/tenants/<code>/data.yaml) or a .tar.gz of one`},
			notOut: []string{"ok:"},
		},
		{
			name: "test: no test found", command: "test",
			files: func() map[string]string {
				f := notesBundle("")
				delete(f, "tests/notes_test.yaml")
				return f
			}(),
			wantCode: 1,
			wantErr:  []string{`no test found in DIR: verdict looked for test_ rules in *_test.rego modules and for decision fixtures named *_test.yaml, *_test.yml or *_test.json`},
			notOut:   []string{"passed"},
		},
		{
			name: "test: the fixture passes", command: "test", files: notesBundle(""),
			wantCode: 0, wantOut: []string{"1 passed, 0 failed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "b")
			testfiles.Write(t, dir, tt.files)
			stdout, stderr, code, err := runVerdict(t, tt.command, filepath.Join(dir, tt.path))
			if err != nil {
				stderr += "verdict: " + err.Error() + "\n"
			}
			stdout = strings.ReplaceAll(stdout, dir, "DIR")
			stderr = strings.ReplaceAll(stderr, dir, "DIR")
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout, stderr)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			for _, w := range tt.notOut {
				if strings.Contains(stdout, w) {
					t.Errorf("stdout has %q:\n%s", w, stdout)
				}
			}
		})
	}
}
