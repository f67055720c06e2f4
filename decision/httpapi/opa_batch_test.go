package httpapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/httpapi"
)

// sdkBatchResponse is a batch answer as OPA's SDKs read it (opa-typescript
// BatchSuccessfulPolicyEvaluation / BatchMixedResults / BatchServerError,
// opa-java's models): http_status_code is a string, and opa-java tells an
// entry's kind by it, knowing only "200" and "500".
type sdkBatchResponse struct {
	Code            string `json:"code"`
	Message         string `json:"message"`
	BatchDecisionID string `json:"batch_decision_id"`
	Responses       map[string]struct {
		DecisionID     string          `json:"decision_id"`
		Result         json.RawMessage `json:"result"`
		Code           string          `json:"code"`
		Field          string          `json:"field"`
		Message        string          `json:"message"`
		HTTPStatusCode *string         `json:"http_status_code"`
	} `json:"responses"`
}

func postBatch(t *testing.T, srv *httptest.Server, path, body string) (int, sdkBatchResponse) {
	t.Helper()
	resp, err := srv.Client().Post(srv.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var out sdkBatchResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%d %q: %v", resp.StatusCode, raw, err)
	}
	// Every entry is one of the SDKs' kinds: a result, or an error with
	// code and message.
	for id, e := range out.Responses {
		if (e.Code != "") != (e.Message != "") || (e.Code != "" && e.Result != nil) {
			t.Errorf("entry %s is neither a result nor an error: %+v", id, e)
		}
		if resp.StatusCode == http.StatusMultiStatus {
			want := "200"
			if e.Code != "" {
				want = "500"
			}
			if e.HTTPStatusCode == nil || *e.HTTPStatusCode != want {
				t.Errorf("207 entry %s: http_status_code %v, want %q", id, e.HTTPStatusCode, want)
			}
		} else if e.HTTPStatusCode != nil {
			t.Errorf("%d entry %s carries http_status_code %q; only a 207's entries do", resp.StatusCode, id, *e.HTTPStatusCode)
		}
	}
	return resp.StatusCode, out
}

// TestBatchDataDecisions: each input, merged over common_input, is asked of
// data.verdict.decision, and answered as POST /v1/data/verdict/decision
// answers it alone.
func TestBatchDataDecisions(t *testing.T) {
	srv := defaultDecisionServer(t)
	status, got := postBatch(t, srv, "/v1/batch/data/verdict/decision", `{
		"common_input": {"tenant": "bank", "action": "finmars:Portfolio:list", "context": {"ip": "10.0.0.1"}},
		"inputs": {
			"a": {"member": "user_a"},
			"intern": {"member": "intern"},
			"blocked": {"member": "admin", "context": {"ip": "203.0.113.66"}},
			"other tenant": {"tenant": "fineract", "member": "antony"}
		}}`)
	if status != http.StatusOK || got.BatchDecisionID == "" || len(got.Responses) != 4 {
		t.Fatalf("%d %+v", status, got)
	}
	singles := map[string]string{
		"a":            `{"tenant":"bank","action":"finmars:Portfolio:list","context":{"ip":"10.0.0.1"},"member":"user_a"}`,
		"intern":       `{"tenant":"bank","action":"finmars:Portfolio:list","context":{"ip":"10.0.0.1"},"member":"intern"}`,
		"blocked":      `{"tenant":"bank","action":"finmars:Portfolio:list","context":{"ip":"203.0.113.66"},"member":"admin"}`,
		"other tenant": `{"tenant":"fineract","action":"finmars:Portfolio:list","context":{"ip":"10.0.0.1"},"member":"antony"}`,
	}
	wantAllow := map[string]bool{"a": true, "intern": false, "blocked": false, "other tenant": true}
	for id, input := range singles {
		e := got.Responses[id]
		var d decision.Decision
		if err := json.Unmarshal(e.Result, &d); err != nil {
			t.Fatalf("%s: result %s: %v", id, e.Result, err)
		}
		if e.DecisionID == "" || e.DecisionID != d.DecisionID {
			t.Errorf("%s: decision_id %q, the decision's %q", id, e.DecisionID, d.DecisionID)
		}
		if d.Allow != wantAllow[id] {
			t.Errorf("%s: allow %v, want %v: %+v", id, d.Allow, wantAllow[id], d)
		}
		_, single := send(t, srv, "POST", "/v1/data/verdict/decision", `{"input":`+input+`}`)
		var alone decision.Decision
		if err := json.Unmarshal([]byte(jsonOf(t, single["result"])), &alone); err != nil {
			t.Fatal(err)
		}
		if alone.Allow != d.Allow || alone.Status != d.Status || jsonOf(t, alone.Reasons) != jsonOf(t, d.Reasons) {
			t.Errorf("%s: batch says %+v, the Data API %+v", id, d, alone)
		}
	}
}

