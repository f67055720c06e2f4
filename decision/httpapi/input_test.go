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

// door is one way a decision request enters verdict over HTTP.
type door struct {
	name string
	// ask sends request (a POST /v1/decide body) through the door and
	// returns the status and the body of the answer.
	ask func(t *testing.T, request string) (int, []byte)
	// field is how the door names a field of request in a 400.
	field func(field string) string
}

// decisionDoors are the JSON doors of a decision: POST /v1/decide (also with
// explain=full), GET /v1/decide?input=, a batch item and data.verdict.decision.
func decisionDoors(h http.Handler) []door {
	do := func(t *testing.T, method, target, body string) (int, []byte) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(body)))
		return rec.Code, rec.Body.Bytes()
	}
	same := func(f string) string { return f }
	// batch moves the caller's fields to the batch and the rest to items[0].
	batch := func(t *testing.T, request string) string {
		t.Helper()
		var top map[string]json.RawMessage
		if err := json.Unmarshal([]byte(request), &top); err != nil {
			t.Fatal(err)
		}
		item := map[string]json.RawMessage{}
		for _, k := range []string{"request", "action", "resource", "context"} {
			if v, ok := top[k]; ok {
				item[k] = v
				delete(top, k)
			}
		}
		b, _ := json.Marshal(item)
		top["items"] = json.RawMessage("[" + string(b) + "]")
		out, _ := json.Marshal(top)
		return string(out)
	}
	return []door{
		{"POST /v1/decide", func(t *testing.T, r string) (int, []byte) { return do(t, "POST", "/v1/decide", r) }, same},
		{"POST /v1/decide?explain=full", func(t *testing.T, r string) (int, []byte) { return do(t, "POST", "/v1/decide?explain=full", r) }, same},
		{"GET /v1/decide?input=", func(t *testing.T, r string) (int, []byte) {
			return do(t, "GET", "/v1/decide?input="+url.QueryEscape(r), "")
		}, same},
		{"POST /v1/decide/batch", func(t *testing.T, r string) (int, []byte) {
			code, body := do(t, "POST", "/v1/decide/batch", batch(t, r))
			if code == http.StatusOK {
				var res struct{ Results []json.RawMessage }
				if err := json.Unmarshal(body, &res); err != nil || len(res.Results) != 1 {
					t.Fatalf("batch answer %s", body)
				}
				return code, res.Results[0]
			}
			return code, body
		}, func(f string) string {
			if f == "tenant" || f == "member" || f == "key" {
				return f
			}
			return "items[0]." + f
		}},
		{"POST /v1/data/verdict/decision", func(t *testing.T, r string) (int, []byte) {
			code, body := do(t, "POST", "/v1/data/verdict/decision", `{"input":`+r+`}`)
			if code == http.StatusOK {
				var res struct{ Result json.RawMessage }
				if err := json.Unmarshal(body, &res); err != nil {
					t.Fatalf("data answer %s", body)
				}
				return code, res.Result
			}
			return code, body
		}, func(f string) string { return "input." + f }},
	}
}

// decisionOf decodes the allow and first deny reason of a decision body.
func decisionOf(t *testing.T, body []byte) (allow bool, deny string) {
	t.Helper()
	var d struct {
		Allow   bool `json:"allow"`
		Reasons []struct{ Code, Effect string }
	}
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("decision %s: %v", body, err)
	}
	for _, r := range d.Reasons {
		if r.Effect == "deny" {
			return d.Allow, r.Code
		}
	}
	return d.Allow, ""
}

// TestPathsAreCanonicalAtEveryDoor is issue 14 item 7: {id} absorbed
// "..%2F", so a path a service resolves to the portfolio-type routes was
// judged (and allowed) as a portfolio. Every door now refuses such a path
// with a 400 naming request.path, and decodes harmless escapes so that the
// route found is the one the service serves.
func TestPathsAreCanonicalAtEveryDoor(t *testing.T) {
	h := demoAPI(t)
	req := func(path string) string {
		return `{"tenant":"bank","member":"user_a","request":{"method":"GET","path":` + strconvQuote(path) + `}}`
	}
	refused := []string{
		"/api/v1/portfolios/portfolio/..%2Fportfolio-type/",
		"/api/v1/portfolios/portfolio/..%2fportfolio-type/",
		"/api/v1/portfolios/portfolio/%2e%2e/portfolio-type/",
		"/api/v1/portfolios/portfolio/../portfolio-type/",
		"/api/v1/portfolios/portfolio/..%5Cportfolio-type/",
		`/api/v1/portfolios/portfolio/..\portfolio-type/`,
		"/api/v1/portfolios/portfolio/7%00/",
		"/api/v1/portfolios/portfolio/7%zz/",
	}
	for _, d := range decisionDoors(h) {
		t.Run(d.name, func(t *testing.T) {
			for _, path := range refused {
				code, body := d.ask(t, req(path))
				var e httpapi.ErrorBody
				if code != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || e.Field != d.field("request.path") {
					t.Errorf("%s: %d %s; want 400 naming %s", path, code, body, d.field("request.path"))
				}
			}
			// An escaped letter is the letter: the custom light route, as
			// the service routes it, not {id}.
			code, body := d.ask(t, req("/api/v1/portfolios/portfolio/%6Cight/"))
			if code != http.StatusOK || !strings.Contains(string(body), `"action":"finmars:Portfolio:list_light"`) {
				t.Errorf("an escaped letter: %d %s; want the list_light action", code, body)
			}
		})
	}
}

