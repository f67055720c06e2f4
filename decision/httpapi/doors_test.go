package httpapi_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/decision/httpapi"
	"github.com/verdict-authz/verdict/loader/loadertest"
)

// TestEveryDoorAgreesWithDecide is the property "every door agrees"
// (README "HTTP API"): for random questions over the demo bundle - well formed, with
// facts left out, with fields of the wrong type, and inputs that are no
// object at all - no public path answers an allow that POST /v1/decide
// does not give for the same question. The doors: POST /v1/decide/batch,
// POST /v1/plan (kind "all"), the Data API (GET and POST) on
// data.verdict.decision, data.verdict.engine.decision,
// data.verdict.engine.plan, data.verdict and data, the batch Data API on the
// same documents, POST / (the default decision) and GET /v1/authz.
//
// It found the Data API answering data.verdict.engine.decision allow (and
// data.verdict.engine.plan "all") for an input without tenant: no layer
// denied because the tenant layer's message was built from the missing
// input.tenant (issue 14, item 1).
func TestEveryDoorAgreesWithDecide(t *testing.T) {
	h := doorsAPI(t)
	rng := rand.New(rand.NewPCG(14, 1))
	const questions = 250
	allowed := 0
	for i := range questions {
		input := randomQuestion(rng)
		body, err := json.Marshal(input)
		if err != nil {
			t.Fatal(err)
		}
		decide := ask(t, h, http.MethodPost, "/v1/decide", body, nil)
		want := decide.code == http.StatusOK && decide.body["allow"] == true
		if want {
			allowed++
		}
		check := func(door string, a answerJSON, allow bool) {
			t.Helper()
			if a.code >= 500 {
				t.Errorf("question %d %s: %s answered %d: %s", i, body, door, a.code, a.raw)
			}
			if allow && !want {
				t.Errorf("question %d %s: %s allows (%s), /v1/decide does not (%d %s)", i, body, door, a.raw, decide.code, decide.raw)
			}
		}
		for _, d := range []struct{ path, field string }{
			{"/v1/data/verdict/decision", "allow"},
			{"/v1/data/verdict/engine/decision", "allow"},
			{"/v1/data/verdict/engine/plan", "kind"},
			{"/v1/data/verdict", ""},
			{"/v1/data", ""},
		} {
			wrapped, _ := json.Marshal(map[string]any{"input": input})
			for _, a := range []answerJSON{
				ask(t, h, http.MethodPost, d.path, wrapped, nil),
				ask(t, h, http.MethodGet, d.path+"?input="+url.QueryEscape(string(body)), nil, nil),
			} {
				check("Data API "+d.path, a, documentAllows(a, d.path))
			}
			// The batch Data API: the input alone, and split between
			// common_input and the input (merged back together).
			batchPath := "/v1/batch" + strings.TrimPrefix(d.path, "/v1")
			if batchPath == "/v1/batch/data" {
				continue // the batch API always names a document
			}
			for _, batch := range batchDataOf(input) {
				a := ask(t, h, http.MethodPost, batchPath, batch, nil)
				check("batch Data API "+d.path, a, batchEntryAllows(a, d.path))
			}
		}
		def := ask(t, h, http.MethodPost, "/", body, nil)
		check("POST / (default decision)", def, def.code == http.StatusOK && def.body["allow"] == true)
		if q, ok := input.(map[string]any); ok {
			plan := ask(t, h, http.MethodPost, "/v1/plan", body, nil)
			check("/v1/plan", plan, plan.code == http.StatusOK && plan.body["kind"] == "all")
			batch := ask(t, h, http.MethodPost, "/v1/decide/batch", batchOf(q), nil)
			check("/v1/decide/batch", batch, batch.code == http.StatusOK && firstResultAllows(batch.body))
			if target, header, ok := authzQuestion(q); ok {
				authz := ask(t, h, http.MethodGet, target, nil, header)
				check("/v1/authz", authz, authz.code == http.StatusOK)
			}
		}
	}
	// The questions must reach allows, or the property says little.
	if allowed < questions/10 {
		t.Errorf("only %d of %d questions are allowed by /v1/decide", allowed, questions)
	}
	t.Logf("%d of %d questions allowed by /v1/decide", allowed, questions)
}

// doorsAPI is the API over the demo bundle with /v1/authz reading the
// member from X-User and the tenant from X-Verdict-Tenant.
func doorsAPI(t *testing.T) http.Handler {
	t.Helper()
	engine, _ := loadertest.Demo(t)
	return httpapi.New(engine, httpapi.Options{Log: loadertest.Quiet, Authz: httpapi.AuthzOptions{MemberHeader: "X-User"}})
}

type answerJSON struct {
	code int
	raw  string
	body map[string]any
}

// recorder gives the answer back as a recorder, for checkBadRequest.
func (a answerJSON) recorder() *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	rec.Code = a.code
	rec.Body.WriteString(a.raw)
	return rec
}

func ask(t *testing.T, h http.Handler, method, target string, body []byte, header http.Header) answerJSON {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	h.ServeHTTP(rec, req)
	a := answerJSON{code: rec.Code, raw: rec.Body.String()}
	_ = json.Unmarshal(rec.Body.Bytes(), &a.body)
	return a
}

