package access_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/access"
	"github.com/verdict-authz/verdict/internal/testdemo"
	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/loader/loadertest"
	"github.com/verdict-authz/verdict/test/worldgen"
)

// tinyWorld is small enough to ask every generated question.
var tinyWorld = worldgen.Spec{Seed: 3, Tenants: 1, Members: 20, Policies: 20, ResourceGroups: 5, ObjectsPerRG: 2, ViewSets: 4, Groups: 4}

// diffAll asks every generated question of both versions and returns the
// report and every difference.
func diffAll(t *testing.T, old, cand *decision.Pinned) (*access.Report, []access.Difference) {
	t.Helper()
	qs, err := access.GenerateQuestions(old, cand, 0)
	if err != nil {
		t.Fatal(err)
	}
	if int64(qs.Count) != qs.Possible {
		t.Fatalf("asked %d of %d questions", qs.Count, qs.Possible)
	}
	report := access.NewReport(old, cand, 1)
	var diffs []access.Difference
	qs.All(func(q *decision.Request) bool {
		c, dOld, dNew, err := report.Ask(context.Background(), old, cand, q)
		if err != nil {
			t.Fatal(err)
		}
		if c != access.Same {
			diffs = append(diffs, access.Difference{Change: c, Tenant: dOld.Tenant, Action: dOld.Action, Question: q, Old: access.AnswerOf(dOld), New: access.AnswerOf(dNew)})
		}
		return true
	})
	if report.Questions != qs.Count {
		t.Fatalf("report counts %d questions, %d were asked", report.Questions, qs.Count)
	}
	return report, diffs
}

func TestUnchangedBundleDiffsToZero(t *testing.T) {
	demoOld, _ := loadertest.Demo(t)
	demoNew, _ := loadertest.Demo(t)
	worldOld := loadWorld(t, tinyWorld)
	worldNew := loadWorld(t, tinyWorld)
	for name, pair := range map[string][2]*decision.Engine{"demo": {demoOld, demoNew}, "generated": {worldOld, worldNew}} {
		report, diffs := diffAll(t, pin(t, pair[0]), pin(t, pair[1]))
		if report.Questions == 0 || report.Unchanged != report.Questions || len(diffs) != 0 || len(report.Groups) != 0 {
			t.Errorf("%s: %d questions, %d unchanged, differences %v", name, report.Questions, report.Unchanged, diffs)
		}
	}
}