// TestAuthzRefusesAmbiguousPathsWithADeny: behind nginx, a path verdict
// refuses is a 403 with X-Verdict-Reason request.invalid (nginx turns any
// other status than 2xx, 401 and 403 into a 500).
func TestAuthzRefusesAmbiguousPathsWithADeny(t *testing.T) {
	srv := authzServer(t, httpapi.AuthzOptions{Tenant: "bank", MemberHeader: "X-User"})
	user := http.Header{"X-User": {"user_a"}}
	for _, uri := range []string{
		"/api/v1/portfolios/portfolio/..%2Fportfolio-type/",
		"/api/v1/portfolios/portfolio/%2E%2E/portfolio-type/?x=1",
		"/api/v1/portfolios/portfolio/..%5Cportfolio-type/",
	} {
		status, reason, body := authzAsk(t, srv, "GET", uri, user)
		if status != http.StatusForbidden || reason != httpapi.ReasonRequestInvalid || body["field"] != "X-Original-URI" {
			t.Errorf("%s: %d %q %v; want 403 %s naming X-Original-URI", uri, status, reason, body, httpapi.ReasonRequestInvalid)
		}
	}
	if status, reason, body := authzAsk(t, srv, "GET", "/api/v1/portfolios/portfolio/7/", user); status != 200 || reason != "iam.allow" {
		t.Errorf("a plain path: %d %q %v", status, reason, body)
	}
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestValuesThatDefeatExactDeniesAreRefused is issue 14 item 8: a request
// value written another way than the bundle's skipped an exact-match deny.
// context.ip is made canonical at every door (the demo blocks 203.0.113.66,
// even for the admin); FRNs and group codes are printable ASCII, so that
// "secret-portfolio " or "secret-portfolıo" cannot name the secret
// portfolio to a service while being another object to its Deny.
func TestValuesThatDefeatExactDeniesAreRefused(t *testing.T) {
	h := demoAPI(t)
	const secret = "frn:finmars:portfolios:portfolio:secret-portfolio"
	withIP := func(ip string) string {
		return `{"tenant":"bank","member":"admin","request":{"method":"GET","path":"/api/v1/portfolios/portfolio/"},"context":{"hour":10,"ip":` + ip + `}}`
	}
	withFRN := func(frn string) string {
		return `{"tenant":"bank","member":"head_of_banking","request":{"method":"GET","path":"/api/v1/portfolios/portfolio/9/"},"resource":{"frn":` + strconvQuote(frn) + `}}`
	}
	withGroup := func(g string) string {
		return `{"tenant":"bank","member":"user_a","request":{"method":"GET","path":"/api/v1/portfolios/portfolio/9/"},"resource":{"resource_groups":[` + strconvQuote(g) + `]}}`
	}
	denied := []struct{ name, request, code string }{
		{"a blocked address", withIP(`"203.0.113.66"`), "ext.ip_blocked"},
		{"a blocked address, IPv4-mapped", withIP(`"::ffff:203.0.113.66"`), "ext.ip_blocked"},
		{"a blocked address, IPv4-mapped in hex", withIP(`"::FFFF:cb00:7142"`), "ext.ip_blocked"},
		{"the secret portfolio", withFRN(secret), "iam.explicit_deny"},
		{"the secret portfolio, upper case", withFRN(strings.ToUpper(secret)), "iam.explicit_deny"},
	}
	refused := []struct{ name, request, field string }{
		{"an address with a trailing space", withIP(`"203.0.113.66 "`), "context.ip"},
		{"an address with a leading space", withIP(`" 203.0.113.66"`), "context.ip"},
		{"a zero-padded address", withIP(`"203.000.113.066"`), "context.ip"},
		{"an address with a zone", withIP(`"fe80::1%eth0"`), "context.ip"},
		{"a list of addresses", withIP(`"10.0.0.1, 203.0.113.66"`), "context.ip"},
		{"an address that is a number", withIP(`3405803842`), "context.ip"},
		{"an address that is null", withIP(`null`), "context.ip"},
		{"an FRN with a trailing space", withFRN(secret + " "), "resource.frn"},
		{"an FRN with a NUL", withFRN(secret + "\x00"), "resource.frn"},
		{"an FRN with a dotless i", withFRN("frn:finmars:portfolios:portfolıo:secret-portfolio"), "resource.frn"},
		{"an FRN with a long s", withFRN("frn:finmars:portfolios:portfolio:ſecret-portfolio"), "resource.frn"},
		{"an FRN with a Kelvin sign", withFRN("frn:finmars:portfolios:portfolio:\u212Aey"), "resource.frn"},
		{"an FRN that is a pattern", withFRN("frn:finmars:portfolios:portfolio:secret-*"), "resource.frn"},
		{"an FRN naming a resource group", withFRN("frn:finmars:iam:resourcegroup:portfolio_group_a"), "resource.frn"},
		{"a group code with a trailing space", withGroup("portfolio_group_a "), "resource.resource_groups[0]"},
		{"a group code that is a pattern", withGroup("portfolio_group_*"), "resource.resource_groups[0]"},
		{"a group code with a non-ASCII letter", withGroup("portfolıo_group_a"), "resource.resource_groups[0]"},
	}
	for _, d := range decisionDoors(h) {
		t.Run(d.name, func(t *testing.T) {
			for _, tt := range denied {
				code, body := d.ask(t, tt.request)
				if code != http.StatusOK {
					t.Errorf("%s: %d %s", tt.name, code, body)
					continue
				}
				if allow, deny := decisionOf(t, body); allow || deny != tt.code {
					t.Errorf("%s: allow %v, deny %q; want %s", tt.name, allow, deny, tt.code)
				}
			}
			for _, tt := range refused {
				code, body := d.ask(t, tt.request)
				var e httpapi.ErrorBody
				if code != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || e.Field != d.field(tt.field) {
					t.Errorf("%s: %d %s; want 400 naming %s", tt.name, code, body, d.field(tt.field))
				}
			}
		})
	}
}
