package datafilter_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/datafilter"
	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/loader/loadertest"
	"github.com/verdict-authz/verdict/test/pgtest"
	"github.com/verdict-authz/verdict/test/ucasteval"
)

// object is a row of the table the filters are about.
type object struct {
	id              int
	userCode, owner string
	group           string // "" when the object has none
}

// tokens make up the generated user codes: the fixture's codes, prefixes,
// pattern ends and their overlaps, in both cases.
var tokens = []string{"a1", "a2", "A2", "b1", "s1", "book", "Book", "-secret", "x", "y", "-no", "ab", "ba", "aba", "q", "r", "s",
	"plain_code", "Plain_Code", "plainxcode", "zz%", "zzx", "zz", "o7"}

var owners = []string{"user_a", "user_b", "user_c", "user_d", "admin", "nobody"}

var groups = []string{"", "", "team-a", "team-z", "TEAM-B", "secret-x", "other"}

func generateObjects(rng *rand.Rand, n int) []object {
	fixed := []string{"aba", "abba", "abxba", "xy", "x-noy", "x-no-y", "qrs", "qxrxs", "book-secret", "book-secret-2", "Book-Secret", "zz%", "zz%x", "zzx"}
	out := make([]object, 0, n+len(fixed))
	add := func(code string) {
		out = append(out, object{id: len(out), userCode: code, owner: owners[rng.IntN(len(owners))], group: groups[rng.IntN(len(groups))]})
	}
	for _, c := range fixed {
		add(c)
	}
	for len(out) < cap(out) {
		var b strings.Builder
		for k := 1 + rng.IntN(3); k > 0; k-- {
			b.WriteString(tokens[rng.IntN(len(tokens))])
		}
		add(b.String())
	}
	return out
}

// TestFilterAgreesWithDecide: for every member of the fixture and every
// target, the filter the plan translates to keeps exactly the objects
// /v1/decide allows — UCAST evaluated row by row (user codes and groups
// stored in lower case, as UCAST needs them), SQL run by PostgreSQL on the
// rows as stored (mixed case). With a group column mapped, each object's
// group is passed to /v1/decide as resource.resource_groups, as the
// service that stores it would. A target that cannot express a plan must
// say so (UnsupportedError), never answer an approximate filter.
func TestFilterAgreesWithDecide(t *testing.T) {
	ctx := context.Background()
	engine, _ := loadertest.Load(t, []loader.Source{{Name: "filters", Location: filepath.Join("testdata", "filters")}})
	rng := rand.New(rand.NewPCG(7, 11))
	objects := generateObjects(rng, 300)
	db := openTable(t, objects)
	const action = "finmars:Portfolio:list"
	refused := map[string]int{}
	checked, allowed := 0, 0
	for _, member := range []string{"user_a", "user_b", "user_c", "user_d", "admin", "nobody"} {
		plan, err := engine.Plan(ctx, &decision.PlanRequest{Tenant: "bank", Member: member, Action: action, Model: "portfolios:portfolio"})
		if err != nil {
			t.Fatal(err)
		}
		for _, withGroups := range []bool{false, true} {
			mappings := map[string]any{"resource": map[string]any{"$self": "objects"}}
			if withGroups {
				mappings = map[string]any{"resource": map[string]any{"$self": "objects", "resource_group": "grp"}}
			}
			want := map[int]bool{}
			for _, o := range objects {
				req := &decision.Request{Tenant: "bank", Member: member, Action: action,
					Resource: &decision.Resource{FRN: "frn:finmars:portfolios:portfolio:" + o.userCode, Owner: o.owner}}
				if withGroups && o.group != "" {
					req.Resource.ResourceGroups = []string{o.group}
				}
				d, err := engine.Decide(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				want[o.id] = d.Allow
				checked++
				if d.Allow {
					allowed++
				}
			}
			for _, target := range []datafilter.Target{ucastAll, ucastPrisma, ucastMinimal, postgres} {
				where := fmt.Sprintf("%s, %s, group column %v", member, target, withGroups)
				q, err := datafilter.Translate(plan, target, mappings)
				var unsupported *datafilter.UnsupportedError
				if errors.As(err, &unsupported) {
					refused[target.String()]++
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", where, err)
				}
				got := map[int]bool{}
				if target.Kind == "sql" {
					got = runSQL(t, db, q, where)
				} else if q != nil {
					for _, o := range objects {
						row := map[string]string{"objects.user_code": strings.ToLower(o.userCode), "objects.owner": o.owner}
						if o.group != "" {
							row["objects.grp"] = strings.ToLower(o.group)
						}
						ok, err := ucasteval.Eval(q.(map[string]any), row)
						if err != nil {
							t.Fatalf("%s: %v in %s", where, err, marshal(q))
						}
						got[o.id] = ok
					}
				}
				for _, o := range objects {
					if got[o.id] != want[o.id] {
						t.Errorf("%s: object %q (owner %s, group %q): decide allow=%v, the filter keeps it=%v\nplan %s filter=%v exclude=%v\nquery %s",
							where, o.userCode, o.owner, o.group, want[o.id], got[o.id], plan.Kind, plan.Filter, plan.Exclude, marshal(q))
					}
				}
			}
		}
	}
	if allowed == 0 || allowed == checked {
		t.Fatalf("%d of %d objects allowed: the fixture does not exercise both outcomes", allowed, checked)
	}
	// user_a's two-star pattern is refused by every UCAST target and its
	// prefixes by minimal; everything else is translated.
	if refused["ucast+all"] != 2 || refused["ucast+prisma"] != 2 || refused["ucast+minimal"] != 6 || refused["sql+postgresql"] != 0 {
		t.Errorf("refused translations: %v", refused)
	}
}

// openTable creates the objects table in a new database of the tests'
// PostgreSQL and fills it.
func openTable(t *testing.T, objects []object) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	if _, err := conn.Exec(ctx, `CREATE TABLE objects (id int PRIMARY KEY, user_code text NOT NULL, owner text NOT NULL, grp text)`); err != nil {
		t.Fatal(err)
	}
	rows := make([][]any, len(objects))
	for i, o := range objects {
		var grp any
		if o.group != "" {
			grp = o.group
		}
		rows[i] = []any{o.id, o.userCode, o.owner, grp}
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"objects"}, []string{"id", "user_code", "owner", "grp"}, pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// runSQL selects the ids of the objects the WHERE clause keeps (none for a
// nil query, all for "").
func runSQL(t *testing.T, conn *pgx.Conn, q any, where string) map[int]bool {
	t.Helper()
	got := map[int]bool{}
	if q == nil {
		return got
	}
	sql := "SELECT id FROM objects " + q.(string)
	rows, err := conn.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %s: %v", where, sql, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatalf("%s: %s: %v", where, sql, err)
	}
	sort.Ints(ids)
	for _, id := range ids {
		got[id] = true
	}
	return got
}