// TestBatchDataDocuments: any document, as the Data API answers it; an
// undefined result has no "result"; objects of the common input are
// merged with the input's, key by key.
func TestBatchDataDocuments(t *testing.T) {
	srv := defaultDecisionServer(t)
	status, got := postBatch(t, srv, "/v1/batch/data/verdict/conditions/office_hours", `{
		"common_input": {"context": {"hour": 10, "zone": "UTC"}},
		"inputs": {"common hour": {"context": {"zone": "CET"}}, "evening": {"context": {"hour": 20}}, "empty": {}}}`)
	if status != http.StatusOK {
		t.Fatalf("%d %+v", status, got)
	}
	for id, want := range map[string]string{"common hour": "true", "evening": "", "empty": "true"} {
		if string(got.Responses[id].Result) != want {
			t.Errorf("%s: result %s, want %q", id, got.Responses[id].Result, want)
		}
	}
}

// TestBatchDataEngineDocuments: a document of the engine is evaluated on
// the facts gathered for each input, as the Data API evaluates it; forged
// facts are refused for any other document.
func TestBatchDataEngineDocuments(t *testing.T) {
	srv := defaultDecisionServer(t)
	status, got := postBatch(t, srv, "/v1/batch/data/verdict/engine/decision", `{
		"common_input": {"tenant": "bank", "action": "finmars:Portfolio:list"},
		"inputs": {"a": {"member": "user_a"}, "intern": {"member": "intern"}}}`)
	if status != http.StatusOK {
		t.Fatalf("%d %+v", status, got)
	}
	for id, want := range map[string]bool{"a": true, "intern": false} {
		var d struct{ Allow bool }
		if err := json.Unmarshal(got.Responses[id].Result, &d); err != nil || d.Allow != want {
			t.Errorf("%s: %s (%v), want allow %v", id, got.Responses[id].Result, err, want)
		}
	}
	status, got = postBatch(t, srv, "/v1/batch/data/verdict/conditions/office_hours", `{
		"inputs": {"forged": {"facts": {}, "context": {"hour": 10}}, "fine": {"context": {"hour": 10}}}}`)
	if status != http.StatusMultiStatus || got.Responses["forged"].Field != "input.facts" || string(got.Responses["fine"].Result) != "true" {
		t.Errorf("%d %+v", status, got)
	}
}

