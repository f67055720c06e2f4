package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

type errorBody struct {
	Code    string `json:"code"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

func TestDecideBadRequests(t *testing.T) {
	s := demo(t)
	tests := []struct {
		name  string
		body  string
		field string // "" when the error is about the body as a whole
	}{
		{"missing tenant", `{"member": "user_a", "action": "finmars:Portfolio:list"}`, "tenant"},
		{"empty tenant", `{"tenant": "", "member": "user_a", "action": "finmars:Portfolio:list"}`, "tenant"},
		{"neither request nor action", `{"tenant": "bank", "member": "user_a"}`, "request"},
		{"unknown request.method", `{"tenant": "bank", "request": {"method": "FETCH", "path": "/x"}}`, "request.method"},
		{"missing request.method", `{"tenant": "bank", "request": {"path": "/x"}}`, "request.method"},
		{"request.path not starting with /", `{"tenant": "bank", "request": {"method": "GET", "path": "api/v1/portfolios/portfolio/"}}`, "request.path"},
		{"empty request.path", `{"tenant": "bank", "request": {"method": "GET", "path": ""}}`, "request.path"},
		{"member of the wrong JSON type", `{"tenant": "bank", "member": 5, "action": "finmars:Portfolio:list"}`, "member"},
		{"tenant of the wrong JSON type", `{"tenant": ["bank"], "action": "finmars:Portfolio:list"}`, "tenant"},
		{"request.method of the wrong JSON type", `{"tenant": "bank", "request": {"method": 5, "path": "/x"}}`, "request.method"},
		{"request of the wrong JSON type", `{"tenant": "bank", "request": "GET /x"}`, "request"},
		{"resource.reference of the wrong JSON type", `{"tenant": "bank", "action": "a:b:c", "resource": {"reference": "yes"}}`, "resource.reference"},
		{"resource.resource_groups of the wrong JSON type", `{"tenant": "bank", "action": "a:b:c", "resource": {"resource_groups": "g"}}`, "resource.resource_groups"},
		{"unknown field", `{"tenant": "bank", "action": "finmars:Portfolio:list", "colour": "red"}`, "colour"},
		{"malformed action (empty part)", `{"tenant": "bank", "action": "finmars::list"}`, "action"},
		{"malformed action (four parts)", `{"tenant": "bank", "action": "finmars:Portfolio:list:x"}`, "action"},
		{"malformed action (wildcard)", `{"tenant": "bank", "action": "finmars:Portfolio:*"}`, "action"},
		{"malformed action (character)", `{"tenant": "bank", "action": "finmars:Portfolio:li st"}`, "action"},
		{"malformed resource.frn", `{"tenant": "bank", "action": "finmars:Portfolio:list", "resource": {"frn": "frn:finmars:portfolios:bonds"}}`, "resource.frn"},
		{"resource.frn without the prefix", `{"tenant": "bank", "action": "finmars:Portfolio:list", "resource": {"frn": "bonds-portfolio"}}`, "resource.frn"},
		{"resource.frn naming a resource group", `{"tenant": "bank", "action": "finmars:Portfolio:list", "resource": {"frn": "frn:finmars:iam:resourcegroup:portfolio_group_a"}}`, "resource.frn"},
		{"empty resource group", `{"tenant": "bank", "action": "finmars:Portfolio:list", "resource": {"resource_groups": ["a", ""]}}`, "resource.resource_groups[1]"},
		{"context number beyond Rego's range", `{"tenant": "bank", "member": "admin", "action": "finmars:Portfolio:list", "context": {"n": 1e999999}}`, "context"},
		{"malformed JSON", `{"tenant": "bank",`, ""},
		{"not JSON", `tenant=bank`, ""},
		{"empty body", ``, ""},
		{"two JSON values", `{"tenant": "bank", "action": "a:b"} {}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := s.post(t, "/v1/decide", tt.body)
			if resp.status != http.StatusBadRequest {
				t.Fatalf("HTTP %d, want 400: %s", resp.status, resp.body)
			}
			if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			var e errorBody
			dec := json.NewDecoder(bytes.NewReader(resp.body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&e); err != nil {
				t.Fatalf("the 400 body is not {code, field, message}: %v: %s", err, resp.body)
			}
			if e.Code != "invalid_request" || e.Message == "" {
				t.Errorf("body = %+v, want code invalid_request and a message", e)
			}
			if e.Field != tt.field {
				t.Errorf("field = %q, want %q (message %q)", e.Field, tt.field, e.Message)
			}
			if tt.field != "" && !strings.Contains(e.Message, tt.field) {
				t.Errorf("message %q does not name the field %q", e.Message, tt.field)
			}
		})
	}
}

