package e2e

import (
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/test/e2eutil"
)

func TestTestCommandOnTheDemo(t *testing.T) {
	res := verdict(t, "", "test", demoBundle)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if !strings.Contains(res.stdout, "17 passed, 0 failed") {
		t.Errorf("summary missing or changed:\n%s", res.stdout)
	}
}

func TestTestCommandReportsFailures(t *testing.T) {
	dir := e2eutil.WriteFiles(t, map[string]string{
		"verdict/tenants/acme/data.yaml": `
members:
  ann: {policies: [read]}
access_policies:
  read:
    Statement:
      - {Effect: Allow, Action: "finmars:Portfolio:list", Resource: "*"}
`,
		"verdict/acme_test.rego": `package verdict.acme_test

test_passes if true

test_fails if 1 == 2
`,
		"fixtures/decisions_test.yaml": `
cases:
  - name: ann lists portfolios
    input: {tenant: acme, member: ann, action: "finmars:Portfolio:list"}
    expect: {allow: true, reasons: [iam.allow, resource.any]}
  - name: a wrong expectation
    input: {tenant: acme, member: ann, action: "finmars:Portfolio:destroy"}
    expect: {allow: true, status: 200}
`,
	})
	res := verdict(t, "", "test", dir)
	if res.code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{
		"FAIL  rego  verdict.acme_test.test_fails",
		"FAIL  case  bundle/fixtures/decisions_test.yaml:6: a wrong expectation",
		"allow is false, want true",
		"status is 403, want 200",
		"2 passed, 2 failed",
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, res.stdout)
		}
	}
}

func TestCheckRunsLintRules(t *testing.T) {
	dir := e2eutil.WriteFiles(t, map[string]string{
		"verdict/tenants/acme/data.yaml": `
members:
  ann: {policies: [all]}
access_policies:
  all:
    Statement:
      - {Effect: Allow, Action: "finmars:*", Resource: "*"}
`,
		"verdict/lint/lint.rego": `package verdict.lint

deny contains sprintf("policy %s allows everything", [name]) if {
	some name, p in input.tenants.acme.access_policies
	some s in p.Statement
	s.Action == "finmars:*"
}
`,
	})
	res := verdict(t, "", "check", dir)
	if res.code != 1 || !strings.Contains(res.stderr, "lint: policy all allows everything") {
		t.Fatalf("exit %d, want 1 with the lint message\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
}
