package store_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/loader/generation"
	"github.com/verdict-authz/verdict/loader/store"

	policy "github.com/verdict-authz/verdict/rego"
)

// Fault injection below the decision engine (issue 8, "fail closed"): a
// store lookup that fails and a record that makes the engine panic each
// become a deny with error.internal, never an allow, and the engine answers
// normally again once a sound snapshot is installed. The faults come from
// the seams in export_test.go.

// soajsDoc is a SOAJS tenant whose package opens the portfolios service, so
// that a decision with its key reads the keys and packages tables.
const soajsDoc = `{
  "catalog": {"products": {"P": {"packages": {"PK": {"acl": {"portfolios": {"access": false}}}}}}},
  "tenants": {"shop": {"checks": ["package"], "applications": {"app": {"package": "PK", "keys": [{"key": "shop-key"}]}}}}
}`

func TestFailedStoreReadsDeny(t *testing.T) {
	ctx := t.Context()
	pol, err := policy.CompilePolicy(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ps acl.Problems
	soajs := acl.Parse(decodeObject(t, soajsDoc), nil, &ps)
	if err := ps.Err(); err != nil {
		t.Fatal(err)
	}
	st := newStore(t)
	good := mustUpdate(t, st, func(w *store.WriteTxn) error {
		for _, err := range []error{
			w.PutService("catalog", portfolios),
			w.PutTenant("acme", acme(t)),
			w.PutPackage("catalog", soajs.Catalog.Packages["PK"]),
			w.PutTenant("shop", soajs.Tenants["shop"]),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	engine := decision.NewEngine(slog.New(slog.NewTextHandler(io.Discard, nil)))
	install := func(snap *store.Snapshot) {
		engine.Install(&generation.Generation{Number: 1, Facts: snap, Policy: pol, Revisions: map[string]string{}})
	}
	portfolio := &decision.HTTPRequest{Method: "GET", Path: "/api/v1/portfolios/portfolio/7/"}
	// bob may retrieve bonds (Group_A); the shop's key opens the service.
	bob := &decision.Request{Tenant: "acme", Member: "bob", Request: portfolio,
		Resource: &decision.Resource{FRN: "frn:finmars:portfolios:portfolio:bonds"}}
	shop := &decision.Request{Key: "shop-key", Request: portfolio}

	decide := func(req *decision.Request) *decision.Decision {
		t.Helper()
		copied := *req
		d, err := engine.Decide(ctx, &copied)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	install(good)
	for _, req := range []*decision.Request{bob, shop} {
		if d := decide(req); !d.Allow {
			t.Fatalf("on the sound snapshot %+v is denied: %+v", req, d.Reasons)
		}
	}

	for _, tc := range []struct {
		table string
		req   *decision.Request
	}{
		{"tenants", bob},
		{"route_tables", bob},
		{"members", bob},
		{"object_groups", bob},
		{"keys", shop},
		{"packages", shop},
	} {
		t.Run(tc.table, func(t *testing.T) {
			broken, err := store.SnapshotWithout(st, tc.table)
			if err != nil {
				t.Fatal(err)
			}
			install(broken)
			d := decide(tc.req)
			if d.Allow || d.Status != 403 || len(d.Reasons) != 1 || d.Reasons[0].Code != "error.internal" ||
				!strings.Contains(d.Reasons[0].Message, tc.table) {
				t.Fatalf("lookup in %s failing: %+v", tc.table, d)
			}
			install(good)
			if d := decide(tc.req); !d.Allow {
				t.Fatalf("sound snapshot back: %+v", d.Reasons)
			}
		})
	}

	t.Run("corrupt member record panics", func(t *testing.T) {
		broken, err := store.SnapshotWithCorruptMember(st, "acme", "bob")
		if err != nil {
			t.Fatal(err)
		}
		install(broken)
		d := decide(bob)
		if d.Allow || len(d.Reasons) != 1 || d.Reasons[0].Code != "error.internal" || !strings.Contains(d.Reasons[0].Message, "panic") {
			t.Fatalf("corrupt member: %+v", d)
		}
		// Other members of the same snapshot are unaffected.
		root := &decision.Request{Tenant: "acme", Member: "root", Request: portfolio}
		if d := decide(root); !d.Allow {
			t.Fatalf("root on the snapshot with a corrupt bob: %+v", d.Reasons)
		}
		install(good)
		if d := decide(bob); !d.Allow {
			t.Fatalf("sound snapshot back: %+v", d.Reasons)
		}
	})
}

func decodeObject(t *testing.T, src string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(src))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}
