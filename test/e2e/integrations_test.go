package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	opatypes "github.com/open-policy-agent/opa/v1/server/types"
)

// dataAnswer decodes a Data API answer with OPA's own response type.
func dataAnswer(t *testing.T, r response) opatypes.DataResponseV1 {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var out opatypes.DataResponseV1
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	if out.DecisionID == "" {
		t.Errorf("no decision_id in %s", r.body)
	}
	return out
}

func TestDataAPI(t *testing.T) {
	s := demo(t)
	tests := []struct {
		name    string
		method  string
		path    string
		body    string
		defined bool
		want    any
	}{
		{"a condition that holds", "POST", "/v1/data/verdict/conditions/office_hours", `{"input":{"context":{"hour":10}}}`, true, true},
		{"a condition that does not hold is undefined", "POST", "/v1/data/verdict/conditions/office_hours", `{"input":{"context":{"hour":22}}}`, false, nil},
		{"plain bundle data", "POST", "/v1/data/verdict/blocked_ips", `{}`, true, []any{"203.0.113.66"}},
		{"an extension rule", "POST", "/v1/data/verdict/ext/deny", `{"input":{"context":{"ip":"203.0.113.66"}}}`, true,
			[]any{map[string]any{"code": "ext.ip_blocked", "message": "Requests from 203.0.113.66 are blocked."}}},
		{"an unknown document is undefined", "POST", "/v1/data/no/such/thing", `{"input":{}}`, false, nil},
		{"GET with input in the query", "GET", "/v1/data/verdict/conditions/office_hours?input=" + url.QueryEscape(`{"context":{"hour":9}}`), "", true, true},
		{"GET without input", "GET", "/v1/data/verdict/blocked_ips", "", true, []any{"203.0.113.66"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r response
			if tt.method == "GET" {
				r = s.do(t, "GET", tt.path, "", nil)
			} else {
				r = s.post(t, tt.path, tt.body)
			}
			out := dataAnswer(t, r)
			if (out.Result != nil) != tt.defined {
				t.Fatalf("defined = %v, want %v: %s", out.Result != nil, tt.defined, r.body)
			}
			if tt.defined && !reflect.DeepEqual(*out.Result, tt.want) {
				t.Errorf("result = %#v, want %#v", *out.Result, tt.want)
			}
		})
	}
}

// TestDataAPIDecisionMatchesDecide: data.verdict.decision is the same
// document as /v1/decide.
func TestDataAPIDecisionMatchesDecide(t *testing.T) {
	s := demo(t)
	request := `{"tenant":"bank","member":"user_b","request":{"method":"GET","path":"/api/v1/portfolios/portfolio/7/"},"resource":{"frn":"frn:finmars:portfolios:portfolio:fx-portfolio"}}`
	direct := s.decide(t, request)
	out := dataAnswer(t, s.post(t, "/v1/data/verdict/decision", `{"input":`+request+`}`))
	if out.Result == nil {
		t.Fatal("data.verdict.decision is undefined")
	}
	b, _ := json.Marshal(*out.Result)
	var viaData Decision
	if err := json.Unmarshal(b, &viaData); err != nil {
		t.Fatal(err)
	}
	if viaData.DecisionID != out.DecisionID {
		t.Errorf("result decision_id %q differs from the answer's %q", viaData.DecisionID, out.DecisionID)
	}
	viaData.DecisionID, direct.DecisionID = "", ""
	if !reflect.DeepEqual(&viaData, direct) {
		t.Errorf("data.verdict.decision = %+v\n/v1/decide           = %+v", viaData, direct)
	}
	bad := s.post(t, "/v1/data/verdict/decision", `{"input":{"tenant":"bank","memb":"x","action":"finmars:Portfolio:list"}}`)
	if bad.status != http.StatusBadRequest || !strings.Contains(string(bad.body), `"field":"input.memb"`) {
		t.Errorf("a bad decision input: %d %s", bad.status, bad.body)
	}
}

func TestAuthzEndpoint(t *testing.T) {
	s := startServer(t, "--bundle", demoBundle, "--authz-tenant", "bank", "--authz-member-header", "X-User")
	tests := []struct {
		name       string
		headers    map[string]string
		wantStatus int
		wantReason string
	}{
		{"allowed", map[string]string{"X-Original-Method": "GET", "X-Original-URI": "/api/v1/portfolios/portfolio/?page=3", "X-User": "user_a"}, 200, "iam.allow"},
		{"denied", map[string]string{"X-Original-Method": "DELETE", "X-Original-URI": "/api/v1/portfolios/portfolio/3/", "X-User": "user_a"}, 403, "iam.no_allow"},
		{"anonymous", map[string]string{"X-Original-Method": "GET", "X-Original-URI": "/api/v1/portfolios/portfolio/"}, 401, "iam.anonymous"},
		{"unknown route is 403, not 404", map[string]string{"X-Original-Method": "GET", "X-Original-URI": "/nope", "X-User": "user_a"}, 403, "route.unknown"},
		// --authz-tenant wins over the headers: a tenant header is not
		// read, and a key must belong to bank.
		{"a tenant header does not override --authz-tenant", map[string]string{"X-Original-Method": "GET", "X-Original-URI": "/buildName", "X-Verdict-Tenant": "tnt3"}, 401, "iam.anonymous"},
		{"a SOAJS key of another tenant", map[string]string{"X-Original-Method": "GET", "X-Original-URI": "/buildName", "key": "7bc1e66d003a3b2acfce1557cbda7320ec45057be0505fd7e9dec19e9fe74c194b109a48568f53449c1cc607a3cb23d70de86831a2ac4b87f1c0c5d57d19702a74ac22a64531185af11f75967f9ba54cb930149ed8a1384f924be9baa4ed5b0b"}, 403, "key.invalid"},
		{"missing method", map[string]string{"X-Original-URI": "/"}, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", s.URL+"/v1/authz", nil)
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			resp, err := httpClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := resp.Header.Get("X-Verdict-Reason"); got != tt.wantReason {
				t.Errorf("X-Verdict-Reason %q, want %q", got, tt.wantReason)
			}
			if tt.wantStatus != 400 && resp.Header.Get("X-Verdict-Decision-Id") == "" {
				t.Error("no X-Verdict-Decision-Id")
			}
		})
	}
}

