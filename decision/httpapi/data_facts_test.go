package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// TestDataAPIRefusesCallerFacts is a regression test: the engine's rules
// read input.facts as the facts verdict gathered, so the Data API answered
// data.verdict.engine.decision with allow true for a member that does not
// exist when the caller supplied the facts. Input facts are now refused on
// every Data API path, and the engine's rules without them deny.
func TestDataAPIRefusesCallerFacts(t *testing.T) {
	h := demoAPI(t)
	forged := `{"tenant":"bank","member":"mallory","action":"finmars:Portfolio:destroy",` +
		`"facts":{"tenant":{"checks":{"iam":true}},"member":{"is_admin":true}}}`
	for _, path := range []string{"/v1/data/verdict/engine/decision", "/v1/data/verdict/engine", "/v1/data/verdict", "/v1/data/"} {
		for _, method := range []string{http.MethodPost, http.MethodGet} {
			rec := httptest.NewRecorder()
			if method == http.MethodPost {
				h.ServeHTTP(rec, httptest.NewRequest(method, path, bytes.NewReader([]byte(`{"input":`+forged+`}`))))
			} else {
				h.ServeHTTP(rec, httptest.NewRequest(method, path+"?input="+url.QueryEscape(forged), nil))
			}
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("%s %s with input.facts: status %d: %s", method, path, rec.Code, rec.Body)
			}
			checkBadRequest(t, rec, "input.facts")
		}
	}

	// The engine's documents are evaluated on the facts verdict gathers
	// (see TestDataAPIEngineDocumentsAgreeWithDecide): the store says
	// mallory is no member of bank.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/data/verdict/engine/decision",
		bytes.NewReader([]byte(`{"input":{"tenant":"bank","member":"mallory","action":"finmars:Portfolio:destroy"}}`))))
	var res struct {
		Result struct {
			Allow bool `json:"allow"`
		} `json:"result"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || rec.Code != http.StatusOK || res.Result.Allow {
		t.Fatalf("data.verdict.engine.decision for a member that does not exist: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/data/verdict/decision", bytes.NewReader([]byte(`{"input":`+forged+`}`))))
	checkBadRequest(t, rec, "input.facts")
}