// TestDecideUnknownNestedField: an unknown field inside an object is
// reported by name. (The answer names the field itself, "verb", not its
// path "request.verb"; either names it.)
func TestDecideUnknownNestedField(t *testing.T) {
	s := demo(t)
	resp := s.post(t, "/v1/decide", `{"tenant": "bank", "request": {"verb": "GET", "method": "GET", "path": "/x"}}`)
	if resp.status != http.StatusBadRequest {
		t.Fatalf("HTTP %d, want 400: %s", resp.status, resp.body)
	}
	var e errorBody
	if err := json.Unmarshal(resp.body, &e); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(e.Field, "verb") || !strings.Contains(e.Message, "verb") {
		t.Errorf("body = %+v, want the field verb named", e)
	}
}

func TestDecideBodyLimit(t *testing.T) {
	s := demo(t)
	const limit = 1 << 20
	body := func(size int) string {
		head := `{"tenant": "bank", "member": "user_a", "action": "finmars:Portfolio:list", "context": {"pad": "`
		tail := `"}}`
		return head + strings.Repeat("x", size-len(head)-len(tail)) + tail
	}

	// Just under 1 MiB is a decision.
	resp := s.post(t, "/v1/decide", body(limit-16))
	if resp.status != http.StatusOK {
		t.Errorf("a body of %d bytes: HTTP %d, want 200: %.200s", limit-16, resp.status, resp.body)
	}

	// Over 1 MiB is refused with 413.
	resp = s.post(t, "/v1/decide", body(limit+1024))
	if resp.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("a body over 1 MiB: HTTP %d, want 413: %.200s", resp.status, resp.body)
	}
	var e errorBody
	if err := json.Unmarshal(resp.body, &e); err != nil || e.Code == "" || e.Message == "" {
		t.Errorf("413 body = %s (%v), want {code, message}", resp.body, err)
	}

	// The server is still fine afterwards.
	if d := s.decide(t, bankReq("user_a", "GET", portfolioPath, "", "")); !d.Allow {
		t.Errorf("after a 413: %+v", d)
	}
}

func TestDecideMethodNotAllowed(t *testing.T) {
	s := demo(t)
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		resp := s.do(t, method, "/v1/decide", "", nil)
		if resp.status != http.StatusMethodNotAllowed {
			t.Errorf("%s /v1/decide: HTTP %d, want 405", method, resp.status)
		}
		if allow := resp.header.Get("Allow"); !strings.Contains(allow, "POST") {
			t.Errorf("%s /v1/decide: Allow = %q, want POST listed", method, allow)
		}
	}
}

func TestHealth(t *testing.T) {
	s := demo(t)
	for _, tc := range []struct{ path, status string }{{"/health", "ok"}, {"/health/ready", "ready"}} {
		resp := s.do(t, http.MethodGet, tc.path, "", nil)
		if resp.status != http.StatusOK {
			t.Errorf("GET %s: HTTP %d, want 200: %s", tc.path, resp.status, resp.body)
			continue
		}
		var body struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(resp.body, &body); err != nil || body.Status != tc.status {
			t.Errorf("GET %s: body %s, want status %q", tc.path, resp.body, tc.status)
		}
	}
	if resp := s.do(t, http.MethodGet, "/v1/nothing-here", "", nil); resp.status != http.StatusNotFound {
		t.Errorf("GET /v1/nothing-here: HTTP %d, want 404", resp.status)
	}
}

// TestConcurrentDecisions sends decisions from several goroutines at once:
// each must get its own, consistent answer.
func TestConcurrentDecisions(t *testing.T) {
	s := demo(t)
	type probe struct {
		body  string
		allow bool
	}
	probes := []probe{
		{bankReq("user_a", "GET", detail("7"), frn(bonds), ""), true},
		{bankReq("user_b", "GET", detail("7"), frn(bonds), ""), false},
		{bankReq("head_of_banking", "GET", detail("9"), frn(secret), ""), false},
		{bankReq("admin", "GET", detail("9"), frn(secret), ""), true},
	}
	errs := make(chan string, 200)
	done := make(chan struct{})
	for w := 0; w < 8; w++ {
		go func(w int) {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 25; i++ {
				p := probes[(w+i)%len(probes)]
				resp, err := httpClient.Post(s.URL+"/v1/decide", "application/json", strings.NewReader(p.body))
				if err != nil {
					errs <- err.Error()
					return
				}
				var d Decision
				err = json.NewDecoder(resp.Body).Decode(&d)
				resp.Body.Close()
				if err != nil || d.Allow != p.allow {
					errs <- p.body
				}
			}
		}(w)
	}
	for w := 0; w < 8; w++ {
		<-done
	}
	close(errs)
	for e := range errs {
		t.Errorf("wrong or failed answer under concurrency: %s", e)
	}
}
