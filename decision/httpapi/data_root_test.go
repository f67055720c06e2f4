package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"testing"
)

// TestDataAPIRoot: POST /v1/data and GET /v1/data (no trailing slash) are
// the whole data document, as in OPA v1.22.2; both were redirected (307) to
// /v1/data/, which OPA clients do not expect.
func TestDataAPIRoot(t *testing.T) {
	h := demoAPI(t)
	do := func(method, target string, body []byte) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, target, bytes.NewReader(body)))
		return rec
	}
	result := func(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
		t.Helper()
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d, want 200 (Location %q): %s", rec.Code, rec.Header().Get("Location"), rec.Body)
		}
		var res struct {
			DecisionID string         `json:"decision_id"`
			Result     map[string]any `json:"result"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
			t.Fatal(err)
		}
		if res.DecisionID == "" || res.Result["verdict"] == nil {
			t.Fatalf("not the whole data document: %s", rec.Body)
		}
		return res.Result
	}
	input := []byte(`{"input":{"context":{"hour":10}}}`)
	want := result(t, do(http.MethodPost, "/v1/data/", input))
	for _, tt := range []struct {
		method, target string
		body           []byte
	}{
		{http.MethodPost, "/v1/data", input},
		{http.MethodPost, "/v1/data", nil},
		{http.MethodGet, "/v1/data", nil},
		{http.MethodGet, "/v1/data?input=" + url.QueryEscape(`{"context":{"hour":10}}`), nil},
	} {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			got := result(t, do(tt.method, tt.target, tt.body))
			if bytes.Equal(tt.body, input) && !reflect.DeepEqual(got, want) {
				t.Errorf("POST /v1/data = %v\nPOST /v1/data/ = %v", got, want)
			}
		})
	}
	// The same checks as on every other path: input.facts is refused.
	checkBadRequest(t, do(http.MethodPost, "/v1/data", []byte(`{"input":{"facts":{}}}`)), "input.facts")
}
