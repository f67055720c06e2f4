package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/internal/testfiles"
)

// stateBundle refers to the service requisition, which no bundle declares:
// it is registered at run time. Its tenant's delegation refers to the
// permittable group of the bundle's service portfolio, and its fixture
// needs rhythm's run-time delegation for the registered service.
var stateBundle = map[string]string{
	".manifest": `{"revision": "1", "roots": ["verdict"]}`,
	"verdict/catalog/data.yaml": `
services:
  portfolio:
    routes:
      - {method: POST, path: /portfolio/v1/khepri/beats, action: "portfolio:khepri:beat"}
    permittable_groups:
      portfolio__v1__khepri: [{method: POST, path: /portfolio/v1/khepri/beats}]
products:
  PROD1:
    packages:
      PROD1_PCK1:
        acl:
          requisition: {}
`,
	"verdict/tenants/bank/data.yaml": `
name: Bank
applications:
  app1: {package: PROD1_PCK1}
members:
  admin: {is_admin: true}
delegations:
  rhythm:
    portfolio__v1__khepri: {operations: [CHANGE], enabled_by: [admin]}
`,
	"tests/requisition_test.yaml": `
cases:
  - name: rhythm approves a requisition for admin
    input: {tenant: bank, member: admin, application: rhythm,
            request: {method: POST, path: /api/requisitions/42/approve}}
    expect: {allow: true}
`,
}

// State files, as verdict run writes them.
const (
	requisitionFile = `{"version": 1, "name": "requisition", "registered_at": "2026-11-22T10:00:00Z",
  "document": {"routes": [{"method": "POST", "path": "/api/requisitions/{id}/approve", "action": "requisition:requisitions:approve"}],
               "permittable_groups": {"requisition__v1": [{"method": "POST", "path": "/api/requisitions/{id}/approve"}]}}}`
	// A registration that no longer validates (a path without a slash).
	requisitionInvalidFile = `{"version": 1, "name": "requisition", "registered_at": "2026-11-22T10:00:00Z",
  "document": {"routes": [{"method": "POST", "path": "no-slash", "action": "requisition:requisitions:approve"}]}}`
	// A registration overriding the bundle's portfolio, without its
	// permittable group.
	portfolioFile = `{"version": 1, "name": "portfolio", "registered_at": "2026-11-22T10:00:00Z",
  "document": {"routes": [{"method": "POST", "path": "/portfolio/v1/khepri/beats", "action": "portfolio:khepri:beat"}]}}`
	delegationFile = `{"version": 1, "tenant": "bank", "application": "rhythm", "group": "requisition__v1",
  "request": {"operations": ["CHANGE"], "at": "2026-11-22T10:00:00Z"},
  "consents": {"admin": {"enabled": true, "at": "2026-11-22T10:00:00Z"}}}`
	badOperationFile = `{"version": 1, "tenant": "bank", "application": "rhythm", "group": "requisition__v1",
  "request": {"operations": ["FLY"], "at": "2026-11-22T10:00:00Z"}}`
)

// runVerdict runs the verdict command line in-process and returns what it
// printed, its exit code (as main would exit) and the error main would
// print.
func runVerdict(t *testing.T, args ...string) (stdout, stderr string, code int, err error) {
	t.Helper()
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	var exit *exitError
	switch {
	case errors.As(err, &exit):
		code, err = exit.code, nil
	case err != nil:
		code = 1
	}
	return out.String(), errOut.String(), code, err
}

