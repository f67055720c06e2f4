package e2e

import (
	"encoding/json"
	"testing"
)

// TestOPADefaultDecisionAndErrors: POST / answers the decision for its body
// as OPA's default decision does, and unknown paths and methods answer JSON
// errors, from the real binary.
func TestOPADefaultDecisionAndErrors(t *testing.T) {
	s := demo(t)
	r := s.post(t, "/", `{"tenant":"bank","member":"user_a","action":"finmars:Portfolio:list"}`)
	var d Decision
	if err := json.Unmarshal(r.body, &d); err != nil || r.status != 200 || !d.Allow || d.DecisionID == "" {
		t.Fatalf("POST /: %d %s (%v)", r.status, r.body, err)
	}
	for _, tt := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/no/such/endpoint", 404, "not_found"},
		{"GET", "/", 405, "method_not_allowed"},
		{"DELETE", "/v1/services/portfolios", 405, "method_not_allowed"},
	} {
		r := s.do(t, tt.method, tt.path, "", nil)
		var body struct{ Code, Message string }
		if err := json.Unmarshal(r.body, &body); err != nil || r.status != tt.status || body.Code != tt.code || body.Message == "" {
			t.Errorf("%s %s: %d %q, want %d with a JSON %s error", tt.method, tt.path, r.status, r.body, tt.status, tt.code)
		}
	}
}

// TestOPABatchData: EOPA's batch Data API from the real binary: every input
// merged over common_input, one answer each, 207 when some are refused.
func TestOPABatchData(t *testing.T) {
	s := demo(t)
	r := s.post(t, "/v1/batch/data/verdict/decision", `{"common_input":{"tenant":"bank","action":"finmars:Portfolio:list"},
		"inputs":{"user_a":{"member":"user_a"},"intern":{"member":"intern"},"typo":{"membr":"x"}}}`)
	var got struct {
		BatchDecisionID string `json:"batch_decision_id"`
		Responses       map[string]struct {
			Result         *Decision `json:"result"`
			Code           string    `json:"code"`
			HTTPStatusCode string    `json:"http_status_code"`
		} `json:"responses"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil || r.status != 207 || got.BatchDecisionID == "" {
		t.Fatalf("%d %s (%v)", r.status, r.body, err)
	}
	a, intern, typo := got.Responses["user_a"], got.Responses["intern"], got.Responses["typo"]
	if a.Result == nil || !a.Result.Allow || a.HTTPStatusCode != "200" {
		t.Errorf("user_a: %+v", a)
	}
	if intern.Result == nil || intern.Result.Allow || intern.HTTPStatusCode != "200" {
		t.Errorf("intern: %+v", intern)
	}
	if typo.Code != "invalid_request" || typo.HTTPStatusCode != "500" {
		t.Errorf("typo: %+v", typo)
	}
}
