//go:build !race

package acl_test

import (
	"testing"

	"github.com/verdict-authz/verdict/loader/acl"
)

// A decision request's action and FRN are checked on every decision:
// checking a valid one allocates nothing.
func TestValidateRequestAllocatesNothing(t *testing.T) {
	for name, check := range map[string]func() error{
		"ValidateAction":     func() error { return acl.ValidateAction("finmars:Portfolio:list") },
		"ValidateRequestFRN": func() error { return acl.ValidateRequestFRN("frn:finmars:portfolios:portfolio:Bonds-1") },
	} {
		if err := check(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if allocs := testing.AllocsPerRun(100, func() { _ = check() }); allocs != 0 {
			t.Errorf("%s allocates %.0f times on a valid value, want 0", name, allocs)
		}
	}
}