func TestPlanEndpoint(t *testing.T) {
	s := demo(t)
	r := s.post(t, "/v1/plan", `{"tenant":"bank","member":"user_a","model":"portfolios:portfolio","request":{"method":"GET","path":"/api/v1/portfolios/portfolio/"}}`)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var p struct {
		Kind    string         `json:"kind"`
		Filter  map[string]any `json:"filter"`
		Exclude map[string]any `json:"exclude"`
	}
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"owner": "user_a", "resource_groups": []any{"portfolio_group_a"}, "user_codes": []any{"bonds-portfolio", "equity-portfolio"}}
	if p.Kind != "some" || !reflect.DeepEqual(p.Filter, want) {
		t.Errorf("plan = %s %v, want some %v", p.Kind, p.Filter, want)
	}
	if !reflect.DeepEqual(p.Exclude, map[string]any{"user_codes": []any{"secret-portfolio"}}) {
		t.Errorf("exclude = %v", p.Exclude)
	}
	bad := s.post(t, "/v1/plan", `{"tenant":"bank","member":"user_a","model":"portfolio","action":"finmars:Portfolio:list"}`)
	if bad.status != 400 || !strings.Contains(string(bad.body), `"field":"model"`) {
		t.Errorf("bad model: %d %s", bad.status, bad.body)
	}
	bad = s.post(t, "/v1/plan", `{"tenant":"bank","member":"user_a","model":"portfolios:portfolio","action":"finmars:Portfolio:list","context":{"n":1e999999}}`)
	if bad.status != 400 || !strings.Contains(string(bad.body), `"field":"context"`) {
		t.Errorf("context beyond Rego's range: %d %s", bad.status, bad.body)
	}
}

func TestBatchDecisions(t *testing.T) {
	s := demo(t)
	r := s.post(t, "/v1/decide/batch", `{"tenant":"bank","member":"user_a","items":[
		{"action":"finmars:Portfolio:list"},
		{"request":{"method":"DELETE","path":"/api/v1/portfolios/portfolio/3/"},"resource":{"frn":"frn:finmars:portfolios:portfolio:equity-portfolio"}},
		{"request":{"method":"GET","path":"/api/v1/portfolios/portfolio/3/"},"resource":{"frn":"frn:finmars:portfolios:portfolio:secret-portfolio"}},
		{"request":{"method":"GET","path":"/nowhere"}}]}`)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var out struct {
		Results []Decision `json:"results"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		allow  bool
		status int
		code   string
	}{{true, 200, "iam.allow"}, {false, 403, "iam.no_allow"}, {false, 403, "iam.explicit_deny"}, {false, 404, "route.unknown"}}
	if len(out.Results) != len(want) {
		t.Fatalf("%d results, want %d", len(out.Results), len(want))
	}
	ids := map[string]bool{}
	for i, w := range want {
		d := out.Results[i]
		if d.Allow != w.allow || d.Status != w.status || d.reason(w.code) == nil {
			t.Errorf("item %d: allow=%v status=%d reasons=%v, want %v %d %s", i, d.Allow, d.Status, d.codes(), w.allow, w.status, w.code)
		}
		if d.Tenant != "bank" || d.DecisionID == "" || ids[d.DecisionID] {
			t.Errorf("item %d: tenant %q, decision_id %q (each item needs its own)", i, d.Tenant, d.DecisionID)
		}
		ids[d.DecisionID] = true
	}

	for _, tc := range []struct{ body, field string }{
		{`{"tenant":"bank","member":"user_a","items":[]}`, "items"},
		{`{"tenant":"bank","items":[{"action":"finmars:Portfolio:list"},{"request":{"method":"BREW","path":"/"}}]}`, "items[1].request.method"},
		{`{"member":"user_a","items":[{"action":"finmars:Portfolio:list"}]}`, "tenant"},
		{`{"tenant":"bank","items":[{"action":"a:b:c:d"}]}`, "items[0].action"},
		{`{"tenant":"bank","items":[{"action":"finmars:Portfolio:list","context":{"n":1e999999}}]}`, "items[0].context"},
	} {
		bad := s.post(t, "/v1/decide/batch", tc.body)
		if bad.status != 400 || !strings.Contains(string(bad.body), `"field":"`+tc.field+`"`) {
			t.Errorf("%s: %d %s, want 400 naming %s", tc.body, bad.status, bad.body, tc.field)
		}
	}
	many := `{"tenant":"bank","items":[` + strings.Repeat(`{"action":"finmars:Portfolio:list"},`, 1000) + `{"action":"finmars:Portfolio:list"}]}`
	if bad := s.post(t, "/v1/decide/batch", many); bad.status != 400 || !strings.Contains(string(bad.body), "at most 1000") {
		t.Errorf("1001 items: %d %s", bad.status, bad.body)
	}
}
