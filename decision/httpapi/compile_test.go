package httpapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/decision/httpapi"
	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/loader/loadertest"
	"github.com/verdict-authz/verdict/test/ucasteval"
)

const (
	compileURL   = "/v1/compile/verdict/decision/allow"
	acceptPrisma = "application/vnd.opa.ucast.prisma+json"
	acceptSQL    = "application/vnd.opa.sql.postgresql+json"
)

// compileAnswer is a Compile API answer, decoded.
type compileAnswer struct {
	status      int
	contentType string
	body        map[string]any
	raw         string
}

// query is the answer's result.query, and whether there is a result.
func (a compileAnswer) query() (any, bool) {
	res, ok := a.body["result"].(map[string]any)
	if !ok {
		return nil, false
	}
	return res["query"], true
}

func compile(t *testing.T, srv *httptest.Server, path string, accept []string, body string) compileAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for _, a := range accept {
		req.Header.Add("Accept", a)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := compileAnswer{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), raw: string(raw)}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		t.Fatalf("POST %s: %d, body is not JSON: %q", path, resp.StatusCode, raw)
	}
	return a
}

func compileServer(t *testing.T, sources ...loader.Source) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	if len(sources) == 0 {
		engine, _ := loadertest.Demo(t)
		srv = httptest.NewServer(httpapi.New(engine, httpapi.Options{Log: quiet}))
	} else {
		engine, _ := loadertest.Load(t, sources)
		srv = httptest.NewServer(httpapi.New(engine, httpapi.Options{Log: quiet}))
	}
	t.Cleanup(srv.Close)
	return srv
}

func listInput(member string) string {
	return `{"input": {"tenant": "bank", "member": "` + member + `", "model": "portfolios:portfolio",
	  "request": {"method": "GET", "path": "/api/v1/portfolios/portfolio/"}}, "unknowns": ["input.resource"]}`
}

