package shadow

import (
	"testing"

	"github.com/verdict-authz/verdict/decision"
)

func TestRedacted(t *testing.T) {
	req := decision.Request{Tenant: "tnt1", Key: "4ea5db4c70b6168aeede6a8a56cb4624", Member: "user1", Context: map[string]any{"token": "x"}}
	got := redacted(req)
	if got.Key != "4ea5db4c…" || got.Context != nil || got.Member != "user1" {
		t.Fatalf("redacted %+v", got)
	}
	if req.Key != "4ea5db4c70b6168aeede6a8a56cb4624" || req.Context == nil {
		t.Fatalf("redacted changed the caller's request: %+v", req)
	}
}
