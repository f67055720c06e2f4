package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/decision/httpapi"
)

// TestDataAPIFunctionPathIs400 is a regression test: a path naming a
// function (data.verdict.engine.truthy takes an argument) was answered 500
// with a Rego type error, as if verdict had failed. It is the caller's
// mistake: 400 invalid_request on field "path", saying that the path names a
// function. (OPA v1.22.2 answers 500 internal_error here; see README, OPA
// Data API.)
func TestDataAPIFunctionPathIs400(t *testing.T) {
	h := demoAPI(t)
	for _, tt := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/data/verdict/engine/truthy", `{"input":{"a":true}}`},
		{http.MethodPost, "/v1/data/verdict/engine/truthy", ``},
		{http.MethodGet, "/v1/data/verdict/engine/truthy?input=" + url.QueryEscape(`{"a":true}`), ``},
		{http.MethodGet, "/v1/data/verdict/engine/truthy", ``},
		{http.MethodPost, "/v1/data/verdict/engine/truthy/x", `{"input":{}}`},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body)))
			checkBadRequest(t, rec, "path")
			var e httpapi.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(e.Message, "function data.verdict.engine.truthy") && !strings.Contains(e.Message, "data.verdict.engine.truthy is a function") {
				t.Errorf("message %q does not say that the path names a function", e.Message)
			}
			if strings.Contains(e.Message, "rego_type_error") {
				t.Errorf("message %q is the raw type error", e.Message)
			}
		})
	}

	// The package holding the function is still a document.
	rec := post(t, h, "/v1/data/verdict/engine", []byte(`{"input":{"tenant":"bank","member":"user_a","action":"finmars:Portfolio:list"}}`))
	if rec.Code != http.StatusOK {
		t.Fatalf("POST /v1/data/verdict/engine: %d %s", rec.Code, rec.Body)
	}
}