// `verdict check` and `verdict test` see what `verdict run --state-dir DIR`
// restores before the bundles: a bundle referring to a registered service is
// valid with the state directory and invalid without it, a registration
// overriding a bundle's service drops what the bundle's service declared,
// state files verdict run would refuse to start with are errors, and the state
// directory is only read.
func TestStateDirForCheckAndTest(t *testing.T) {
	const (
		noState      = "-"       // no --state-dir
		missingState = "missing" // --state-dir names a directory that does not exist
	)
	tests := []struct {
		name    string
		command string
		// state is the state directory's files; noState or missingState as
		// its only key.
		state    map[string]string
		wantCode int
		// wantOut and wantErr are substrings of stdout and of stderr plus
		// the error main prints; DIR stands for the state directory.
		wantOut, wantErr []string
		notOut           []string
	}{
		{
			name: "check: a service registered only at run time is unknown without --state-dir", command: "check",
			state: map[string]string{noState: ""}, wantCode: 1,
			wantErr: []string{`error: bundle b: verdict/catalog/data.yaml: products.PROD1.packages.PROD1_PCK1.acl.requisition: unknown service "requisition"`},
		},
		{
			name: "check: the service registered in --state-dir", command: "check",
			state:    map[string]string{"services/requisition.json": requisitionFile},
			wantCode: 0, wantOut: []string{"ok: 1 bundle(s), 1 service(s), 1 registered service(s), 1 tenant(s)"},
			notOut: []string{"warning"},
		},
		{
			name: "check: --state-dir that does not exist is an error and is not created", command: "check",
			state: map[string]string{missingState: ""}, wantCode: 1,
			wantErr: []string{"--state-dir: state directory DIR does not exist"},
		},
		{
			name: "check: an empty state directory registers nothing", command: "check",
			state: map[string]string{}, wantCode: 1,
			wantErr: []string{`unknown service "requisition"`},
		},
		{
			name: "check: a corrupt state file is an error, as verdict run refuses it; a leftover temporary file is left alone", command: "check",
			state: map[string]string{
				"services/requisition.json":        requisitionFile,
				"services/broken.json":             `{"version":`,
				"services/.requisition.json.tmp12": `{"half`,
			},
			wantCode: 1,
			wantErr: []string{
				"--state-dir: state directory DIR holds 1 entry that cannot be used:\n  DIR/services/broken.json: not a valid state file: unexpected EOF\n",
				"restore the files from a backup, or fix or remove them",
			},
			notOut: []string{"tmp12", "ok:"},
		},
		{
			name: "check: a registration that no longer validates is an error", command: "check",
			state:    map[string]string{"services/requisition.json": requisitionInvalidFile},
			wantCode: 1,
			wantErr:  []string{"DIR/services/requisition.json: service requisition: the registered document no longer validates: routes[0].path: "},
		},
		{
			name: "check: a delegation with an unknown operation is an error", command: "check",
			state: map[string]string{
				"services/requisition.json": requisitionFile,
				"delegations/bad.json":      badOperationFile,
			},
			wantCode: 1,
			wantErr:  []string{"DIR/delegations/bad.json: delegation bank/rhythm/requisition__v1: request.operations: [0]: unknown operation \"FLY\""},
		},
		{
			name: "check: a registration overrides the bundle's service and its permittable groups", command: "check",
			state: map[string]string{
				"services/requisition.json": requisitionFile,
				"services/portfolio.json":   portfolioFile,
			},
			wantCode: 1,
			wantErr:  []string{`error: bundle b: verdict/tenants/bank/data.yaml: delegations.rhythm.portfolio__v1__khepri: unknown permittable group "portfolio__v1__khepri"`},
		},
		{
			name: "test: a service registered only at run time is unknown without --state-dir", command: "test",
			state: map[string]string{noState: ""}, wantCode: 1,
			wantErr: []string{"load bundles:", `unknown service "requisition"`},
		},
		{
			name: "test: the registered service, without rhythm's run-time delegation", command: "test",
			state:    map[string]string{"services/requisition.json": requisitionFile},
			wantCode: 1,
			wantOut:  []string{"FAIL  case  b/tests/requisition_test.yaml:3: rhythm approves a requisition for admin", "delegation.not_requested", "0 passed, 1 failed"},
		},
		{
			name: "test: the registered service and rhythm's run-time delegation", command: "test",
			state: map[string]string{
				"services/requisition.json":                requisitionFile,
				"delegations/bank,rhythm,requisition.json": delegationFile,
			},
			wantCode: 0,
			wantOut:  []string{"1 passed, 0 failed"},
		},
		{
			name: "test: a corrupt state file is an error", command: "test",
			state: map[string]string{
				"services/requisition.json":                requisitionFile,
				"delegations/bank,rhythm,requisition.json": delegationFile,
				"delegations/broken.json":                  `not json`,
			},
			wantCode: 1,
			wantErr:  []string{"DIR/delegations/broken.json: not a valid state file"},
			notOut:   []string{"passed"},
		},
		{
			name: "test: --state-dir that does not exist is an error and is not created", command: "test",
			state: map[string]string{missingState: ""}, wantCode: 1,
			wantErr: []string{"--state-dir: state directory DIR does not exist"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			bundle := filepath.Join(base, "b")
			testfiles.Write(t, bundle, stateBundle)
			stateDir := filepath.Join(base, "state")
			args := []string{tt.command}
			_, none := tt.state[noState]
			_, missing := tt.state[missingState]
			if !none {
				args = append(args, "--state-dir", stateDir)
			}
			if !none && !missing {
				if err := os.Mkdir(stateDir, 0o700); err != nil {
					t.Fatal(err)
				}
				testfiles.Write(t, stateDir, tt.state)
			}
			var before []string
			if !none && !missing {
				before = testfiles.Tree(t, stateDir)
			}
			args = append(args, "b="+bundle)

			stdout, stderr, code, err := runVerdict(t, args...)
			if err != nil {
				stderr += "verdict: " + err.Error() + "\n"
			}
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout, stderr)
			}
			expand := func(s string) string { return strings.ReplaceAll(s, "DIR", stateDir) }
			for _, want := range tt.wantOut {
				if !strings.Contains(stdout, expand(want)) {
					t.Errorf("stdout lacks %q:\n%s", expand(want), stdout)
				}
			}
			for _, not := range tt.notOut {
				if strings.Contains(stdout, not) {
					t.Errorf("stdout has %q:\n%s", not, stdout)
				}
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(stderr, expand(want)) {
					t.Errorf("stderr lacks %q:\n%s", expand(want), stderr)
				}
			}
			switch {
			case missing:
				if _, err := os.Stat(stateDir); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("the missing state directory was created (%v)", err)
				}
			case !none:
				if after := testfiles.Tree(t, stateDir); !reflect.DeepEqual(before, after) {
					t.Errorf("the state directory changed:\nbefore %v\nafter  %v", before, after)
				}
			}
		})
	}
}
