package decision_test

import (
	"testing"

	"github.com/verdict-authz/verdict/decision"
)

// TestValidateCanonicalIP: context.ip is written in its canonical form in
// the request's own context, never in the caller's map (which Go callers
// such as the authz door may share between requests).
func TestValidateCanonicalIP(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.66":        "203.0.113.66",
		"::ffff:203.0.113.66": "203.0.113.66",
		"::FFFF:CB00:7142":    "203.0.113.66",
		"2001:DB8:0:0::1":     "2001:db8::1",
	} {
		shared := map[string]any{"ip": in, "hour": 10}
		req := &decision.Request{Tenant: "bank", Action: "finmars:Portfolio:list", Context: shared}
		if err := req.Validate(); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		got := req.Context.(map[string]any)
		if got["ip"] != want || got["hour"] != 10 {
			t.Errorf("%s: context %v, want ip %s", in, got, want)
		}
		if shared["ip"] != in {
			t.Errorf("%s: the caller's map was changed to %v", in, shared["ip"])
		}
	}
}
