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

// request is a decision request in two parts of JSON object members: the
// caller's (tenant, key, member, application) and the question's (request,
// action, resource, context), which a batch puts in an item.
type request struct{ caller, item string }

// door is one way a decision request enters verdict over HTTP.
type door struct {
	name string
	// ask sends the request through the door and returns the status and
	// the body of the answer (for a batch or the Data API, the decision).
	ask func(t *testing.T, r request) (int, []byte)
	// field is how the door names a field of the request in a 400.
	field func(field string) string
}

// decisionDoors are the JSON doors of a decision: POST /v1/decide (also with
// explain=full), POST /, GET /v1/decide?input=, a batch item,
// data.verdict.decision and data.verdict.engine.decision.
func decisionDoors(h http.Handler) []door {
	do := func(t *testing.T, method, target, body string) (int, []byte) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(body)))
		return rec.Code, rec.Body.Bytes()
	}
	whole := func(r request) string { return "{" + r.caller + "," + r.item + "}" }
	same := func(f string) string { return f }
	// inner returns the element of the answer at key (batch, Data API).
	inner := func(t *testing.T, code int, body []byte, get func(map[string]json.RawMessage) json.RawMessage) (int, []byte) {
		t.Helper()
		if code != http.StatusOK {
			return code, body
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("answer %s: %v", body, err)
		}
		return code, get(m)
	}
	return []door{
		{"POST /v1/decide", func(t *testing.T, r request) (int, []byte) { return do(t, "POST", "/v1/decide", whole(r)) }, same},
		{"POST / (default decision)", func(t *testing.T, r request) (int, []byte) { return do(t, "POST", "/", whole(r)) }, same},
		{"POST /v1/decide?explain=full", func(t *testing.T, r request) (int, []byte) {
			return do(t, "POST", "/v1/decide?explain=full", whole(r))
		}, same},
		{"GET /v1/decide?input=", func(t *testing.T, r request) (int, []byte) {
			return do(t, "GET", "/v1/decide?input="+url.QueryEscape(whole(r)), "")
		}, same},
		{"POST /v1/decide/batch", func(t *testing.T, r request) (int, []byte) {
			code, body := do(t, "POST", "/v1/decide/batch", "{"+r.caller+`,"items":[{"action":"finmars:Portfolio:list"},{`+r.item+"}]}")
			return inner(t, code, body, func(m map[string]json.RawMessage) json.RawMessage {
				var results []json.RawMessage
				if err := json.Unmarshal(m["results"], &results); err != nil || len(results) != 2 {
					t.Fatalf("batch answer %s", body)
				}
				return results[1]
			})
		}, func(f string) string {
			switch first, _, _ := strings.Cut(f, "."); first {
			case "request", "action", "resource", "context":
				return "items[1]." + f
			}
			return f
		}},
		{"POST /v1/data/verdict/decision", func(t *testing.T, r request) (int, []byte) {
			code, body := do(t, "POST", "/v1/data/verdict/decision", `{"input":`+whole(r)+`}`)
			return inner(t, code, body, func(m map[string]json.RawMessage) json.RawMessage { return m["result"] })
		}, func(f string) string { return "input." + f }},
		{"POST /v1/data/verdict/engine/decision", func(t *testing.T, r request) (int, []byte) {
			code, body := do(t, "POST", "/v1/data/verdict/engine/decision", `{"input":`+whole(r)+`}`)
			return inner(t, code, body, func(m map[string]json.RawMessage) json.RawMessage { return m["result"] })
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
	req := func(path string) request {
		return request{`"tenant":"bank","member":"user_a"`, `"request":{"method":"GET","path":` + strconvQuote(path) + `}`}
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
			if code != http.StatusOK || !strings.Contains(string(body), `finmars:Portfolio:list_light`) {
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
	withIP := func(ip string) request {
		return request{`"tenant":"bank","member":"admin"`, `"request":{"method":"GET","path":"/api/v1/portfolios/portfolio/"},"context":{"hour":10,"ip":` + ip + `}`}
	}
	withFRN := func(frn string) request {
		return request{`"tenant":"bank","member":"head_of_banking"`, `"request":{"method":"GET","path":"/api/v1/portfolios/portfolio/9/"},"resource":{"frn":` + strconvQuote(frn) + `}`}
	}
	withGroup := func(g string) request {
		return request{`"tenant":"bank","member":"user_a"`, `"request":{"method":"GET","path":"/api/v1/portfolios/portfolio/9/"},"resource":{"resource_groups":[` + strconvQuote(g) + `]}`}
	}
	denied := []struct {
		name    string
		request request
		code    string
	}{
		{"a blocked address", withIP(`"203.0.113.66"`), "ext.ip_blocked"},
		{"a blocked address, IPv4-mapped", withIP(`"::ffff:203.0.113.66"`), "ext.ip_blocked"},
		{"a blocked address, IPv4-mapped in hex", withIP(`"::FFFF:cb00:7142"`), "ext.ip_blocked"},
		{"the secret portfolio", withFRN(secret), "iam.explicit_deny"},
		{"the secret portfolio, upper case", withFRN(strings.ToUpper(secret)), "iam.explicit_deny"},
	}
	refused := []struct {
		name    string
		request request
		field   string
	}{
		{"an address with a trailing space", withIP(`"203.0.113.66 "`), "context.ip"},
		{"an address with a leading space", withIP(`" 203.0.113.66"`), "context.ip"},
		{"a zero-padded address", withIP(`"203.000.113.066"`), "context.ip"},
		{"an address with a zone", withIP(`"fe80::1%eth0"`), "context.ip"},
		{"a list of addresses", withIP(`"10.0.0.1, 203.0.113.66"`), "context.ip"},
		{"an address that is a number", withIP(`3405803842`), "context.ip"},
		{"an address that is null", withIP(`null`), "context.ip"},
		// A front end reading context keys ignoring case would see
		// another address than the rules (review 2, finding 4).
		{"a second address under IP", request{`"tenant":"bank","member":"admin"`, `"request":{"method":"GET","path":"/api/v1/portfolios/portfolio/"},"context":{"ip":"10.0.0.1","IP":"203.0.113.66"}`}, "context.IP"},
		{"an address under Ip alone", request{`"tenant":"bank","member":"admin"`, `"request":{"method":"GET","path":"/api/v1/portfolios/portfolio/"},"context":{"Ip":"203.0.113.66"}`}, "context.Ip"},
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

// TestAmbiguousKeysAreRefusedAtEveryDoor is issue 14 item 9 and issue 20
// item 7: encoding/json lets the last of two equal keys win and matches
// keys ignoring case, so {"member":"intern","MEMBER":"admin"} decided for
// the admin while a front end reading "member" saw the intern. Every door
// now refuses a key written twice or in another case than the field's,
// and names it (as unknown fields and type errors) by its full path.
func TestAmbiguousKeysAreRefusedAtEveryDoor(t *testing.T) {
	h := demoAPI(t)
	const destroy = `"request":{"method":"DELETE","path":"/api/v1/portfolios/portfolio/3/"}`
	tests := []struct {
		name    string
		request request
		field   string
		message string
	}{
		{"a tenant written twice", request{`"tenant":"tnt2","tenant":"bank","member":"admin"`, destroy}, "tenant", `key "tenant" is given twice`},
		{"a member and its upper-case twin", request{`"tenant":"bank","member":"intern","MEMBER":"admin"`, destroy}, "MEMBER",
			`unknown field "MEMBER" (field names are case-sensitive: did you mean "member"?)`},
		{"an upper-case member alone", request{`"tenant":"bank","MEMBER":"admin"`, destroy}, "MEMBER", `did you mean "member"?`},
		{"a path written twice", request{`"tenant":"bank","member":"admin"`, `"request":{"method":"DELETE","path":"/x/","path":"/api/v1/portfolios/portfolio/3/"}`},
			"request.path", `key "path" is given twice`},
		{"a capitalised path", request{`"tenant":"bank","member":"admin"`, `"request":{"method":"DELETE","Path":"/api/v1/portfolios/portfolio/3/"}`},
			"request.Path", `did you mean "path"?`},
		{"an address written twice in the context", request{`"tenant":"bank","member":"admin"`, destroy + `,"context":{"ip":"10.0.0.1","ip":"203.0.113.66"}`},
			"context.ip", `key "ip" is given twice`},
		{"an unknown field", request{`"tenant":"bank","member":"admin"`, destroy + `,"resource":{"frnn":"frn:finmars:portfolios:portfolio:x"}`},
			"resource.frnn", `unknown field "frnn"`},
		{"a type error", request{`"tenant":"bank","member":"admin"`, destroy + `,"resource":{"resource_groups":["a",7]}`},
			"resource.resource_groups[1]", `expected a string, got JSON number`},
	}
	for _, d := range decisionDoors(h) {
		t.Run(d.name, func(t *testing.T) {
			for _, tt := range tests {
				code, body := d.ask(t, tt.request)
				var e httpapi.ErrorBody
				if code != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || e.Field != d.field(tt.field) || !strings.Contains(e.Message, tt.message) {
					t.Errorf("%s: %d %s; want 400 naming %s with %q", tt.name, code, body, d.field(tt.field), tt.message)
				}
			}
		})
	}
	// A plan request is a decision request too.
	rec := post(t, h, "/v1/plan", []byte(`{"tenant":"bank","member":"intern","MEMBER":"admin","action":"finmars:Portfolio:list"}`))
	checkBadRequest(t, rec, "MEMBER")
	// The Data API's raw input (other documents than verdict/decision) is
	// OPA input: its keys are whatever the caller writes, but not twice.
	for _, target := range []string{"/v1/data/verdict/engine/decision", "/v1/data"} {
		rec = post(t, h, target, []byte(`{"input":{"tenant":"tnt2","tenant":"bank","member":"admin"}}`))
		checkBadRequest(t, rec, "input.tenant")
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/data/verdict/engine/decision?input="+url.QueryEscape(`{"member":"a","member":"b"}`), nil))
	checkBadRequest(t, rec, "input.member")
}