// documentAllows reports whether a Data API answer grants access: a
// decision with allow true, a plan of kind all, or - in the documents that
// hold the engine (data, data.verdict) - an engine decision that allows.
func documentAllows(a answerJSON, path string) bool {
	if a.code != http.StatusOK {
		return false
	}
	result, _ := a.body["result"].(map[string]any)
	switch path {
	case "/v1/data":
		result, _ = result["verdict"].(map[string]any)
		fallthrough
	case "/v1/data/verdict":
		engine, _ := result["engine"].(map[string]any)
		decision, _ := engine["decision"].(map[string]any)
		plan, _ := engine["plan"].(map[string]any)
		return decision["allow"] == true || plan["kind"] == "all"
	case "/v1/data/verdict/engine/plan":
		return result["kind"] == "all"
	}
	return result["allow"] == true
}

func firstResultAllows(body map[string]any) bool {
	results, _ := body["results"].([]any)
	if len(results) == 0 {
		return false
	}
	first, _ := results[0].(map[string]any)
	return first["allow"] == true
}

// batchOf asks a question as a one-item batch: the caller's fields on the
// batch, the rest on the item.
func batchOf(q map[string]any) []byte {
	batch := map[string]any{}
	item := map[string]any{}
	for k, v := range q {
		switch k {
		case "tenant", "key", "member", "application":
			batch[k] = v
		default:
			item[k] = v
		}
	}
	batch["items"] = []any{item}
	body, _ := json.Marshal(batch)
	return body
}

// authzQuestion asks a question with a well-formed request through
// /v1/authz, as nginx would: the original method and URI, the tenant, key,
// service and member in headers.
func authzQuestion(q map[string]any) (string, http.Header, bool) {
	r, ok := q["request"].(map[string]any)
	if !ok || q["action"] != nil || q["resource"] != nil || q["application"] != nil || q["context"] != nil {
		return "", nil, false
	}
	method, ok1 := r["method"].(string)
	path, ok2 := r["path"].(string)
	if !ok1 || !ok2 || method == "" {
		return "", nil, false
	}
	header := http.Header{"X-Original-Method": {method}, "X-Original-Uri": {path}}
	for field, name := range map[string]string{"tenant": "X-Verdict-Tenant", "key": "Key", "member": "X-User"} {
		if v, ok := q[field]; ok {
			s, isString := v.(string)
			if !isString {
				return "", nil, false
			}
			header.Set(name, s)
		}
	}
	if svc, ok := r["service"]; ok {
		s, isString := svc.(string)
		if !isString {
			return "", nil, false
		}
		header.Set("X-Verdict-Service", s)
	}
	return "/v1/authz", header, true
}

// The demo's vocabulary, and values that are not in it.
var (
	questionTenants = []any{"bank", "tnt1", "tnt2", "tnt3", "fineract", "nowhere", "BANK", ""}
	questionKeys    = []any{
		"2423205b6ccd825aaa3dbf7f248f807996c1f39f4e128801107a10ea55eac9686f23b883b778b1763876fe47f7cc651fea232f7aa9dae3dfd1978d4948a3f26b948ebc1b71a9d6cacf08852312866d757b22392d8d3c0e28ee47edb0e7478157",
		"4ea5db4c70b6168aeede6a8a56cb4624efdb6cb2cf3c7b88cbc1f5d97080a44f18083fa195e20dcc0b42496ae268ea91c657dd9b252b72de14c862e64f8522a9dbdaa1ce0f48ba2d5ed5eff49b47d0f728bddb2080c8cbc7bde3771116192b51",
		"0ld0ld0ld0ld0ld0ld0ld0ld0ld0ld0l", "unknown-key",
	}
	questionMembers = []any{"admin", "user_a", "olivia", "head_of_banking", "intern", "goldie", "silvia", "user3", "imhotep", "antony", "Admin", ""}
	questionApps    = []any{"rhythm", "app1", "nowhere"}
	questionActions = []any{
		"finmars:Portfolio:list", "finmars:Portfolio:retrieve", "finmars:Portfolio:destroy", "finmars:Portfolio:list_light",
		"finmars:Instrument:recalculate", "finmars:Currency:destroy", "example04:users:get", "example03:buildName:get",
		"portfolio:khepri:beat", "finmars:*", "",
	}
	questionRequests = []any{
		map[string]any{"method": "GET", "path": "/api/v1/portfolios/portfolio/"},
		map[string]any{"method": "GET", "path": "/api/v1/portfolios/portfolio/7/"},
		map[string]any{"method": "DELETE", "path": "/api/v1/portfolios/portfolio/7/"},
		map[string]any{"method": "GET", "path": "/api/v1/portfolios/portfolio/light/"},
		map[string]any{"method": "POST", "path": "/api/v1/instruments/instrument/3/recalculate/"},
		map[string]any{"service": "example04", "method": "GET", "path": "/users/7"},
		map[string]any{"service": "example04", "method": "POST", "path": "/users"},
		map[string]any{"service": "example03", "method": "GET", "path": "/buildName"},
		map[string]any{"method": "POST", "path": "/portfolio/v1/khepri/beats"},
		map[string]any{"method": "GET", "path": "/nowhere"},
		map[string]any{"method": "GET"},
		map[string]any{"path": "/users/7"},
	}
	questionResources = []any{
		map[string]any{"frn": "frn:finmars:portfolios:portfolio:bonds-portfolio"},
		map[string]any{"frn": "frn:finmars:portfolios:portfolio:secret-portfolio", "owner": "head_of_banking"},
		map[string]any{"frn": "frn:finmars:portfolios:portfolio:equity-portfolio", "reference": true},
		map[string]any{"owner": "user_a"},
		map[string]any{"resource_groups": []any{"portfolio_group_a"}},
	}
	// wrongTypes stand in for a field of another type.
	wrongTypes = []any{nil, 7, true, []any{"bank"}, map[string]any{"a": "b"}}
)