func TestBatchDataMixedAndRefused(t *testing.T) {
	srv := defaultDecisionServer(t)
	t.Run("mixed: 207", func(t *testing.T) {
		status, got := postBatch(t, srv, "/v1/batch/data/verdict/decision", `{
			"common_input": {"tenant": "bank", "action": "finmars:Portfolio:list"},
			"inputs": {"ok": {"member": "user_a"}, "typo": {"member": "user_a", "actoin": "x"}, "frn": {"member": "user_a", "resource": {"frn": "nope"}}}}`)
		if status != http.StatusMultiStatus {
			t.Fatalf("%d %+v", status, got)
		}
		if e := got.Responses["typo"]; e.Code != "invalid_request" || e.Field != "input.actoin" {
			t.Errorf("typo: %+v", e)
		}
		if e := got.Responses["frn"]; e.Code != "invalid_request" || e.Field != "input.resource.frn" {
			t.Errorf("frn: %+v", e)
		}
		if e := got.Responses["ok"]; e.Result == nil || e.DecisionID == "" {
			t.Errorf("ok: %+v", e)
		}
	})
	t.Run("a state revision the snapshot lacks denies state.stale", func(t *testing.T) {
		status, got := postBatch(t, srv, "/v1/batch/data/verdict/decision", `{
			"common_input": {"tenant": "bank", "member": "user_a", "action": "finmars:Portfolio:list"},
			"inputs": {"now": {}, "future": {"consistency": {"at_least": 99}}}}`)
		var now, future decision.Decision
		json.Unmarshal(got.Responses["now"].Result, &now)
		json.Unmarshal(got.Responses["future"].Result, &future)
		if status != http.StatusOK || !now.Allow || future.Allow || future.DecidingReason() != "state.stale" {
			t.Errorf("%d now %+v future %+v", status, now, future)
		}
	})
	t.Run("every input refused: 400 with code and message", func(t *testing.T) {
		status, got := postBatch(t, srv, "/v1/batch/data/verdict/decision", `{"inputs": {"x": {"member": "user_a"}, "y": {"tenant": 5}}}`)
		if status != http.StatusBadRequest || got.Code != "invalid_request" || got.Message == "" || len(got.Responses) != 2 {
			t.Fatalf("%d %+v", status, got)
		}
		if got.Responses["x"].Field != "input.tenant" || got.Responses["y"].Field != "input.tenant" {
			t.Errorf("%+v", got.Responses)
		}
	})
	t.Run("no inputs: 200, nothing to answer", func(t *testing.T) {
		status, got := postBatch(t, srv, "/v1/batch/data/verdict/decision", `{"inputs": {}}`)
		if status != http.StatusOK || len(got.Responses) != 0 || got.BatchDecisionID == "" {
			t.Fatalf("%d %+v", status, got)
		}
	})
}

func TestBatchDataMalformed(t *testing.T) {
	srv := defaultDecisionServer(t)
	many := make([]string, decision.MaxBatchItems+1)
	for i := range many {
		many[i] = fmt.Sprintf(`"%d": {}`, i)
	}
	tests := []struct {
		name, body, wantField string
	}{
		{"not JSON", `{"inputs":`, ""},
		{"no inputs", `{"common_input": {}}`, "inputs"},
		{"inputs not an object", `{"inputs": [1, 2]}`, "inputs"},
		{"unknown field", `{"inputs": {}, "input": {}}`, "input"},
		{"common_input not an object", `{"inputs": {}, "common_input": [1]}`, "common_input"},
		{"too many inputs", `{"inputs": {` + strings.Join(many, ",") + `}}`, "inputs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := send(t, srv, "POST", "/v1/batch/data/verdict/decision", tt.body)
			if resp.StatusCode != http.StatusBadRequest || body["code"] != "invalid_request" || body["message"] == "" {
				t.Fatalf("%d %v, want a 400", resp.StatusCode, body)
			}
			if tt.wantField != "" && body["field"] != tt.wantField {
				t.Errorf("field %v, want %s", body["field"], tt.wantField)
			}
		})
	}
	resp, body := send(t, srv, "GET", "/v1/batch/data/verdict/decision", "")
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d %v", resp.StatusCode, body)
	}
}

func TestBatchDataNotReady(t *testing.T) {
	srv := httptest.NewServer(httpapi.New(decision.NewEngine(quiet), httpapi.Options{Log: quiet}))
	defer srv.Close()
	resp, body := send(t, srv, "POST", "/v1/batch/data/verdict/decision", `{"inputs": {"a": {"tenant": "bank"}}}`)
	if resp.StatusCode != http.StatusServiceUnavailable || body["code"] != "not_ready" {
		t.Errorf("%d %v, want 503 not_ready", resp.StatusCode, body)
	}
}
