package e2e

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

const (
	portfolioPath = "/api/v1/portfolios/portfolio/"
	bonds         = "frn:finmars:portfolios:portfolio:bonds-portfolio"
	equity        = "frn:finmars:portfolios:portfolio:equity-portfolio"
	fx            = "frn:finmars:portfolios:portfolio:fx-portfolio"
	secret        = "frn:finmars:portfolios:portfolio:secret-portfolio"
	oliviaPf      = "frn:finmars:portfolios:portfolio:olivia-portfolio"
)

// bankReq builds a request to the demo's bank tenant. member "" is
// anonymous; resource and context are raw JSON objects or "".
func bankReq(member, method, path, resource, context string) string {
	return req("bank", member, `{"method": "`+method+`", "path": "`+path+`"}`, "", resource, context)
}

// bankAction builds a request that names an action instead of a route.
func bankAction(member, action, resource, context string) string {
	return req("bank", member, "", action, resource, context)
}

func req(tenant, member, request, action, resource, context string) string {
	m := map[string]json.RawMessage{}
	str := func(s string) json.RawMessage { b, _ := json.Marshal(s); return b }
	if tenant != "" {
		m["tenant"] = str(tenant)
	}
	if member != "" {
		m["member"] = str(member)
	}
	if request != "" {
		m["request"] = json.RawMessage(request)
	}
	if action != "" {
		m["action"] = str(action)
	}
	if resource != "" {
		m["resource"] = json.RawMessage(resource)
	}
	if context != "" {
		m["context"] = json.RawMessage(context)
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func frn(f string) string { return `{"frn": "` + f + `"}` }

func detail(id string) string { return portfolioPath + id + "/" }

type decideCase struct {
	name       string
	body       string
	allow      bool
	status     int
	visibility string   // "" means full when allowed, none when denied
	fields     []string // nil means []
	codes      []string // every reason's code, in order
	action     string   // the decision's action; "" is not checked
	check      func(t *testing.T, d *Decision)
}

// grounds checks the policy, statement and resource group of a reason.
func grounds(code, policy string, statement int, group string) func(t *testing.T, d *Decision) {
	return func(t *testing.T, d *Decision) {
		t.Helper()
		r := d.reason(code)
		if r == nil {
			t.Fatalf("no reason %s in %+v", code, d.Reasons)
		}
		if r.Policy != policy || r.Statement == nil || *r.Statement != statement || r.ResourceGroup != group {
			st := "<nil>"
			if r.Statement != nil {
				st = strconv.Itoa(*r.Statement)
			}
			t.Errorf("reason %s names policy %q statement %s group %q; want %q %d %q", code, r.Policy, st, r.ResourceGroup, policy, statement, group)
		}
	}
}

func message(code, want string) func(t *testing.T, d *Decision) {
	return func(t *testing.T, d *Decision) {
		t.Helper()
		r := d.reason(code)
		if r == nil {
			t.Fatalf("no reason %s in %+v", code, d.Reasons)
		}
		if r.Message != want {
			t.Errorf("reason %s message = %q\nwant %q", code, r.Message, want)
		}
	}
}

func all(checks ...func(t *testing.T, d *Decision)) func(t *testing.T, d *Decision) {
	return func(t *testing.T, d *Decision) {
		t.Helper()
		for _, c := range checks {
			c(t, d)
		}
	}
}

var public = []string{"id", "user_code", "public_name"}

func bankCases() []decideCase {
	return []decideCase{
		// --- the admin: policies are not evaluated -----------------------------
		{name: "admin lists portfolios", body: bankReq("admin", "GET", portfolioPath, "", ""),
			allow: true, status: 200, codes: []string{"iam.admin"}, action: "finmars:Portfolio:list"},
		{name: "admin reads the secret portfolio", body: bankReq("admin", "GET", detail("9"), frn(secret), ""),
			allow: true, status: 200, codes: []string{"iam.admin"}, action: "finmars:Portfolio:retrieve"},
		{name: "admin deletes an instrument", body: bankReq("admin", "DELETE", "/api/v1/instruments/instrument/3/", "", ""),
			allow: true, status: 200, codes: []string{"iam.admin"}, action: "finmars:Instrument:destroy"},

		// --- head_of_banking: banking-full on everything but the secret -------
		{name: "head_of_banking retrieves bonds", body: bankReq("head_of_banking", "GET", detail("7"), frn(bonds), ""),
			allow: true, status: 200, codes: []string{"iam.allow", "resource.any"}, action: "finmars:Portfolio:retrieve",
			check: all(grounds("iam.allow", "banking-full", 0, ""), grounds("resource.any", "banking-full", 0, ""))},
		{name: "head_of_banking deletes a transaction", body: bankReq("head_of_banking", "DELETE", "/api/v1/transactions/transaction/12/", "", ""),
			allow: true, status: 200, codes: []string{"iam.allow", "resource.any"}, action: "finmars:Transaction:destroy"},
		{name: "head_of_banking lists portfolio types", body: bankReq("head_of_banking", "GET", "/api/v1/portfolios/portfolio-type/", "", ""),
			allow: true, status: 200, codes: []string{"iam.allow", "resource.any"}, action: "finmars:PortfolioType:list"},
		{name: "head_of_banking recalculates an instrument (:id route)", body: bankReq("head_of_banking", "POST", "/api/v1/instruments/instrument/5/recalculate/", "", ""),
			allow: true, status: 200, codes: []string{"iam.allow", "resource.any"}, action: "finmars:Instrument:recalculate"},
		{name: "head_of_banking books a transaction after hours", body: bankReq("head_of_banking", "POST", "/api/v1/transactions/transaction/", "", `{"hour": 22}`),
			allow: true, status: 200, codes: []string{"iam.allow", "resource.any"}, action: "finmars:Transaction:create",
			check: grounds("iam.allow", "banking-full", 0, "")},

		// --- secret-portfolio: an explicit Deny for all staff ------------------
		{name: "head_of_banking retrieves the secret portfolio", body: bankReq("head_of_banking", "GET", detail("9"), frn(secret), ""),
			allow: false, status: 403, codes: []string{"iam.explicit_deny"}, action: "finmars:Portfolio:retrieve",
			check: all(grounds("iam.explicit_deny", "deny-secret-portfolio", 0, ""),
				message("iam.explicit_deny", `User: frn:finmars:users:member:head_of_banking is not authorized to perform: retrieve on resource: `+secret+` with an explicit deny in access policy "deny-secret-portfolio", statement 0.`))},
		{name: "the secret portfolio's FRN compares ignoring case", body: bankReq("head_of_banking", "PATCH", detail("9"), frn(strings.ToUpper(secret)), ""),
			allow: false, status: 403, codes: []string{"iam.explicit_deny"}, action: "finmars:Portfolio:partial_update"},
		{name: "user_a cannot put the secret portfolio in her group", body: bankReq("user_a", "GET", detail("9"), `{"frn": "`+secret+`", "resource_groups": ["portfolio_group_a"]}`, ""),
			allow: false, status: 403, codes: []string{"iam.explicit_deny"}},
		{name: "a Deny on one portfolio does not forbid listing", body: bankReq("head_of_banking", "GET", portfolioPath, "", ""),
			allow: true, status: 200, codes: []string{"iam.allow", "resource.any"}, action: "finmars:Portfolio:list"},

		// --- user_a and user_b: each on their own resource group ---------------
		{name: "user_a retrieves bonds (her group)", body: bankReq("user_a", "GET", detail("7"), frn(bonds), ""),
			allow: true, status: 200, codes: []string{"iam.allow", "resource.group"}, action: "finmars:Portfolio:retrieve",
			check: all(grounds("iam.allow", "portfolio-group-a", 0, ""), grounds("resource.group", "portfolio-group-a", 0, "portfolio_group_a"))},
		{name: "user_a retrieves equity, FRN in upper case", body: bankReq("user_a", "GET", detail("8"), frn(strings.ToUpper(equity)), ""),
			allow: true, status: 200, codes: []string{"iam.allow", "resource.group"}},
		{name: "user_a updates bonds (*update)", body: bankReq("user_a", "PUT", detail("7"), frn(bonds), ""),
			allow: true, status: 200, codes: []string{"iam.allow", "resource.group"}, action: "finmars:Portfolio:update"},
		{name: "user_a partially updates bonds (*update)", body: bankReq("user_a", "PATCH", detail("7"), frn(bonds), ""),
			allow: true, status: 200, codes: []string{"iam.allow", "resource.group"}, action: "finmars:Portfolio:partial_update"},
		{name: "user_a may not destroy bonds", body: bankReq("user_a", "DELETE", detail("7"), frn(bonds), ""),
			allow: false, status: 403, codes: []string{"iam.no_allow"}, action: "finmars:Portfolio:destroy"},
		{name: "user_a lists portfolios", body: bankReq("user_a", "GET", portfolioPath, "", ""),
			allow: true, status: 200, codes: []string{"iam.allow", "resource.any"}, action: "finmars:Portfolio:list"},
		{name: "user_a lists portfolios with a query string", body: bankReq("user_a", "GET", portfolioPath+"?page=2&ordering=name", "", ""),
			allow: true, status: 200, codes: []string{"iam.allow", "resource.any"}, action: "finmars:Portfolio:list"},
		{name: "user_a uses the light list (custom route beats {id})", body: bankReq("user_a", "GET", portfolioPath+"light/", "", ""),
			allow: true, status: 200, codes: []string{"iam.allow", "resource.any"}, action: "finmars:Portfolio:list_light"},
		{name: "user_a HEAD on bonds is a retrieve", body: bankReq("user_a", "HEAD", "/api/v1/portfolios/portfolio/7", frn(bonds), ""),
			allow: true, status: 200, codes: []string{"iam.allow", "resource.group"}, action: "finmars:Portfolio:retrieve"},
		{name: "user_a may not list portfolio types", body: bankReq("user_a", "GET", "/api/v1/portfolios/portfolio-type/", "", ""),
			allow: false, status: 403, codes: []string{"iam.no_allow"}, action: "finmars:PortfolioType:list"},
		{name: "user_a retrieves fx (user_b's group)", body: bankReq("user_a", "GET", detail("5"), frn(fx), ""),
			allow: false, status: 403, codes: []string{"resource.not_covered"}, action: "finmars:Portfolio:retrieve"},
		{name: "user_a, a new portfolio the request puts in her group", body: bankReq("user_a", "GET", detail("11"), `{"frn": "frn:finmars:portfolios:portfolio:new-one", "resource_groups": ["portfolio_group_a"]}`, ""),
			allow: true, status: 200, codes: []string{"iam.allow", "resource.group"}, check: grounds("resource.group", "portfolio-group-a", 0, "portfolio_group_a")},
		{name: "user_a, a portfolio in no group", body: bankReq("user_a", "GET", detail("11"), frn("frn:finmars:portfolios:portfolio:new-one"), ""),
			allow: false, status: 403, codes: []string{"resource.not_covered"}},
		{name: "user_b retrieves fx (his group)", body: bankReq("user_b", "GET", detail("5"), frn(fx), ""),
			allow: true, status: 200, codes: []string{"iam.allow", "resource.group"}, check: grounds("resource.group", "portfolio-group-b", 0, "portfolio_group_b")},
		{name: "user_b retrieves bonds (user_a's group)", body: bankReq("user_b", "GET", detail("7"), frn(bonds), ""),
			allow: false, status: 403, codes: []string{"resource.not_covered"}},
		{name: "user_b updates equity (user_a's group)", body: bankReq("user_b", "PUT", detail("8"), frn(equity), ""),
			allow: false, status: 403, codes: []string{"resource.not_covered"}, action: "finmars:Portfolio:update"},
		{name: "user_a lists instruments (portfolio_viewer through her group)", body: bankReq("user_a", "GET", "/api/v1/instruments/instrument/", "", ""),
			allow: true, status: 200, codes: []string{"iam.allow", "resource.any"}, check: grounds("iam.allow", "instrument-read", 0, "")},
		{name: "user_a names the action instead of a route", body: bankAction("user_a", "finmars:Portfolio:retrieve", frn(bonds), ""),
			allow: true, status: 200, codes: []string{"iam.allow", "resource.group"}, action: "finmars:Portfolio:retrieve"},
		{name: "action matching ignores case", body: bankAction("user_a", "FINMARS:portfolio:RETRIEVE", frn(bonds), ""),
			allow: true, status: 200, codes: []string{"iam.allow", "resource.group"}},

		// --- public references -----------------------------------------------
		{name: "user_a reads fx as a reference", body: bankReq("user_a", "GET", detail("5"), `{"frn": "`+fx+`", "reference": true}`, ""),
			allow: true, status: 200, visibility: "public", fields: public, codes: []string{"resource.public"}},
		{name: "user_a lists fx as a reference", body: bankAction("user_a", "finmars:Portfolio:list", `{"frn": "`+fx+`", "reference": true}`, ""),
			allow: true, status: 200, visibility: "public", fields: public, codes: []string{"resource.public"}},
		{name: "a reference through an action a GET route maps to", body: bankReq("user_b", "GET", portfolioPath+"light/", `{"frn": "`+bonds+`", "reference": true}`, ""),
			allow: true, status: 200, visibility: "public", fields: public, codes: []string{"resource.public"}, action: "finmars:Portfolio:list_light"},
		{name: "a reference does not allow a write", body: bankReq("user_a", "PUT", detail("5"), `{"frn": "`+fx+`", "reference": true}`, ""),
			allow: false, status: 403, codes: []string{"resource.not_covered"}},
		{name: "a reference needs some Allow for the action", body: bankReq("intern", "GET", detail("5"), `{"frn": "`+fx+`", "reference": true}`, ""),
			allow: false, status: 403, codes: []string{"iam.no_allow"}},
		{name: "a covered reference is fully visible", body: bankReq("user_a", "GET", detail("7"), `{"frn": "`+bonds+`", "reference": true}`, ""),
			allow: true, status: 200, codes: []string{"iam.allow", "resource.group"}},
		{name: "a reference to the secret portfolio is still denied", body: bankReq("user_b", "GET", detail("9"), `{"frn": "`+secret+`", "reference": true}`, ""),
			allow: false, status: 403, codes: []string{"iam.explicit_deny"}},

		// --- olivia: instruments, and owner of olivia-portfolio ----------------
		{name: "olivia retrieves her own portfolio", body: bankReq("olivia", "GET", detail("3"), `{"frn": "`+oliviaPf+`", "owner": "olivia"}`, ""),
			allow: true, status: 200, codes: []string{"resource.owner"}, action: "finmars:Portfolio:retrieve"},
		{name: "olivia destroys her own portfolio (owners have full control)", body: bankReq("olivia", "DELETE", detail("3"), `{"frn": "`+oliviaPf+`", "owner": "olivia"}`, ""),
			allow: true, status: 200, codes: []string{"resource.owner"}, action: "finmars:Portfolio:destroy"},
		{name: "olivia on user_b's portfolio", body: bankReq("olivia", "GET", detail("3"), `{"frn": "`+oliviaPf+`", "owner": "user_b"}`, ""),
			allow: false, status: 403, codes: []string{"iam.no_allow"}},
		{name: "owner compares exactly", body: bankReq("olivia", "GET", detail("3"), `{"frn": "`+oliviaPf+`", "owner": "Olivia"}`, ""),
			allow: false, status: 403, codes: []string{"iam.no_allow"}},
		{name: "Deny beats ownership", body: bankReq("olivia", "GET", detail("9"), `{"frn": "`+secret+`", "owner": "olivia"}`, ""),
			allow: false, status: 403, codes: []string{"iam.explicit_deny"}},
		{name: "olivia retrieves an instrument", body: bankReq("olivia", "GET", "/api/v1/instruments/instrument/4/", frn("frn:finmars:instruments:instrument:usd"), ""),
			allow: true, status: 200, codes: []string{"iam.allow", "resource.any"}, check: grounds("iam.allow", "instrument-read", 0, "")},
		{name: "olivia may not recalculate an instrument", body: bankReq("olivia", "POST", "/api/v1/instruments/instrument/4/recalculate", "", ""),
			allow: false, status: 403, codes: []string{"iam.no_allow"}, action: "finmars:Instrument:recalculate"},

		// --- intern: no policy at all ----------------------------------------
		{name: "intern lists portfolios", body: bankReq("intern", "GET", portfolioPath, "", ""),
			allow: false, status: 403, codes: []string{"iam.no_allow"}, action: "finmars:Portfolio:list",
			check: message("iam.no_allow", "User: frn:finmars:users:member:intern is not authorized to perform: list on resource: finmars:Portfolio because no access policy allows the 'list' action.")},
		{name: "intern retrieves bonds", body: bankReq("intern", "GET", detail("7"), frn(bonds), ""),
			allow: false, status: 403, codes: []string{"iam.no_allow"}},

		// --- office_hours condition (context.hour) ------------------------------
		{name: "user_a books a transaction at 10:00", body: bankReq("user_a", "POST", "/api/v1/transactions/transaction/", "", `{"hour": 10}`),
			allow: true, status: 200, codes: []string{"iam.allow", "resource.any"}, action: "finmars:Transaction:create",
			check: grounds("iam.allow", "office-hours-transactions", 0, "")},
		{name: "user_b books a transaction at 09:00", body: bankReq("user_b", "POST", "/api/v1/transactions/transaction/", "", `{"hour": 9}`),
			allow: true, status: 200, codes: []string{"iam.allow", "resource.any"}},
		{name: "olivia books a transaction at 17:00", body: bankReq("olivia", "POST", "/api/v1/transactions/transaction", "", `{"hour": 17}`),
			allow: true, status: 200, codes: []string{"iam.allow", "resource.any"}},
		{name: "user_a books a transaction at 18:00", body: bankReq("user_a", "POST", "/api/v1/transactions/transaction/", "", `{"hour": 18}`),
			allow: false, status: 403, codes: []string{"iam.no_allow"}},
		{name: "user_a books a transaction at 08:00", body: bankReq("user_a", "POST", "/api/v1/transactions/transaction/", "", `{"hour": 8}`),
			allow: false, status: 403, codes: []string{"iam.no_allow"}},
		{name: "no hour: the condition is undefined, so false", body: bankReq("user_a", "POST", "/api/v1/transactions/transaction/", "", ""),
			allow: false, status: 403, codes: []string{"iam.no_allow"}},
		{name: "office hours allow create only", body: bankReq("user_a", "GET", "/api/v1/transactions/transaction/", "", `{"hour": 10}`),
			allow: false, status: 403, codes: []string{"iam.no_allow"}, action: "finmars:Transaction:list"},
		{name: "intern is not staff", body: bankReq("intern", "POST", "/api/v1/transactions/transaction/", "", `{"hour": 10}`),
			allow: false, status: 403, codes: []string{"iam.no_allow"}},

		// --- extension rules: a blocked IP is denied, even for the admin ----------
		{name: "admin from a blocked IP", body: bankReq("admin", "GET", portfolioPath, "", `{"ip": "203.0.113.66"}`),
			allow: false, status: 403, codes: []string{"iam.admin", "ext.ip_blocked"},
			check: message("ext.ip_blocked", "Requests from 203.0.113.66 are blocked.")},
		{name: "user_a from a blocked IP", body: bankReq("user_a", "GET", detail("7"), frn(bonds), `{"ip": "203.0.113.66", "hour": 10}`),
			allow: false, status: 403, codes: []string{"iam.allow", "resource.group", "ext.ip_blocked"}},
		{name: "admin from another IP", body: bankReq("admin", "GET", portfolioPath, "", `{"ip": "10.0.0.1"}`),
			allow: true, status: 200, codes: []string{"iam.admin"}},
		{name: "a deny before the extensions decides alone", body: bankReq("intern", "GET", portfolioPath, "", `{"ip": "203.0.113.66"}`),
			allow: false, status: 403, codes: []string{"iam.no_allow"}},

		// --- who is asking ------------------------------------------------------
		{name: "anonymous", body: bankReq("", "GET", portfolioPath, "", ""),
			allow: false, status: 401, codes: []string{"iam.anonymous"}},
		{name: "unknown member", body: bankReq("mallory", "GET", portfolioPath, "", ""),
			allow: false, status: 403, codes: []string{"iam.unknown_member"}},
		{name: "member names compare exactly", body: bankReq("User_A", "GET", portfolioPath, "", ""),
			allow: false, status: 403, codes: []string{"iam.unknown_member"}},
		{name: "unknown tenant", body: req("nope", "user_a", `{"method": "GET", "path": "`+portfolioPath+`"}`, "", "", ""),
			allow: false, status: 404, codes: []string{"tenant.unknown"}},
		{name: "tenant codes compare exactly", body: req("Bank", "admin", "", "finmars:Portfolio:list", "", ""),
			allow: false, status: 404, codes: []string{"tenant.unknown"}},

		// --- routes --------------------------------------------------------------
		{name: "unknown route", body: bankReq("admin", "GET", "/api/v2/nothing/", "", ""),
			allow: false, status: 404, codes: []string{"route.unknown"},
			check: func(t *testing.T, d *Decision) {
				if r := d.reason("route.unknown"); r.SoajsCode != 130 || r.Message != "Unknown service." {
					t.Errorf("route.unknown reason = %+v, want soajs_code 130 and SOAJS's message", r)
				}
			}},
		{name: "unknown method on a known path", body: bankReq("admin", "DELETE", portfolioPath, "", ""),
			allow: false, status: 404, codes: []string{"route.unknown"}},
		{name: "a route decides before the member", body: bankReq("", "GET", "/api/v2/nothing/", "", ""),
			allow: false, status: 404, codes: []string{"route.unknown"}},
		{name: "service scoping: the portfolios service", body: req("bank", "user_a", `{"service": "portfolios", "method": "GET", "path": "`+portfolioPath+`"}`, "", "", ""),
			allow: true, status: 200, codes: []string{"iam.allow", "resource.any"}},
		{name: "service scoping: a portfolio path is not an instruments route", body: req("bank", "user_a", `{"service": "instruments", "method": "GET", "path": "`+portfolioPath+`"}`, "", "", ""),
			allow: false, status: 404, codes: []string{"route.unknown"}},
		{name: "an unknown service", body: req("bank", "admin", `{"service": "nope", "method": "GET", "path": "`+portfolioPath+`"}`, "", "", ""),
			allow: false, status: 404, codes: []string{"route.unknown"}},
	}
}

func runDecideCase(t *testing.T, s *server, tc decideCase) {
	t.Helper()
	d := s.decide(t, tc.body)
	if d.Allow != tc.allow || d.Status != tc.status {
		t.Errorf("allow, status = %v, %d; want %v, %d\nreasons: %+v", d.Allow, d.Status, tc.allow, tc.status, d.Reasons)
	}
	wantVis := tc.visibility
	if wantVis == "" {
		wantVis = "none"
		if tc.allow {
			wantVis = "full"
		}
	}
	if d.Visibility != wantVis {
		t.Errorf("visibility = %q, want %q", d.Visibility, wantVis)
	}
	wantFields := tc.fields
	if wantFields == nil {
		wantFields = []string{}
	}
	if d.Fields == nil || !reflect.DeepEqual(d.Fields, wantFields) {
		t.Errorf("fields = %#v, want %#v", d.Fields, wantFields)
	}
	if got := d.codes(); !reflect.DeepEqual(got, tc.codes) {
		t.Errorf("reason codes = %q, want %q\nreasons: %+v", got, tc.codes, d.Reasons)
	}
	for _, r := range d.Reasons {
		if r.Message == "" || r.Layer == "" || (r.Effect != "allow" && r.Effect != "deny") {
			t.Errorf("malformed reason %+v", r)
		}
		if !tc.allow && strings.HasPrefix(r.Code, "iam.") && r.Effect == "deny" && r.Layer != "iam" {
			t.Errorf("reason %s has layer %q", r.Code, r.Layer)
		}
	}
	if tc.allow {
		for _, r := range d.Reasons {
			if r.Effect != "allow" {
				t.Errorf("an allow with a deny reason: %+v", r)
			}
		}
	} else if len(d.Reasons) == 0 || d.Reasons[len(d.Reasons)-1].Effect != "deny" {
		t.Errorf("a deny without a deny reason: %+v", d.Reasons)
	}
	if tc.action != "" && d.Action != tc.action {
		t.Errorf("action = %q, want %q", d.Action, tc.action)
	}
	if d.DecisionID == "" {
		t.Error("decision_id is empty")
	}
	if tc.check != nil {
		tc.check(t, d)
	}
}

func TestDecideDemoBank(t *testing.T) {
	s := demo(t)
	for _, tc := range bankCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runDecideCase(t, s, tc)
		})
	}
}

