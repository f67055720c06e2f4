package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/test/e2eutil"
)

const manifest = `{"revision": "r1", "roots": ["verdict"]}`

// acmeTenant is a small valid tenant; tests replace parts of it.
const acmeTenant = `name: Acme
members:
  bob: {roles: [viewer], groups: [staff]}
roles:
  viewer: {policies: [read]}
groups:
  staff: {}
access_policies:
  read:
    Statement:
      - {Effect: Allow, Action: "finmars:Portfolio:list", Resource: "*"}
`

func acmeBundle(t *testing.T, tenantYAML string) string {
	t.Helper()
	return e2eutil.WriteFiles(t, map[string]string{
		".manifest":                      manifest,
		"verdict/tenants/acme/data.yaml": tenantYAML,
	})
}

func TestCheckDemo(t *testing.T) {
	res := verdict(t, "", "check", demoBundle)
	if res.code != 0 {
		t.Fatalf("verdict check demo: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if !strings.HasPrefix(res.stdout, "ok: 1 bundle(s)") {
		t.Errorf("stdout = %q, want an ok summary", res.stdout)
	}
	if strings.Contains(res.stderr, "error:") {
		t.Errorf("stderr = %q", res.stderr)
	}
}

func TestCheckValidBundle(t *testing.T) {
	res := verdict(t, "", "check", acmeBundle(t, acmeTenant))
	if res.code != 0 {
		t.Fatalf("exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}

func TestCheckBadBundles(t *testing.T) {
	const f = "verdict/tenants/acme/data.yaml: "
	tests := []struct {
		name   string
		tenant string
		want   []string // problems that stderr must show
	}{
		{
			name:   "dangling role reference",
			tenant: strings.Replace(acmeTenant, "roles: [viewer]", "roles: [viewer, viwer]", 1),
			want:   []string{f + `members.bob.roles[1]: unknown role "viwer"`},
		},
		{
			name:   "dangling group reference",
			tenant: strings.Replace(acmeTenant, "groups: [staff]", "groups: [stuff]", 1),
			want:   []string{f + `members.bob.groups[0]: unknown group "stuff"`},
		},
		{
			name:   "dangling policy reference",
			tenant: strings.Replace(acmeTenant, "policies: [read]", "policies: [raed]", 1),
			want:   []string{f + `roles.viewer.policies[0]: unknown policy "raed"`},
		},
		{
			name:   "malformed action pattern",
			tenant: strings.Replace(acmeTenant, `"finmars:Portfolio:list"`, `"finmars::list"`, 1),
			want:   []string{f + `access_policies.read.Statement[0].Action[0]: action pattern "finmars::list" has an empty part`},
		},
		{
			name:   "malformed FRN",
			tenant: strings.Replace(acmeTenant, `Resource: "*"`, `Resource: "frn:finmars:portfolios:bonds"`, 1),
			want:   []string{f + `access_policies.read.Statement[0].Resource[0]: FRN "frn:finmars:portfolios:bonds" must have the form frn:finmars:<app>:<model>:<user_code>`},
		},
		{
			name:   "condition with no rule",
			tenant: strings.Replace(acmeTenant, `Resource: "*"}`, `Resource: "*", Condition: weekend}`, 1),
			want:   []string{f + `access_policies.read.Statement[0].Condition[0]: condition "weekend" has no rule data.verdict.conditions.weekend in any loaded bundle`},
		},
		{
			name: "several problems at once",
			tenant: strings.NewReplacer("roles: [viewer]", "roles: [viwer]", "groups: [staff]", "groups: [stuff]",
				`Resource: "*"`, `Resource: "frn:finmars:iam:resourcegroup:nope"`).Replace(acmeTenant),
			want: []string{
				f + `members.bob.roles[0]: unknown role "viwer"`,
				f + `members.bob.groups[0]: unknown group "stuff"`,
				f + `access_policies.read.Statement[0].Resource[0]: unknown resource group "frn:finmars:iam:resourcegroup:nope"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := verdict(t, "", "check", acmeBundle(t, tt.tenant))
			if res.code != 1 {
				t.Errorf("exit %d, want 1\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
			}
			if !strings.HasPrefix(res.stderr, "error: ") {
				t.Errorf("stderr does not start with \"error: \":\n%s", res.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("stderr does not name the problem\n  %s\nstderr:\n%s", w, res.stderr)
				}
			}
			if strings.HasPrefix(res.stdout, "ok:") {
				t.Errorf("stdout claims ok: %s", res.stdout)
			}
		})
	}
}

// TestCheckPrintsEveryProblemAsAnErrorLine: `verdict check` prints every
// problem as its own "error: ..." line on stderr, so that each can be read
// (and grepped) on its own.
func TestCheckPrintsEveryProblemAsAnErrorLine(t *testing.T) {
	tenant := strings.NewReplacer("roles: [viewer]", "roles: [viwer]", "groups: [staff]", "groups: [stuff]").Replace(acmeTenant)
	res := verdict(t, "", "check", acmeBundle(t, tenant))
	if res.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", res.code, res.stderr)
	}
	for _, w := range []string{
		`verdict/tenants/acme/data.yaml: members.bob.roles[0]: unknown role "viwer"`,
		`verdict/tenants/acme/data.yaml: members.bob.groups[0]: unknown group "stuff"`,
	} {
		found := false
		for _, line := range strings.Split(res.stderr, "\n") {
			if strings.HasPrefix(line, "error: ") && strings.Contains(line, w) {
				found = true
			}
		}
		if !found {
			t.Errorf("no line \"error: ...%s\" on stderr:\n%s", w, res.stderr)
		}
	}
}

// TestCheckRejectsDuplicateKeys: README "Bundles" says a duplicate key rejects the
// bundle with a message naming the file and the entry. A member written
// twice must not be silently replaced by the second (here: an admin).
func TestCheckRejectsDuplicateKeys(t *testing.T) {
	for _, tc := range []struct{ file, content string }{
		{"verdict/tenants/acme/data.yaml", "members:\n  bob: {roles: []}\n  bob: {is_admin: true}\n"},
		{"verdict/tenants/acme/data.json", `{"members": {"bob": {"roles": []}, "bob": {"is_admin": true}}}`},
	} {
		t.Run(filepath.Ext(tc.file), func(t *testing.T) {
			dir := e2eutil.WriteFiles(t, map[string]string{".manifest": manifest, tc.file: tc.content})
			res := verdict(t, "", "check", dir)
			if res.code != 1 || !strings.Contains(res.stderr, tc.file) || !strings.Contains(res.stderr, "bob") {
				t.Errorf("exit %d; want 1 and a message naming %s and bob\nstdout: %s\nstderr: %s", res.code, tc.file, res.stdout, res.stderr)
			}
		})
	}
}

func TestCheckOverlappingBundles(t *testing.T) {
	a := e2eutil.WriteFiles(t, map[string]string{"verdict/tenants/a/data.yaml": "name: A\n"})
	b := e2eutil.WriteFiles(t, map[string]string{"verdict/tenants/b/data.yaml": "name: B\n"})
	res := verdict(t, "", "check", "a="+a, "b="+b)
	if res.code != 1 || !strings.Contains(res.stderr, "overlaps") {
		t.Errorf("exit %d, want 1 and an overlap error\nstderr: %s", res.code, res.stderr)
	}
}

func TestCheckNeedsAPath(t *testing.T) {
	if res := verdict(t, "", "check"); res.code == 0 {
		t.Errorf("verdict check without a path: exit 0")
	}
	if res := verdict(t, "", "check", filepath.Join(t.TempDir(), "missing")); res.code != 1 || !strings.Contains(res.stderr, "missing") {
		t.Errorf("verdict check on a missing path: exit %d, stderr %q", res.code, res.stderr)
	}
}

func TestEvalExplain(t *testing.T) {
	tests := []struct {
		name string
		req  string
		code int
		want []string
	}{
		{
			name: "allow through a resource group",
			req:  bankReq("user_a", "GET", detail("7"), frn(bonds), ""),
			code: 0,
			want: []string{
				"ALLOW  (status 200, visibility full)",
				"tenant: bank",
				"action: finmars:Portfolio:retrieve",
				"decided by: the iam layer allowed (iam.allow)",
				`policy "portfolio-group-a", statement 0`,
				"Effect: Allow",
				"Resource: frn:finmars:iam:resourcegroup:portfolio_group_a",
				"resource group: portfolio_group_a",
			},
		},
		{
			name: "explicit deny",
			req:  bankReq("head_of_banking", "GET", detail("9"), frn(secret), ""),
			code: 2,
			want: []string{
				"DENY  (status 403, visibility none)",
				"decided by: the iam layer denied (iam.explicit_deny)",
				`policy "deny-secret-portfolio", statement 0`,
				"Effect: Deny",
				"Action: finmars:Portfolio:*",
				"Resource: frn:finmars:portfolios:portfolio:secret-portfolio",
			},
		},
		{
			name: "condition shown",
			req:  bankReq("user_a", "POST", "/api/v1/transactions/transaction/", "", `{"hour": 11}`),
			code: 0,
			want: []string{`policy "office-hours-transactions", statement 0`, "Condition: office_hours"},
		},
		{
			name: "public reference",
			req:  bankReq("user_a", "GET", detail("5"), `{"frn": "`+fx+`", "reference": true}`, ""),
			code: 0,
			want: []string{"ALLOW  (status 200, visibility public)", "visible fields: id, user_code, public_name", "resource.public"},
		},
		{
			name: "unknown route",
			req:  bankReq("admin", "GET", "/nope", "", ""),
			code: 2,
			want: []string{"DENY  (status 404, visibility none)", "route.unknown (SOAJS 130)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := verdict(t, tt.req, "eval", "--explain", "--bundle", demoBundle)
			if res.code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", res.code, tt.code, res.stdout, res.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(res.stdout, w) {
					t.Errorf("the explanation does not mention %q:\n%s", w, res.stdout)
				}
			}
		})
	}
}

func TestEvalJSON(t *testing.T) {
	// Allow: exit 0, the decision as JSON (from a file argument).
	file := filepath.Join(t.TempDir(), "request.json")
	if err := os.WriteFile(file, []byte(bankReq("user_b", "GET", detail("5"), frn(fx), "")), 0o644); err != nil {
		t.Fatal(err)
	}
	res := verdict(t, "", "eval", "--bundle", demoBundle, file)
	if res.code != 0 {
		t.Fatalf("exit %d, want 0\n%s%s", res.code, res.stdout, res.stderr)
	}
	var d Decision
	if err := json.Unmarshal([]byte(res.stdout), &d); err != nil {
		t.Fatalf("stdout is not a decision: %v\n%s", err, res.stdout)
	}
	if !d.Allow || d.Status != 200 || d.Revision["demo"] != "2026-11-22.1" {
		t.Errorf("decision = %+v", d)
	}

	// Deny: exit 2, from stdin, with the embedded demo.
	res = verdict(t, bankReq("intern", "GET", portfolioPath, "", ""), "eval")
	if res.code != 2 {
		t.Fatalf("exit %d, want 2\n%s%s", res.code, res.stdout, res.stderr)
	}
	if err := json.Unmarshal([]byte(res.stdout), &d); err != nil || d.Allow || d.reason("iam.no_allow") == nil {
		t.Errorf("deny decision = %+v (%v)", d, err)
	}

	// Error: exit 1, the problem on stderr.
	for _, bad := range []struct{ req, mention string }{
		{`{"tenant": "bank", "member": 5, "action": "a:b"}`, "member"},
		{`{"tenant": "bank", "action": "finmars::list"}`, "action"},
		{`{"tenant": "bank", "member": "user_a"}`, "request"},
		{`not json`, "request"},
	} {
		res := verdict(t, bad.req, "eval", "--bundle", demoBundle)
		if res.code != 1 || !strings.Contains(res.stderr, bad.mention) {
			t.Errorf("eval %s: exit %d, stderr %q; want 1 and a message about %s", bad.req, res.code, res.stderr, bad.mention)
		}
	}
}

// TestEvalActionWildcardStaysInOnePart: README "How a decision is made" — "*" inside a part
// matches characters of that part only, and unless the last part is
// exactly "*", pattern and action must have the same number of parts. A
// pattern written with a doubled star ("finmars:Port**", "**:list") must
// not grant three-part actions.
func TestEvalActionWildcardStaysInOnePart(t *testing.T) {
	dir := acmeBundle(t, `members:
  m: {policies: [p]}
  k: {policies: [q]}
access_policies:
  p:
    Statement:
      - {Effect: Allow, Action: "finmars:Port**", Resource: "*"}
  q:
    Statement:
      - {Effect: Allow, Action: "**:list", Resource: "*"}
`)
	tests := []struct {
		member, action string
		allow          bool
	}{
		{"m", "finmars:Portfolio", true},
		{"m", "finmars:Portfolio:list", false},
		{"m", "finmars:Portfolio:destroy", false},
		{"k", "finmars:list", true},
		{"k", "finmars:Portfolio:list", false},
	}
	for _, tt := range tests {
		res := verdict(t, req("acme", tt.member, "", tt.action, "", ""), "eval", "--bundle", dir)
		want := 2
		if tt.allow {
			want = 0
		}
		if res.code != want {
			t.Errorf("member %s, action %s: exit %d, want %d (allow %v)\n%s%s", tt.member, tt.action, res.code, want, tt.allow, res.stdout, res.stderr)
		}
	}
}

func TestRunRejectsBadBundle(t *testing.T) {
	dir := acmeBundle(t, strings.Replace(acmeTenant, "roles: [viewer]", "roles: [viewer, viwer]", 1))
	addr, err := e2eutil.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	res := verdict(t, "", "run", "--addr", addr, "--bundle", dir)
	if res.code == 0 {
		t.Errorf("verdict run with a bad bundle exited 0")
	}
	if want := `verdict/tenants/acme/data.yaml: members.bob.roles[1]: unknown role "viwer"`; !strings.Contains(res.stderr, want) {
		t.Errorf("stderr does not name the problem %q:\n%s", want, res.stderr)
	}
}

func TestRunServesACustomBundle(t *testing.T) {
	s := startServer(t, "--bundle", "acme="+acmeBundle(t, acmeTenant))
	d := s.decide(t, req("acme", "bob", "", "finmars:Portfolio:list", "", ""))
	if !d.Allow || d.Revision["acme"] != "r1" {
		t.Errorf("decision = %+v", d)
	}
	if d := s.decide(t, bankReq("admin", "GET", portfolioPath, "", "")); d.Status != 404 || d.reason("tenant.unknown") == nil {
		t.Errorf("the demo is not loaded with --bundle: %+v", d)
	}
}

func TestVersion(t *testing.T) {
	res := verdict(t, "", "version")
	if res.code != 0 || !strings.HasPrefix(res.stdout, "verdict ") || !strings.Contains(res.stdout, "\nopa ") {
		t.Errorf("verdict version: exit %d, stdout %q", res.code, res.stdout)
	}
}