func pick(rng *rand.Rand, values []any) any { return values[rng.IntN(len(values))] }

// allowedQuestions are questions the demo allows.
var allowedQuestions = []map[string]any{
	{"tenant": "bank", "member": "admin", "action": "finmars:Portfolio:destroy"},
	{"tenant": "bank", "member": "user_a", "request": map[string]any{"method": "GET", "path": "/api/v1/portfolios/portfolio/7/"},
		"resource": map[string]any{"frn": "frn:finmars:portfolios:portfolio:bonds-portfolio"}},
	{"tenant": "bank", "member": "user_a", "action": "finmars:Portfolio:list"},
	{"key": questionKeys[0], "member": "goldie", "request": map[string]any{"service": "example04", "method": "GET", "path": "/users/7"}},
	{"tenant": "tnt2", "key": questionKeys[0], "member": "goldie", "request": map[string]any{"service": "example04", "method": "GET", "path": "/users/7"}},
}

// randomQuestion is a decision request: half the time one the demo allows
// with a field or two left out, replaced or of the wrong type; else one
// built from the demo's vocabulary, each field present or not, now and
// then of the wrong type; or, one time in twenty, a value that is no
// object.
func randomQuestion(rng *rand.Rand) any {
	if rng.IntN(20) == 0 {
		return pick(rng, []any{nil, "x", 7, []any{}, []any{map[string]any{"tenant": "bank"}}, true})
	}
	if rng.IntN(2) == 0 {
		q := map[string]any{}
		for k, v := range allowedQuestions[rng.IntN(len(allowedQuestions))] {
			q[k] = v
		}
		names := []string{"tenant", "key", "member", "action", "request", "resource", "application", "context"}
		vocabulary := [][]any{questionTenants, questionKeys, questionMembers, questionActions, questionRequests, questionResources, questionApps,
			{map[string]any{"ip": "203.0.113.66"}}}
		for range rng.IntN(3) {
			i := rng.IntN(len(names))
			switch rng.IntN(3) {
			case 0:
				delete(q, names[i])
			case 1:
				q[names[i]] = pick(rng, vocabulary[i])
			default:
				q[names[i]] = pick(rng, wrongTypes)
			}
		}
		return q
	}
	q := map[string]any{}
	field := func(name string, present int, values []any) {
		if rng.IntN(100) >= present {
			return
		}
		if rng.IntN(25) == 0 {
			q[name] = pick(rng, wrongTypes)
			return
		}
		q[name] = pick(rng, values)
	}
	field("tenant", 85, questionTenants)
	field("key", 20, questionKeys)
	field("member", 80, questionMembers)
	field("application", 10, questionApps)
	if rng.IntN(2) == 0 {
		field("request", 95, questionRequests)
		field("action", 15, questionActions)
	} else {
		field("action", 95, questionActions)
	}
	field("resource", 30, questionResources)
	field("context", 15, []any{map[string]any{"ip": "10.0.0.1"}, map[string]any{"hour": 10}})
	return q
}

// batchDataOf asks the question as batches of the batch Data API: the
// input alone, and, for an object, split between common_input (its first
// half of keys) and the input (the rest).
func batchDataOf(input any) [][]byte {
	whole, _ := json.Marshal(map[string]any{"inputs": map[string]any{"q": input}})
	out := [][]byte{whole}
	if q, ok := input.(map[string]any); ok && len(q) > 1 {
		keys := slices.Sorted(maps.Keys(q))
		common, rest := map[string]any{}, map[string]any{}
		for i, k := range keys {
			if i < len(keys)/2 {
				common[k] = q[k]
			} else {
				rest[k] = q[k]
			}
		}
		split, _ := json.Marshal(map[string]any{"common_input": common, "inputs": map[string]any{"q": rest}})
		out = append(out, split)
	}
	return out
}

// batchEntryAllows reports whether the batch's one entry grants access, as
// documentAllows does for a Data API answer.
func batchEntryAllows(a answerJSON, path string) bool {
	if a.code != http.StatusOK {
		return false
	}
	responses, _ := a.body["responses"].(map[string]any)
	entry, _ := responses["q"].(map[string]any)
	return documentAllows(answerJSON{code: http.StatusOK, body: entry}, path)
}