func TestDecisionEnvelope(t *testing.T) {
	s := demo(t)
	a := s.decide(t, bankReq("user_a", "GET", detail("7"), frn(bonds), ""))
	b := s.decide(t, bankReq("user_a", "GET", detail("7"), frn(bonds), ""))
	if a.DecisionID == "" || a.DecisionID == b.DecisionID {
		t.Errorf("decision ids %q and %q must be set and distinct", a.DecisionID, b.DecisionID)
	}
	if a.Tenant != "bank" {
		t.Errorf("tenant = %q, want bank", a.Tenant)
	}
	if want := map[string]string{"demo": "2026-11-22.1"}; !reflect.DeepEqual(a.Revision, want) {
		t.Errorf("revision = %v, want %v", a.Revision, want)
	}
	// The raw JSON carries every field of README "HTTP API", also when empty.
	resp := s.post(t, "/v1/decide", bankReq("intern", "GET", portfolioPath, "", ""))
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(resp.body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"decision_id", "allow", "status", "tenant", "action", "visibility", "fields", "reasons", "revision"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("the decision has no %q: %s", k, resp.body)
		}
	}
	if string(raw["fields"]) != "[]" {
		t.Errorf("fields of a deny = %s, want []", raw["fields"])
	}
}

// TestEmbeddedDemo runs `verdict run` without --bundle: it serves the
// embedded demo bundle.
func TestEmbeddedDemo(t *testing.T) {
	s := startServer(t)
	d := s.decide(t, bankReq("user_a", "GET", detail("7"), frn(bonds), ""))
	if !d.Allow || d.Revision["demo"] != "2026-11-22.1" {
		t.Errorf("embedded demo: allow %v, revision %v", d.Allow, d.Revision)
	}
}
