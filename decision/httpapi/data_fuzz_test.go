package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestDataAPIBadPathsAndQueries: a path below a scalar was answered 500
// with the raw type error, and a malformed query string was read as if the
// malformed parameter were not there - so ?input=%ZZ asked a question
// without input (issue 14, item 17). Both are the caller's mistake: 400
// naming the path or the parameter. Over-long paths (item 12) are 400 too,
// and so is an input given twice (review 2): verdict read the first, OPA
// reads the last.
func TestDataAPIBadPathsAndQueries(t *testing.T) {
	h := demoAPI(t)
	question := `{"tenant":"bank","member":"admin","action":"finmars:Portfolio:list"}`
	for _, tt := range []struct {
		name, method, target, body, field, message string
	}{
		{"below a scalar of the engine", http.MethodPost, "/v1/data/verdict/engine/decision/allow/x", `{"input":` + question + `}`,
			"path", "data.verdict.engine.decision.allow.x can have no value"},
		{"below a scalar of the engine, GET", http.MethodGet, "/v1/data/verdict/engine/decision/allow/x?input=" + url.QueryEscape(question), ``,
			"path", "data.verdict.engine.decision.allow.x can have no value"},
		{"malformed input", http.MethodGet, "/v1/data/verdict/conditions/office_hours?input=%ZZ", ``,
			"input", `invalid URL escape "%ZZ"`},
		{"malformed input of a decision", http.MethodGet, "/v1/data/verdict/decision?input=%7B%ZZ", ``,
			"input", `invalid URL escape "%ZZ"`},
		{"malformed other parameter", http.MethodGet, "/v1/data/verdict/conditions/office_hours?pretty=%G1&input=%7B%7D", ``,
			"pretty", `invalid URL escape "%G1"`},
		{"malformed parameter name", http.MethodGet, "/v1/data/verdict?%ZZ=1", ``,
			"query", `invalid URL escape "%ZZ"`},
		// Given twice, verdict would read one copy and OPA (the last
		// wins) the other: the same query would ask two questions.
		{"input given twice", http.MethodGet, "/v1/data/verdict/conditions/office_hours?input=%7B%7D&input=" + url.QueryEscape(`{"context":{"hour":10}}`), ``,
			"input", "given more than once"},
		{"input of a decision given twice", http.MethodGet, "/v1/data/verdict/decision?input=" + url.QueryEscape(question) + "&input=" + url.QueryEscape(question), ``,
			"input", "given more than once"},
		{"input given twice, the first empty", http.MethodGet, "/v1/data/verdict/decision?input=&input=" + url.QueryEscape(question), ``,
			"input", "given more than once"},
		{"GET /v1/decide with input given twice", http.MethodGet, "/v1/decide?input=" + url.QueryEscape(question) + "&input=" + url.QueryEscape(`{"tenant":"bank","member":"intern","action":"finmars:Portfolio:list"}`), ``,
			"input", "given more than once"},
		{"GET /v1/decide with malformed input", http.MethodGet, "/v1/decide?input=%7B%ZZ", ``,
			"input", `invalid URL escape "%ZZ"`},
		{"30,000 segments", http.MethodPost, "/v1/data/" + strings.Repeat("a/", 30000), `{}`,
			"path", "bytes long; a path may have at most 512"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := ask(t, h, tt.method, tt.target, []byte(tt.body), nil)
			checkBadRequest(t, a.recorder(), tt.field)
			if msg, _ := a.body["message"].(string); !strings.Contains(msg, tt.message) {
				t.Errorf("message %q does not contain %q", msg, tt.message)
			}
		})
	}
}

// FuzzDataAPI: no Data API path, query string or body is answered with a
// 5xx (the demo bundle's rules and data evaluate without error, so every
// failure is the caller's and a 4xx), and every answer but a redirect is
// JSON. Seeds are the cases of TestDataAPIBadPathsAndQueries and the
// documents of the demo. Run with
//
//	go test ./decision/httpapi/ -run '^$' -fuzz '^FuzzDataAPI$' -fuzztime 60s
func FuzzDataAPI(f *testing.F) {
	question := `{"tenant":"bank","member":"admin","action":"finmars:Portfolio:list"}`
	for _, seed := range []struct {
		path, query, body string
		get               bool
	}{
		{"verdict/engine/decision/allow/x", "", `{"input":` + question + `}`, false},
		{"verdict/engine/decision/allow/x", "input=" + url.QueryEscape(question), ``, true},
		{"verdict/decision/allow/x", "", `{"input":` + question + `}`, false},
		{"verdict/decision", "input=%ZZ", ``, true},
		{"verdict/conditions/office_hours", "input=%7B%22context%22%3A%7B%22hour%22%3A10%7D%7D", ``, true},
		{"verdict/engine/truthy", "", `{"input":{}}`, false},
		{"verdict/engine/plan", "", `{"input":{"tenant":"bank","member":"user_a","action":"finmars:Portfolio:list"}}`, false},
		{"verdict/engine", "", `{"input":"x"}`, false},
		{"verdict/tenants/bank/members", "", ``, true},
		{"", "", `{"input":{"member":"intern"}}`, false},
		{strings.Repeat("a/", 300), "", `{}`, false},
		{"verdict/%ff/x", "", ``, true},
		{"verdict/engine/decision", "input=null", ``, true},
	} {
		f.Add(seed.path, seed.query, []byte(seed.body), seed.get)
	}
	h := demoAPI(f)
	f.Fuzz(func(t *testing.T, path, query string, body []byte, get bool) {
		u, err := url.ParseRequestURI("/v1/data/" + path + "?" + query)
		if err != nil || u.RawQuery != query {
			t.Skip("not a request line a server would read")
		}
		method := http.MethodPost
		if get {
			method = http.MethodGet
		}
		req := httptest.NewRequest(method, "/", bytes.NewReader(body))
		req.URL = u
		req.RequestURI = u.RequestURI()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s: %d %s", method, u, rec.Code, rec.Body)
		}
		if rec.Code < 300 || rec.Code >= 400 {
			if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("%s %s: %d, not JSON: %q", method, u, rec.Code, rec.Body)
			}
		}
	})
}