// TestAddedDenyChangesExactlyWhatItCovers adds to a generated tenant a
// Deny of finmars:ViewSet001:* on every object for the members of one
// group, and holds the diff to exactly that: every answer that changed is
// such a member and action, now denied by the new statement, and every
// such question is now denied.
func TestAddedDenyChangesExactlyWhatItCovers(t *testing.T) {
	w := worldgen.Generate(tinyWorld)
	dirOld := filepath.Join(t.TempDir(), "world")
	if err := w.WriteBundle(dirOld, "old"); err != nil {
		t.Fatal(err)
	}
	tenant := w.Tenants[worldgen.TenantCode(0)]
	const group, deniedPrefix = "g001", "finmars:ViewSet001:"
	tenant["access_policies"].(map[string]any)["freeze"] = map[string]any{"Statement": []any{
		map[string]any{"Effect": "Deny", "Action": "finmars:ViewSet001:*", "Resource": "*"},
	}}
	g := tenant["groups"].(map[string]any)[group].(map[string]any)
	g["policies"] = append(g["policies"].([]any), "freeze")
	covered := map[string]bool{}
	for name, m := range tenant["members"].(map[string]any) {
		for _, gr := range m.(map[string]any)["groups"].([]any) {
			if gr == group {
				covered[name] = true
			}
		}
	}
	if len(covered) == 0 {
		t.Fatalf("no member is in %s: the test would prove nothing", group)
	}
	dirNew := filepath.Join(t.TempDir(), "world")
	if err := w.WriteBundle(dirNew, "cand"); err != nil {
		t.Fatal(err)
	}
	engOld, _ := loadertest.Load(t, []loader.Source{{Name: "world", Location: dirOld}})
	engNew, _ := loadertest.Load(t, []loader.Source{{Name: "world", Location: dirNew}})
	old, cand := pin(t, engOld), pin(t, engNew)

	report, diffs := diffAll(t, old, cand)
	if report.DenyToAllow != 0 {
		t.Errorf("%d answers went from deny to allow", report.DenyToAllow)
	}
	if report.AllowToDeny == 0 {
		t.Fatal("the Deny removed nothing: the test would prove nothing")
	}
	for _, d := range diffs {
		q := d.Question
		if !covered[q.Member] || !strings.HasPrefix(q.Action, deniedPrefix) {
			t.Fatalf("%s changed outside the Deny: %+v %+v → %+v", d.Change, q, d.Old, d.New)
		}
		if d.New.Allow || d.New.Reasons[0].Code != "iam.explicit_deny" || d.New.Reasons[0].Policy != "freeze" {
			t.Fatalf("%+v is answered %+v", q, d.New)
		}
	}
	// Every covered question is denied by the new statement now, so each
	// one that was allowed is an allow → deny above.
	allowedBefore, changed := 0, map[string]bool{}
	for _, d := range diffs {
		if d.Change == access.AllowToDeny {
			changed[questionKey(d.Question)] = true
		}
	}
	qs, _ := access.GenerateQuestions(old, cand, 0)
	qs.All(func(q *decision.Request) bool {
		if !covered[q.Member] || !strings.HasPrefix(q.Action, deniedPrefix) {
			return true
		}
		dOld, _ := old.Decide(context.Background(), q)
		dNew, _ := cand.Decide(context.Background(), q)
		if dNew.Allow {
			t.Fatalf("%+v is still allowed", q)
		}
		if dOld.Allow {
			allowedBefore++
			if !changed[questionKey(q)] {
				t.Fatalf("%+v went from allow to deny but the diff does not list it", q)
			}
		}
		return true
	})
	if allowedBefore != report.AllowToDeny {
		t.Fatalf("%d covered questions were allowed, the diff reports %d allow → deny", allowedBefore, report.AllowToDeny)
	}
}

// questionKey identifies a generated question.
func questionKey(q *decision.Request) string {
	k := strings.Join([]string{q.Tenant, q.Key, q.Member, q.Action}, "|")
	if q.Resource != nil {
		k += "|" + q.Resource.FRN + "|" + q.Resource.Owner
	}
	return k
}

// TestDemoDenyDiff adds the README's example Deny to the demo's bank
// tenant: all staff lose Portfolio update and partial_update.
func TestDemoDenyDiff(t *testing.T) {
	dir := testdemo.Write(t, testdemo.FreezePortfolioWrites)
	engOld, _ := loadertest.Demo(t)
	engNew, _ := loadertest.Load(t, []loader.Source{{Name: "demo", Location: dir}})
	report, diffs := diffAll(t, pin(t, engOld), pin(t, engNew))
	lost := map[string]bool{}
	for _, d := range diffs {
		if d.Tenant != "bank" || (d.Action != "finmars:Portfolio:update" && d.Action != "finmars:Portfolio:partial_update") {
			t.Fatalf("unexpected difference %+v", d)
		}
		if d.Change == access.AllowToDeny {
			lost[d.Question.Member] = true
		}
	}
	want := map[string]bool{"head_of_banking": true, "user_a": true, "user_b": true, "olivia": true}
	if fmt.Sprint(lost) != fmt.Sprint(want) || report.DenyToAllow != 0 {
		t.Fatalf("members who lost an update: %v, want %v (deny → allow: %d)", lost, want, report.DenyToAllow)
	}
}

func TestSampledQuestionsSpreadOverTheSet(t *testing.T) {
	p := pin(t, loadWorld(t, tinyWorld))
	all, err := access.GenerateQuestions(p, p, 0)
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	qs, err := access.GenerateQuestions(p, p, n)
	if err != nil {
		t.Fatal(err)
	}
	if qs.Count != n || qs.Possible != all.Possible {
		t.Fatalf("count %d possible %d (all: %d)", qs.Count, qs.Possible, all.Possible)
	}
	members, objects, seen := map[string]bool{}, map[string]bool{}, 0
	qs.All(func(q *decision.Request) bool {
		seen++
		members[q.Member] = true
		if q.Resource != nil {
			objects[q.Resource.FRN+"|"+q.Resource.Owner] = true
		}
		return true
	})
	if seen != n || len(members) < tinyWorld.Members/2 || len(objects) < 5 {
		t.Fatalf("%d questions over %d members and %d objects", seen, len(members), len(objects))
	}
}