// The answers have OPA's shapes, as OPA's SDKs read them: {"result":
// {"query": …}} with the content type asked for, {} as the query of the
// unconditional filter, no result when nothing can be listed.
func TestCompileAnswers(t *testing.T) {
	srv := compileServer(t)
	tests := []struct {
		name, member, accept string
		body                 string // "" for listInput(member)
		want                 string // JSON of result.query; "" when there is no result
	}{
		{"a manager, Prisma", "user_a", acceptPrisma, "",
			`{"operator":"and","type":"compound","value":[{"operator":"or","type":"compound","value":[` +
				`{"field":"portfolios.owner","operator":"eq","type":"field","value":"user_a"},` +
				`{"field":"portfolios.user_code","operator":"in","type":"field","value":["bonds-portfolio","equity-portfolio"]}]},` +
				`{"field":"portfolios.user_code","operator":"ne","type":"field","value":"secret-portfolio"}]}`},
		{"a manager, SQL", "user_a", acceptSQL, "",
			`"WHERE ((portfolios.owner = E'user_a' OR lower(portfolios.user_code) IN (E'bonds-portfolio', E'equity-portfolio')) AND lower(portfolios.user_code) IS DISTINCT FROM E'secret-portfolio')"`},
		{"the older Styra name", "intern", "application/vnd.styra.ucast.minimal+json", "",
			`{"field":"portfolios.owner","operator":"eq","type":"field","value":"intern"}`},
		{"everything but the secret portfolio", "head_of_banking", "application/vnd.opa.ucast.all+json", "",
			`{"field":"portfolios.user_code","operator":"ne","type":"field","value":"secret-portfolio"}`},
		{"an admin, unconditional UCAST", "admin", acceptPrisma, "", `{}`},
		{"an admin, unconditional SQL", "admin", acceptSQL, "", `""`},
		{"an unknown member, nothing", "nobody", acceptPrisma, "", ""},
		{"no member, nothing", "", acceptSQL, "", ""},
		{"an action instead of a request, default names", "user_a", acceptPrisma,
			`{"input": {"tenant": "bank", "member": "intern", "action": "finmars:Portfolio:list"}}`,
			`{"field":"resource.owner","operator":"eq","type":"field","value":"intern"}`},
		{"the query named as OPA names it", "user_a", acceptPrisma,
			`{"query": "data.verdict.decision.allow", "input": {"tenant": "bank", "member": "intern", "action": "finmars:Portfolio:list"}}`,
			`{"field":"resource.owner","operator":"eq","type":"field","value":"intern"}`},
		{"a q-weighted list", "intern", "application/json;q=1, " + acceptSQL + ";q=0.5, " + acceptPrisma + ";q=0.9", "",
			`{"field":"portfolios.owner","operator":"eq","type":"field","value":"intern"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.body
			if body == "" {
				body = strings.Replace(listInput(tt.member), `"unknowns"`,
					`"options": {"targetSQLTableMappings": {"resource": {"$self": "portfolios"}}}, "unknowns"`, 1)
			}
			a := compile(t, srv, compileURL, []string{tt.accept}, body)
			wantType, _, _ := strings.Cut(tt.accept, ",")
			if strings.Contains(tt.accept, "q=0.9") {
				wantType = acceptPrisma
			}
			if a.status != http.StatusOK || a.contentType != wantType {
				t.Fatalf("%d %s %s", a.status, a.contentType, a.raw)
			}
			if id, _ := a.body["decision_id"].(string); id == "" {
				t.Errorf("no decision_id: %s", a.raw)
			}
			q, ok := a.query()
			if tt.want == "" {
				if ok {
					t.Errorf("a result where nothing can be listed: %s", a.raw)
				}
				return
			}
			got, _ := json.Marshal(q)
			if !ok || !jsonEqual(string(got), tt.want) {
				t.Errorf("query\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// A multi-target answer has one filter per target, keyed as OPA keys it,
// and an empty result where nothing can be listed.
func TestCompileMultiTarget(t *testing.T) {
	srv := compileServer(t)
	body := `{"input": {"tenant": "bank", "member": "intern", "action": "finmars:Portfolio:list"},
	  "options": {"targetDialects": ["ucast+prisma", "sql+postgresql", "ucast+minimal"],
	              "targetSQLTableMappings": {"postgresql": {"resource": {"$self": "p"}}}}}`
	a := compile(t, srv, compileURL, []string{"application/vnd.opa.multitarget+json"}, body)
	if a.status != http.StatusOK || a.contentType != "application/vnd.opa.multitarget+json" {
		t.Fatalf("%d %s %s", a.status, a.contentType, a.raw)
	}
	want := `{"postgresql":{"query":"WHERE p.owner = E'intern'"},"ucast":{"query":{"field":"resource.owner","operator":"eq","type":"field","value":"intern"}}}`
	if got, _ := json.Marshal(a.body["result"]); !jsonEqual(string(got), want) {
		t.Errorf("result\n got %s\nwant %s", got, want)
	}
	a = compile(t, srv, compileURL, []string{"application/vnd.styra.multitarget+json"}, strings.Replace(body, "intern", "nobody", 1))
	if got, _ := json.Marshal(a.body["result"]); a.status != http.StatusOK || string(got) != `{}` {
		t.Errorf("nothing to list: %d %s", a.status, a.raw)
	}
}

// Every malformed request is a 400 naming what is wrong, an unknown path
// a 404; no request gets a filter it did not ask for.
func TestCompileRefusals(t *testing.T) {
	srv := compileServer(t, loader.Source{Name: "filters", Location: filepath.Join("..", "datafilter", "testdata", "filters")})
	ok := `{"input": {"tenant": "bank", "member": "user_d", "action": "finmars:Portfolio:list"}}`
	tests := []struct {
		name, path string
		accept     []string
		body       string
		status     int
		code       string
		field      string
		message    string
	}{
		{"another rule", "/v1/compile/verdict/decision", []string{acceptSQL}, ok, 404, "not_found", "path", "data.verdict.decision.allow only"},
		{"no Accept", compileURL, nil, ok, 400, "invalid_request", "Accept", "missing"},
		{"OPA's partial evaluation", compileURL, []string{"application/json"}, ok, 400, "invalid_request", "Accept", "not application/json"},
		{"MySQL", compileURL, []string{"application/vnd.opa.sql.mysql+json"}, ok, 400, "invalid_request", "Accept", "not application/vnd.opa.sql.mysql+json"},
		{"a refused type", compileURL, []string{acceptSQL + ";q=0"}, ok, 400, "invalid_request", "Accept", ""},
		{"no input", compileURL, []string{acceptSQL}, `{"unknowns": ["input.resource"]}`, 400, "invalid_request", "input", "input is required"},
		{"the unknown given", compileURL, []string{acceptSQL}, `{"input": {"tenant": "bank", "member": "user_d", "action": "finmars:Portfolio:list", "resource": {"frn": "frn:finmars:portfolios:portfolio:a1"}}}`,
			400, "invalid_request", "input.resource", "the unknown the filter is about"},
		{"an unknown input field", compileURL, []string{acceptSQL}, `{"input": {"tenant": "bank", "membr": "user_d", "action": "a:b:c"}}`, 400, "invalid_request", "input.membr", "unknown field"},
		{"no tenant", compileURL, []string{acceptSQL}, `{"input": {"member": "user_d", "action": "finmars:Portfolio:list"}}`, 400, "invalid_request", "input.", ""},
		{"a bad model", compileURL, []string{acceptSQL}, `{"input": {"tenant": "bank", "member": "user_d", "action": "finmars:Portfolio:list", "model": "portfolios"}}`, 400, "invalid_request", "input.model", ""},
		{"other unknowns", compileURL, []string{acceptSQL}, `{"input": {"tenant": "bank"}, "unknowns": ["input.user"]}`, 400, "invalid_request", "unknowns", "input.resource"},
		{"another query", compileURL, []string{acceptSQL}, `{"input": {"tenant": "bank"}, "query": "data.x"}`, 400, "invalid_request", "query", ""},
		{"a mask rule", compileURL, []string{acceptSQL}, `{"input": {"tenant": "bank"}, "options": {"maskRule": "masks"}}`, 400, "invalid_request", "options.maskRule", "no column masks"},
		{"an unknown option", compileURL, []string{acceptSQL}, `{"input": {"tenant": "bank"}, "options": {"disableInlining": []}}`, 400, "invalid_request", "", `unknown field "disableInlining"`},
		{"a bad column mapping", compileURL, []string{acceptSQL}, `{"input": {"tenant": "bank", "member": "user_d", "action": "finmars:Portfolio:list"}, "options": {"targetSQLTableMappings": {"resource": {"ownr": "o"}}}}`,
			400, "invalid_request", "options.targetSQLTableMappings.resource.ownr", "not a field"},
		{"multi without targets", compileURL, []string{"application/vnd.opa.multitarget+json"}, ok, 400, "invalid_request", "options.targetDialects", "needs the targets"},
		{"multi with MySQL", compileURL, []string{"application/vnd.opa.multitarget+json"}, `{"input": {"tenant": "bank"}, "options": {"targetDialects": ["sql+mysql"]}}`, 400, "invalid_request", "options.targetDialects[0]", "sql+mysql"},
		{"malformed JSON", compileURL, []string{acceptSQL}, `{"input": `, 400, "invalid_request", "", "truncated"},
		{"two stars in UCAST", compileURL, []string{acceptPrisma}, `{"input": {"tenant": "bank", "member": "user_a", "action": "finmars:Portfolio:list", "model": "portfolios:portfolio"}}`,
			400, "evaluation_error", "", "more than one *"},
		{"a prefix in UCAST minimal", compileURL, []string{"application/vnd.opa.ucast.minimal+json"}, ok, 400, "evaluation_error", "", "UCAST minimal does not have"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := compile(t, srv, tt.path, tt.accept, tt.body)
			field, _ := a.body["field"].(string)
			msg, _ := a.body["message"].(string)
			if a.status != tt.status || a.body["code"] != tt.code || !strings.HasPrefix(field, tt.field) || !strings.Contains(msg, tt.message) {
				t.Errorf("%d %s, want %d %s naming %q with %q", a.status, a.raw, tt.status, tt.code, tt.field, tt.message)
			}
			if _, ok := a.body["result"]; ok {
				t.Errorf("a refusal with a result: %s", a.raw)
			}
		})
	}
	// The same two-star plan is answered in SQL.
	a := compile(t, srv, compileURL, []string{acceptSQL}, `{"input": {"tenant": "bank", "member": "user_a", "action": "finmars:Portfolio:list", "model": "portfolios:portfolio"}}`)
	if q, ok := a.query(); a.status != 200 || !ok || !strings.Contains(q.(string), "LIKE E'q%r%s'") {
		t.Errorf("SQL of a two-star pattern: %d %s", a.status, a.raw)
	}
}

// The filters /v1/compile answers over HTTP keep exactly the objects
// POST /v1/decide allows, for the demo's members and objects drawn from its
// user codes and owners (the filter's UCAST evaluated on each).
func TestCompileAgreesWithDecide(t *testing.T) {
	srv := compileServer(t)
	codes := []string{"bonds-portfolio", "equity-portfolio", "fx-portfolio", "secret-portfolio", "Bonds-Portfolio", "SECRET-PORTFOLIO", "other", "user_a-pf"}
	members := []string{"admin", "head_of_banking", "user_a", "user_b", "intern", "nobody"}
	rng := rand.New(rand.NewPCG(3, 4))
	checked, allowed := 0, 0
	for _, member := range members {
		for _, accept := range []string{acceptPrisma, "application/vnd.opa.ucast.minimal+json"} {
			a := compile(t, srv, compileURL, []string{accept}, listInput(member))
			if a.status != http.StatusOK {
				t.Fatalf("%s %s: %d %s", member, accept, a.status, a.raw)
			}
			q, hasResult := a.query()
			for i := 0; i < 24; i++ {
				code, owner := codes[rng.IntN(len(codes))], members[rng.IntN(len(members))]
				d := decideOverHTTP(t, srv, fmt.Sprintf(`{"tenant": "bank", "member": %q, "request": {"method": "GET", "path": "/api/v1/portfolios/portfolio/"},
				  "resource": {"frn": "frn:finmars:portfolios:portfolio:%s", "owner": %q}}`, member, code, owner))
				kept := false
				if hasResult {
					var err error
					row := map[string]string{"resource.user_code": strings.ToLower(code), "resource.owner": owner}
					if kept, err = ucasteval.Eval(q.(map[string]any), row); err != nil {
						t.Fatalf("%s: %v in %s", member, err, a.raw)
					}
				}
				if kept != d {
					t.Errorf("%s (%s) on %s owned by %s: decide allow=%v, the filter keeps it=%v: %s", member, accept, code, owner, d, kept, a.raw)
				}
				checked++
				if d {
					allowed++
				}
			}
		}
	}
	if allowed == 0 || allowed == checked {
		t.Fatalf("%d of %d allowed: both outcomes are not exercised", allowed, checked)
	}
}

func decideOverHTTP(t *testing.T, srv *httptest.Server, body string) bool {
	t.Helper()
	resp, err := srv.Client().Post(srv.URL+"/v1/decide", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d struct{ Allow bool }
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/v1/decide %s: %d %v", body, resp.StatusCode, err)
	}
	return d.Allow
}
