package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/internal/testdemo"
)

func TestDiffExitCodes(t *testing.T) {
	changed := testdemo.Write(t, testdemo.FreezePortfolioWrites)
	unchanged := demoBundle

	res := verdict(t, "", "diff", "--bundle", demoBundle, "--candidate", unchanged)
	if res.code != 0 || !strings.Contains(res.stdout, "allow → deny  0") {
		t.Errorf("unchanged candidate: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	res = verdict(t, "", "diff", "--bundle", demoBundle, "--candidate", "demo="+changed)
	if res.code != 1 || !strings.Contains(res.stdout, "allow → deny  tenant bank  action finmars:Portfolio:update") ||
		!strings.Contains(res.stdout, "new: deny 403  iam.explicit_deny freeze-portfolio-writes#0") {
		t.Errorf("candidate with a Deny: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	res = verdict(t, "", "diff", "--bundle", demoBundle, "--candidate", changed, "--format", "json")
	var report struct {
		Questions, Unchanged, AllowToDeny int
		Groups                            []struct{ Tenant, Action, Change string }
	}
	if err := json.Unmarshal([]byte(res.stdout), &report); err != nil || res.code != 1 {
		t.Fatalf("--format json: exit %d, %v\n%s%s", res.code, err, res.stdout, res.stderr)
	}
	for _, g := range report.Groups {
		if g.Tenant != "bank" || !strings.HasPrefix(g.Action, "finmars:Portfolio:") || !strings.HasSuffix(g.Action, "update") {
			t.Errorf("--format json: unexpected group %+v", g)
		}
	}

	broken := acmeBundle(t, strings.Replace(acmeTenant, "roles: [viewer]", "roles: [viwer]", 1))
	res = verdict(t, "", "diff", "--bundle", demoBundle, "--candidate", "demo="+broken)
	if res.code != 2 || !strings.Contains(res.stderr, `unknown role "viwer"`) {
		t.Errorf("candidate that does not load: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	res = verdict(t, "", "diff", "--bundle", demoBundle, "--candidate", changed, "--requests", filepath.Join(t.TempDir(), "missing"))
	if res.code != 2 {
		t.Errorf("missing requests file: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}

func TestDiffRequestsFile(t *testing.T) {
	changed := testdemo.Write(t, testdemo.FreezePortfolioWrites)
	requests := strings.Join([]string{
		`{"tenant":"bank","member":"user_a","action":"finmars:Portfolio:update","resource":{"frn":"frn:finmars:portfolios:portfolio:bonds-portfolio"}}`,
		`not json`,
		`{"decision_id":"d1","time":"2026-12-07T00:00:00Z","input":{"tenant":"bank","member":"olivia","request":{"method":"GET","path":"/api/v1/instruments/instrument/"}},"result":{"allow":true}}`,
		`{"tenant":"bank","member":"user_a","request":{"method":"FETCH","path":"/x"}}`,
	}, "\n") + "\n"
	res := verdict(t, requests, "diff", "--bundle", demoBundle, "--candidate", changed, "--requests", "-")
	if res.code != 1 {
		t.Fatalf("exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{"questions     2\n", "allow → deny  1\n", "malformed     2 line(s) skipped"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, res.stdout)
		}
	}
	for _, want := range []string{"stdin line 2: skipped: not a JSON object", `stdin line 4: skipped: request.method: unknown HTTP method "FETCH"`} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, res.stderr)
		}
	}
	res = verdict(t, "garbage\n", "diff", "--bundle", demoBundle, "--candidate", changed, "--requests", "-")
	if res.code != 2 || !strings.Contains(res.stderr, "no question") {
		t.Errorf("no valid line: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}

func TestAccessCommands(t *testing.T) {
	res := verdict(t, "", "access", "who-can", "--bundle", demoBundle, "--tenant", "bank", "--action", "finmars:Portfolio:retrieve",
		"--frn", "frn:finmars:portfolios:portfolio:bonds-portfolio")
	if res.code != 0 {
		t.Fatalf("exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	var members []string
	for _, l := range lines[1 : len(lines)-1] {
		members = append(members, strings.Fields(l)[0])
	}
	if strings.Join(members, " ") != "admin head_of_banking user_a" || lines[len(lines)-1] != "3 of 6 members allowed" {
		t.Errorf("who-can table:\n%s", res.stdout)
	}
	if strings.Contains(res.stderr, "[") {
		t.Errorf("a progress bar was drawn on a pipe: %q", res.stderr)
	}

	res = verdict(t, "", "access", "what-can", "--bundle", demoBundle, "--tenant", "bank", "--member", "olivia", "--format", "csv")
	want := "tenant,action,visibility,reasons\n" +
		"bank,finmars:Instrument:list,full,iam.allow instrument-read#0; resource.any instrument-read#0\n" +
		"bank,finmars:Instrument:retrieve,full,iam.allow instrument-read#0; resource.any instrument-read#0\n"
	if res.code != 0 || res.stdout != want {
		t.Errorf("what-can csv: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"who-can", "--tenant", "nope", "--action", "finmars:Portfolio:list"}, `unknown tenant "nope"`},
		{[]string{"who-can", "--tenant", "bank", "--action", "finmars:Nothing:list"}, `unknown action "finmars:Nothing:list"`},
		{[]string{"what-can", "--tenant", "bank", "--member", "ghost"}, `unknown member "ghost"`},
	} {
		res := verdict(t, "", append([]string{"access"}, tc.args...)...)
		if res.code == 0 || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("access %v: exit %d, stderr %q, want %q", tc.args, res.code, res.stderr, tc.want)
		}
	}
}
