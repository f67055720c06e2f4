package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// POST /v1/compile/verdict/decision/allow answers OPA's Compile API from
// the running binary, as the README's examples show.
func TestCompileAPI(t *testing.T) {
	s := demo(t)
	post := func(accept, body string) response {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, s.URL+"/v1/compile/verdict/decision/allow", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", accept)
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out response
		out.status, out.header = resp.StatusCode, resp.Header
		out.body, _ = io.ReadAll(resp.Body)
		return out
	}
	type answer struct {
		Result *struct {
			Query any `json:"query"`
		} `json:"result"`
		DecisionID string `json:"decision_id"`
	}
	decode := func(r response) answer {
		var a answer
		json.Unmarshal(r.body, &a)
		return a
	}
	r := post("application/vnd.opa.sql.postgresql+json", `{"input": {"tenant": "bank", "member": "user_a", "action": "finmars:Portfolio:list", "model": "portfolios:portfolio"},
	  "options": {"targetSQLTableMappings": {"postgresql": {"resource": {"$self": "portfolios", "owner": "owner_id"}}}}}`)
	a := decode(r)
	want := "WHERE ((portfolios.owner_id = E'user_a' OR lower(portfolios.user_code) IN (E'bonds-portfolio', E'equity-portfolio')) AND lower(portfolios.user_code) IS DISTINCT FROM E'secret-portfolio')"
	if r.status != 200 || r.header.Get("Content-Type") != "application/vnd.opa.sql.postgresql+json" || a.Result == nil || a.Result.Query != want || a.DecisionID == "" {
		t.Errorf("SQL: %d %s %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	r = post("application/vnd.styra.ucast.prisma+json", `{"input": {"tenant": "bank", "member": "admin", "action": "finmars:Portfolio:list"}, "unknowns": ["input.resource"]}`)
	if a = decode(r); r.status != 200 || a.Result == nil || string(mustJSON(a.Result.Query)) != "{}" {
		t.Errorf("admin: %d %s", r.status, r.body)
	}
	r = post("application/vnd.opa.ucast.minimal+json", `{"input": {"tenant": "bank", "member": "nobody", "action": "finmars:Portfolio:list"}}`)
	if a = decode(r); r.status != 200 || a.Result != nil {
		t.Errorf("nobody: %d %s", r.status, r.body)
	}
	r = post("application/json", `{"input": {"tenant": "bank"}}`)
	if r.status != 400 || !strings.Contains(string(r.body), `"field":"Accept"`) {
		t.Errorf("application/json: %d %s", r.status, r.body)
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