func TestReadRequests(t *testing.T) {
	in := strings.Join([]string{
		`{"tenant":"bank","member":"user_a","action":"finmars:Portfolio:list"}`,
		``,
		`{"decision_id":"x","time":"2026-01-01T00:00:00Z","input":{"tenant":"bank","member":"olivia","request":{"method":"GET","path":"/api/v1/portfolios/portfolio/"}},"result":{"allow":true}}`,
		`{"tenant":"bank",`,
		`{"tenant":"bank","member":"user_a","acton":"finmars:Portfolio:list"}`,
		`{"tenant":"bank","member":"user_a"}`,
		`{"input":{"tenant":"bank","action":"finmars:Portfolio:list"}}`,
		`[1,2]`,
		`{"tenant":"bank","action":"finmars:Portfolio:retrieve"}`,
	}, "\n")
	var good []int
	var members []string
	var bad []int
	err := access.ReadRequests(strings.NewReader(in), func(line int, req *decision.Request) error {
		good = append(good, line)
		members = append(members, req.Member)
		return nil
	}, func(e *access.LineError) { bad = append(bad, e.Line) })
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(good) != "[1 3 9]" || fmt.Sprint(members) != "[user_a olivia ]" || fmt.Sprint(bad) != "[4 5 6 7 8]" {
		t.Fatalf("good %v %v, bad %v", good, members, bad)
	}
	long := strings.Repeat(" ", access.MaxRequestLine+10) + "{}\n" + `{"tenant":"bank","action":"finmars:Portfolio:list"}`
	good, bad = nil, nil
	err = access.ReadRequests(strings.NewReader(long), func(line int, _ *decision.Request) error {
		good = append(good, line)
		return nil
	}, func(e *access.LineError) { bad = append(bad, e.Line) })
	if err != nil || fmt.Sprint(good) != "[2]" || fmt.Sprint(bad) != "[1]" {
		t.Fatalf("long line: err %v good %v bad %v", err, good, bad)
	}
	stop := errors.New("stop")
	if err := access.ReadRequests(strings.NewReader(in), func(int, *decision.Request) error { return stop }, func(*access.LineError) {}); !errors.Is(err, stop) {
		t.Fatalf("err %v", err)
	}
}

func TestCompare(t *testing.T) {
	zero := 0
	allow := &decision.Decision{Allow: true, Status: 200, Visibility: "full", Reasons: []decision.Reason{{Layer: "iam", Code: "iam.allow", Effect: "allow", Policy: "p", Statement: &zero, Message: "a"}}}
	deny := &decision.Decision{Allow: false, Status: 403, Visibility: "none", Reasons: []decision.Reason{{Layer: "iam", Code: "iam.no_allow", Effect: "deny"}}}
	one := 1
	otherStatement := &decision.Decision{Allow: true, Status: 200, Visibility: "full", Reasons: []decision.Reason{{Layer: "iam", Code: "iam.allow", Effect: "allow", Policy: "p", Statement: &one, Message: "a"}}}
	otherMessage := &decision.Decision{Allow: true, Status: 200, Visibility: "full", Reasons: []decision.Reason{{Layer: "iam", Code: "iam.allow", Effect: "allow", Policy: "p", Statement: &zero, Message: "b"}}}
	public := &decision.Decision{Allow: true, Status: 200, Visibility: "public", Reasons: allow.Reasons}
	for _, tc := range []struct {
		old, cand *decision.Decision
		want      access.Change
	}{
		{allow, allow, access.Same},
		{allow, otherMessage, access.Same},
		{allow, deny, access.AllowToDeny},
		{deny, allow, access.DenyToAllow},
		{allow, otherStatement, access.Changed},
		{allow, public, access.Changed},
	} {
		if got := access.Compare(tc.old, tc.cand); got != tc.want {
			t.Errorf("Compare(%+v, %+v) = %s, want %s", tc.old, tc.cand, got, tc.want)
		}
	}
}
