package httpapi_test

import (
	"net/http"
	"net/url"
	"reflect"
	"testing"
)

// TestDataAPIEngineDocumentsAgreeWithDecide: the Data API answered
// data.verdict.engine.decision allow true, and data.verdict.engine.plan
// kind "all", for an input without tenant ({"member":"intern","action":
// "finmars:Portfolio:destroy"}, {}, [], "x", null, or no input at all): the
// engine's rules ran on the caller's input, without the facts verdict
// gathers, and no layer denied (issue 14, item 1). The engine's documents
// now take a decision request as input and are evaluated on the gathered
// facts; the documents around them leave them out.
func TestDataAPIEngineDocumentsAgreeWithDecide(t *testing.T) {
	h := demoAPI(t)
	for _, path := range []string{"/v1/data/verdict/engine/decision", "/v1/data/verdict/engine/plan"} {
		for _, tt := range []struct{ input, field string }{
			{`{"member":"intern","action":"finmars:Portfolio:destroy"}`, "input.tenant"},
			{`{}`, "input.tenant"},
			{`[]`, "input"},
			{`"x"`, "input"},
			{`{"tenant":"bank","member":"intern","action":"finmars:Portfolio:destroy","facts":{}}`, "input.facts"},
		} {
			checkBadRequest(t, post(t, h, path, []byte(`{"input":`+tt.input+`}`)), tt.field)
			checkBadRequest(t, ask(t, h, http.MethodGet, path+"?input="+url.QueryEscape(tt.input), nil, nil).recorder(), tt.field)
		}
		// No input: undefined, as data.verdict.decision is.
		for _, a := range []answerJSON{
			ask(t, h, http.MethodPost, path, []byte(`{"input":null}`), nil),
			ask(t, h, http.MethodPost, path, nil, nil),
			ask(t, h, http.MethodGet, path, nil, nil),
		} {
			if a.code != http.StatusOK || a.body["result"] != nil {
				t.Errorf("%s without input: %d %s, want 200 without result", path, a.code, a.raw)
			}
		}
	}

	// The engine's decision is the decision /v1/decide answers.
	for _, question := range []string{
		`{"tenant":"bank","member":"admin","action":"finmars:Portfolio:destroy"}`,
		`{"tenant":"bank","member":"intern","action":"finmars:Portfolio:destroy"}`,
		`{"tenant":"bank","member":"user_a","request":{"method":"GET","path":"/api/v1/portfolios/portfolio/7/"},"resource":{"frn":"frn:finmars:portfolios:portfolio:bonds-portfolio"}}`,
	} {
		decide := ask(t, h, http.MethodPost, "/v1/decide", []byte(question), nil)
		engine := ask(t, h, http.MethodPost, "/v1/data/verdict/engine/decision", []byte(`{"input":`+question+`}`), nil)
		result, _ := engine.body["result"].(map[string]any)
		for _, field := range []string{"allow", "status", "visibility", "reasons"} {
			if !reflect.DeepEqual(result[field], decide.body[field]) {
				t.Errorf("%s: data.verdict.engine.decision %s = %v, /v1/decide %v", question, field, result[field], decide.body[field])
			}
		}
	}

	// data and data.verdict, evaluated on the caller's input, leave the
	// engine out.
	for _, path := range []string{"/v1/data", "/v1/data/verdict"} {
		a := ask(t, h, http.MethodPost, path, []byte(`{"input":{"member":"intern","action":"finmars:Portfolio:destroy"}}`), nil)
		result, _ := a.body["result"].(map[string]any)
		if path == "/v1/data" {
			result, _ = result["verdict"].(map[string]any)
		}
		if a.code != http.StatusOK || result == nil {
			t.Fatalf("%s: %d %s", path, a.code, a.raw)
		}
		if engine, ok := result["engine"]; ok {
			t.Errorf("%s holds data.verdict.engine: %v", path, engine)
		}
	}
}
