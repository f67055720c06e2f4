package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/decision/httpapi"
	"github.com/verdict-authz/verdict/loader/loadertest"
)

func defaultDecisionServer(t *testing.T) *httptest.Server {
	t.Helper()
	engine, _ := loadertest.Demo(t)
	srv := httptest.NewServer(httpapi.New(engine, httpapi.Options{Log: quiet}))
	t.Cleanup(srv.Close)
	return srv
}

func send(t *testing.T, srv *httptest.Server, method, path, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if method != http.MethodHead {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: %d body is not JSON: %q", method, path, resp.StatusCode, raw)
		}
	}
	return resp, out
}

// TestDefaultDecision: POST / answers data.verdict.decision for the posted
// input, as OPA's default decision answers data.system.main: the document
// itself, the same as POST /v1/decide's.
func TestDefaultDecision(t *testing.T) {
	srv := defaultDecisionServer(t)
	for _, body := range []string{
		`{"tenant":"bank","member":"user_a","action":"finmars:Portfolio:list"}`,
		`{"tenant":"bank","member":"intern","request":{"method":"DELETE","path":"/api/v1/portfolios/portfolio/3/"}}`,
		`{"tenant":"nobody","member":"user_a","action":"finmars:Portfolio:list"}`,
	} {
		resp, got := send(t, srv, "POST", "/", body)
		_, want := send(t, srv, "POST", "/v1/decide", body)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("POST / %s: %d %s", body, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if _, wrapped := got["result"]; wrapped || got["decision_id"] == "" {
			t.Errorf("POST / %s: %v is not the decision document", body, got)
		}
		for _, field := range []string{"allow", "status", "tenant", "action", "visibility", "reasons"} {
			if g, w := jsonOf(t, got[field]), jsonOf(t, want[field]); g != w {
				t.Errorf("POST / %s: %s = %s, /v1/decide says %s", body, field, g, w)
			}
		}
	}
}

func TestDefaultDecisionRefusals(t *testing.T) {
	srv := defaultDecisionServer(t)
	tests := []struct {
		name, body string
		wantStatus int
		wantCode   string
		wantField  string
	}{
		{"empty body: undefined", "", 404, "undefined_document", ""},
		{"blank body: undefined", " \n", 404, "undefined_document", ""},
		{"malformed JSON", `{"tenant":`, 400, "invalid_request", ""},
		{"unknown field", `{"tenant":"bank","actoin":"x"}`, 400, "invalid_request", "actoin"},
		{"no tenant", `{"member":"user_a","action":"finmars:Portfolio:list"}`, 400, "invalid_request", "tenant"},
		{"the Data API's wrapper is not the input", `{"input":{"tenant":"bank"}}`, 400, "invalid_request", "input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := send(t, srv, "POST", "/", tt.body)
			if resp.StatusCode != tt.wantStatus || body["code"] != tt.wantCode || body["message"] == "" {
				t.Fatalf("%d %v, want %d %s", resp.StatusCode, body, tt.wantStatus, tt.wantCode)
			}
			if tt.wantField != "" && body["field"] != tt.wantField {
				t.Errorf("field %v, want %s", body["field"], tt.wantField)
			}
		})
	}
}

// TestUnroutedJSONErrors: a path no endpoint serves is a JSON 404, and a
// method an endpoint does not take a JSON 405 with Allow, never net/http's
// plain-text page.
func TestUnroutedJSONErrors(t *testing.T) {
	srv := defaultDecisionServer(t)
	tests := []struct {
		method, path string
		wantStatus   int
		wantAllow    string
	}{
		{"GET", "/nowhere", 404, ""},
		{"POST", "/v2/decide", 404, ""},
		{"GET", "/v1/decide/batch/x", 404, ""},
		{"GET", "/", 405, "POST"},
		{"PUT", "/", 405, "POST"},
		{"DELETE", "/v1/decide", 405, "GET, HEAD, POST"},
		{"PUT", "/v1/status", 405, "GET, HEAD"},
		{"POST", "/health", 405, "GET, HEAD"},
		{"DELETE", "/v1/data/verdict/decision", 405, "GET, HEAD, POST"},
		{"PATCH", "/v1/authz", 405, "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp, body := send(t, srv, tt.method, tt.path, "")
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("%d %v, want %d", resp.StatusCode, body, tt.wantStatus)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			wantCode := map[int]string{404: "not_found", 405: "method_not_allowed"}[tt.wantStatus]
			if body["code"] != wantCode || body["message"] == "" {
				t.Errorf("body %v, want code %s and a message", body, wantCode)
			}
			if got := resp.Header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow %q, want %q", got, tt.wantAllow)
			}
		})
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
