package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"testing"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/access"
)

// TestWhoCanEndpointAgreesWithDecide pages through GET
// /v1/tenants/bank/access and asks POST /v1/decide for every member of the
// tenant: those listed are allowed with the same reasons, the others denied.
func TestWhoCanEndpointAgreesWithDecide(t *testing.T) {
	h := runtimeAPI(t, "")
	members := []string{"admin", "head_of_banking", "user_a", "user_b", "olivia", "intern", "nobody"}
	for _, q := range []struct{ action, frn string }{
		{"finmars:Portfolio:list", ""},
		{"finmars:Portfolio:retrieve", "frn:finmars:portfolios:portfolio:bonds-portfolio"},
		{"finmars:Instrument:list", ""},
	} {
		listed := map[string][]decision.Reason{}
		cursor := ""
		for {
			path := "/v1/tenants/bank/access?limit=1&action=" + url.QueryEscape(q.action)
			if q.frn != "" {
				path += "&frn=" + url.QueryEscape(q.frn)
			}
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			a := call(t, h, "GET", path, "", "")
			if a.code != http.StatusOK {
				t.Fatalf("GET %s: %d %s", path, a.code, a.body)
			}
			var page access.Page
			a.decode(t, &page)
			for _, g := range page.Grants {
				listed[g.Member] = g.Reasons
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
		if len(listed) == 0 {
			t.Fatalf("who-can %s lists nobody", q.action)
		}
		for _, m := range members {
			body := fmt.Sprintf(`{"tenant":"bank","member":%q,"action":%q}`, m, q.action)
			if q.frn != "" {
				body = fmt.Sprintf(`{"tenant":"bank","member":%q,"action":%q,"resource":{"frn":%q}}`, m, q.action, q.frn)
			}
			a := call(t, h, "POST", "/v1/decide", body, "")
			var d decision.Decision
			a.decode(t, &d)
			reasons, ok := listed[m]
			if ok != d.Allow {
				t.Fatalf("%s %s: who-can lists it: %v; /v1/decide allow=%v %v", q.action, m, ok, d.Allow, d.Reasons)
			}
			if ok && !reflect.DeepEqual(reasons, d.Reasons) {
				t.Fatalf("%s %s: reasons %v, /v1/decide %v", q.action, m, reasons, d.Reasons)
			}
		}
	}
}

func TestWhatCanEndpoint(t *testing.T) {
	h := runtimeAPI(t, "")
	a := call(t, h, "GET", "/v1/tenants/bank/members/olivia/access?limit=1000", "", "")
	if a.code != http.StatusOK {
		t.Fatalf("%d %s", a.code, a.body)
	}
	var page access.Page
	a.decode(t, &page)
	var actions []string
	for _, g := range page.Grants {
		actions = append(actions, g.Action)
		if len(g.Reasons) == 0 || g.Reasons[0].Effect != "allow" {
			t.Fatalf("grant %s without an allow reason: %v", g.Action, g.Reasons)
		}
	}
	if fmt.Sprint(actions) != "[finmars:Instrument:list finmars:Instrument:retrieve]" {
		t.Fatalf("olivia may %v", actions)
	}
}

func TestAccessEndpointErrors(t *testing.T) {
	h := runtimeAPI(t, adminToken)
	auth := "Bearer " + adminToken
	for _, tc := range []struct {
		path, auth string
		code       int
		field      string
	}{
		{"/v1/tenants/bank/access?action=finmars:Portfolio:list", "", http.StatusUnauthorized, ""},
		{"/v1/tenants/nope/access?action=finmars:Portfolio:list", auth, http.StatusNotFound, "tenant"},
		{"/v1/tenants/bank/access?action=finmars:Nothing:list", auth, http.StatusNotFound, "action"},
		{"/v1/tenants/bank/members/ghost/access", auth, http.StatusNotFound, "member"},
		{"/v1/tenants/nope/members/ghost/access", auth, http.StatusNotFound, "tenant"},
		{"/v1/tenants/bank/access", auth, http.StatusBadRequest, "action"},
		{"/v1/tenants/bank/access?action=finmars:Portfolio:list&limit=0", auth, http.StatusBadRequest, "limit"},
		{"/v1/tenants/bank/access?action=finmars:Portfolio:list&limit=x", auth, http.StatusBadRequest, "limit"},
		{"/v1/tenants/bank/access?action=finmars:Portfolio:list&cursor=zz", auth, http.StatusBadRequest, "cursor"},
		{"/v1/tenants/bank/access?action=finmars:Portfolio:list&frn=bad", auth, http.StatusBadRequest, "frn"},
		{"/v1/tenants/bank/access?action=finmars:Portfolio:list&acton=x", auth, http.StatusBadRequest, "acton"},
		{"/v1/tenants/bank/access?action=finmars:Portfolio:list&action=finmars:Portfolio:list", auth, http.StatusBadRequest, "action"},
		{"/v1/tenants/bank/members/olivia/access?action=finmars:Portfolio:list", auth, http.StatusBadRequest, "action"},
		{"/v1/tenants/bank/members/olivia/access", auth, http.StatusOK, ""},
	} {
		a := call(t, h, "GET", tc.path, "", tc.auth)
		if a.code != tc.code {
			t.Errorf("GET %s: %d %s, want %d", tc.path, a.code, a.body, tc.code)
			continue
		}
		if tc.field != "" {
			var e struct{ Field string }
			if err := json.Unmarshal([]byte(a.body), &e); err != nil || e.Field != tc.field {
				t.Errorf("GET %s: %s, want the field %q named", tc.path, a.body, tc.field)
			}
		}
	}
}
