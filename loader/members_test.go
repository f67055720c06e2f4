package loader

import (
	"testing"

	"github.com/verdict-authz/verdict/bundles"
)

// A served bundle keeps its tenants without their members, and shares the
// store's copy of them rather than keep the parse's: the store has indexed
// the members, and the parsed members were most of a loaded world's heap.
// Decisions and run-time changes read members from the store.
func TestServedBundleKeepsNoMembers(t *testing.T) {
	l, engine := newTestLoader(t)
	if _, err := l.LoadAll(t.Context(), []Source{{Name: "demo", Location: "(embedded demo bundle)", FS: bundles.Demo()}}); err != nil {
		t.Fatal(err)
	}
	b := l.Bundle("demo")
	if b == nil || len(b.Doc.Tenants) == 0 {
		t.Fatal("the demo is not served")
	}
	r := engine.Current().Facts.Read()
	for code, tenant := range b.Doc.Tenants {
		if tenant.Members != nil {
			t.Errorf("tenant %s of the served bundle keeps %d parsed members", code, len(tenant.Members))
		}
		rec, err := r.Tenant(code)
		if err != nil || rec == nil || rec.Tenant.Members != nil {
			t.Errorf("tenant %s in the store: %+v, %v", code, rec, err)
		} else if rec.Tenant != tenant {
			t.Errorf("tenant %s: the served bundle keeps its own copy, not the store's", code)
		}
	}
	if n, err := r.Members("bank"); err != nil || n == 0 {
		t.Errorf("members of bank in the store: %d, %v", n, err)
	}
}
