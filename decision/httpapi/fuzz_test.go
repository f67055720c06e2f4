package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/verdict-authz/verdict/bundles"
	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/httpapi"
	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/loader/acl"
)

// Fuzz targets for decision request decoding. Each posts arbitrary bytes to
// the API over the demo bundle and checks the answer against a model of the
// strict decoder (one JSON value, unknown fields rejected, numbers kept, no
// key written twice or in another case than its field's) and
// Request.Validate:
//   - the handler never panics and answers 200 or 400, always with JSON;
//   - it answers 200 exactly when the model accepts the body, and a 400
//     names the field Validate names;
//   - an accepted request is normalised (method upper case and known, path
//     starting with / and without query, action and FRN well formed),
//     validates again unchanged and survives a JSON round trip;
//   - a decision is never error.internal, never allows without status 200
//     and full or public visibility, and never allows what the demo cannot
//     allow (an unknown tenant, an anonymous caller on an IAM tenant).
//
// Run one with, e.g.,
//
//	go test ./decision/httpapi/ -run '^$' -fuzz '^FuzzDecide$' -fuzztime 90s

var (
	demoOnce   sync.Once
	demoServer http.Handler
	demoErr    error
)

func demoAPI(tb testing.TB) http.Handler {
	demoOnce.Do(func() {
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		engine := decision.NewEngine(quiet)
		ld, err := loader.New(engine, quiet)
		if err != nil {
			demoErr = err
			return
		}
		if _, err := ld.LoadAll(context.Background(), []loader.Source{{Name: "demo", FS: bundles.Demo()}}); err != nil {
			demoErr = err
			return
		}
		demoServer = httpapi.New(engine, httpapi.Options{Log: quiet})
	})
	if demoErr != nil {
		tb.Fatal(demoErr)
	}
	return demoServer
}

// strictDecode is the decoding the API promises: exactly one JSON value,
// unknown fields rejected, numbers kept as written, and no key written
// twice or in another case than its field's.
func strictDecode(body []byte, v any) error {
	if json.Valid(body) && ambiguousKeys(json.NewDecoder(bytes.NewReader(body)), reflect.TypeOf(v)) {
		return errors.New("a key written twice, or a field in another case")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data")
	}
	return nil
}

// ambiguousKeys is the model of the key check: it walks the JSON tokens of
// one value alongside the Go type t decodes them into, and reports an
// object holding a key twice, or a key that a struct does not declare with
// exactly that case (its json tag, or its name without one).
func ambiguousKeys(dec *json.Decoder, t reflect.Type) bool {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return false
	}
	switch tok {
	case json.Delim('{'):
		ambiguous := false
		seen := map[string]bool{}
		for dec.More() {
			kt, _ := dec.Token()
			k := kt.(string)
			ambiguous = ambiguous || seen[k]
			seen[k] = true
			var child reflect.Type
			switch {
			case t != nil && t.Kind() == reflect.Struct:
				f, declared := fieldByJSONName(t, k)
				ambiguous = ambiguous || !declared
				child = f
			case t != nil && t.Kind() == reflect.Map:
				child = t.Elem()
			}
			ambiguous = ambiguousKeys(dec, child) || ambiguous
		}
		dec.Token()
		return ambiguous
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		ambiguous := false
		for dec.More() {
			ambiguous = ambiguousKeys(dec, elem) || ambiguous
		}
		dec.Token()
		return ambiguous
	}
	return false
}

func fieldByJSONName(t reflect.Type, name string) (reflect.Type, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "" {
			tag = f.Name
		}
		if tag == name && tag != "-" {
			return f.Type, true
		}
	}
	return nil, false
}

func post(t *testing.T, h http.Handler, path string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)))
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("POST %s: Content-Type %q", path, ct)
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("POST %s: answer is not JSON: %q", path, rec.Body.String())
	}
	return rec
}

// checkBadRequest asserts a 400 with an error body naming field.
func checkBadRequest(t *testing.T, rec *httptest.ResponseRecorder, field string) {
	t.Helper()
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("status %d, want 400: %s", rec.Code, rec.Body)
	}
	var e httpapi.ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code != "invalid_request" || e.Message == "" {
		t.Fatalf("400 body %s (%v)", rec.Body, err)
	}
	if field != "" && e.Field != field {
		t.Fatalf("400 names field %q, want %q: %s", e.Field, field, rec.Body)
	}
}

// checkNormalised asserts what Validate guarantees the engine.
func checkNormalised(t *testing.T, req *decision.Request) {
	t.Helper()
	if req.Tenant == "" && req.Key == "" {
		t.Fatal("accepted without tenant or key")
	}
	if req.Request == nil && req.Action == "" {
		t.Fatal("accepted without request or action")
	}
	if hr := req.Request; hr != nil {
		if hr.Method != strings.ToUpper(hr.Method) || !acl.IsHTTPMethod(hr.Method) {
			t.Fatalf("accepted method %q", hr.Method)
		}
		if !strings.HasPrefix(hr.Path, "/") || strings.ContainsAny(hr.Path, "?#") {
			t.Fatalf("accepted path %q", hr.Path)
		}
	}
	if req.Action != "" && acl.ValidateAction(req.Action) != nil {
		t.Fatalf("accepted action %q", req.Action)
	}
	if res := req.Resource; res != nil {
		if res.FRN != "" {
			frn, err := acl.ParseFRN(res.FRN)
			if err != nil || frn.IsResourceGroup() {
				t.Fatalf("accepted FRN %q", res.FRN)
			}
		}
		for _, g := range res.ResourceGroups {
			if g == "" {
				t.Fatal("accepted an empty resource group")
			}
		}
	}
	// A JSON round trip through the strict decoder gives a request that
	// validates unchanged (empty lists and absent ones encode alike).
	before, err := json.Marshal(req)
	if err != nil {
		t.Fatalf("marshal %+v: %v", req, err)
	}
	var again decision.Request
	if err := strictDecode(before, &again); err != nil {
		t.Fatalf("an accepted request does not decode again: %v\n%s", err, before)
	}
	if err := again.Validate(); err != nil {
		t.Fatalf("an accepted request does not validate again: %v\n%s", err, before)
	}
	if after, _ := json.Marshal(&again); !bytes.Equal(before, after) {
		t.Fatalf("round trip and Validate changed the request:\n%s\n%s", before, after)
	}
}

var demoTenants = map[string]bool{"bank": true, "tnt1": true, "tnt2": true, "tnt3": true}

// checkDecision asserts what any decision on the demo must satisfy.
func checkDecision(t *testing.T, d *decision.Decision, req *decision.Request) {
	t.Helper()
	for _, r := range d.Reasons {
		if r.Code == "error.internal" {
			t.Fatalf("error.internal for %+v: %s", req, r.Message)
		}
	}
	if len(d.Reasons) == 0 || d.DecisionID == "" {
		t.Fatalf("decision without reasons or id: %+v", d)
	}
	if d.Allow {
		if d.Status != 200 || (d.Visibility != "full" && d.Visibility != "public") {
			t.Fatalf("allow with status %d, visibility %q", d.Status, d.Visibility)
		}
		if !demoTenants[d.Tenant] {
			t.Fatalf("allowed for unknown tenant %q", d.Tenant)
		}
		if d.Tenant == "bank" && req.Member == "" {
			t.Fatalf("allowed an anonymous caller on an IAM tenant: %+v", req)
		}
		return
	}
	if d.Visibility != "none" || (d.Status != 401 && d.Status != 403 && d.Status != 404) {
		t.Fatalf("deny with status %d, visibility %q", d.Status, d.Visibility)
	}
}

func inputField(err error) string {
	var in *decision.InputError
	if errors.As(err, &in) {
		return in.Field
	}
	return ""
}

func FuzzDecide(f *testing.F) {
	for _, s := range []string{
		`{"tenant":"bank","member":"user_a","request":{"method":"GET","path":"/api/v1/portfolios/portfolio/7/"},"resource":{"frn":"frn:finmars:portfolios:portfolio:bonds-portfolio"}}`,
		`{"tenant":"bank","member":"user_b","action":"finmars:Portfolio:retrieve","resource":{"frn":"frn:finmars:portfolios:portfolio:bonds-portfolio","reference":true}}`,
		`{"tenant":"bank","member":"admin","action":"finmars:Portfolio:list","context":{"ip":"203.0.113.66","n":[1,2.5e300,{"x":null}]}}`,
		`{"tenant":"bank","member":"olivia","request":{"method":"delete","path":"/api/v1/portfolios/portfolio/9/?a=b"},"resource":{"frn":"FRN:Finmars:portfolios:portfolio:x","owner":"olivia","resource_groups":["G"]}}`,
		`{"key":"4ea5db4c70b6168aeede6a8a56cb4624efdb6cb2cf3c7b88cbc1f5d97080a44f18083fa195e20dcc0b42496ae268ea91c657dd9b252b72de14c862e64f8522a9dbdaa1ce0f48ba2d5ed5eff49b47d0f728bddb2080c8cbc7bde3771116192b51","request":{"service":"example03","method":"GET","path":"/buildName"}}`,
		`{"tenant":"tnt1","member":"user2","application":"rhythm","request":{"method":"HEAD","path":"/testGet"}}`,
		`{"tenant":"bank","request":{"method":"GET","path":"nothing"}}`,
		`{"tenant":"bank","action":"a:b:c:d"}`,
		`{"tenant":"bank","action":"x","bogus":1}`,
		`{"tenant":"bank","action":"x"} {}`,
		`{"tenant":5}`,
		`{"tenant":"tnt2","tenant":"bank","member":"admin","action":"finmars:Portfolio:destroy"}`,
		`{"tenant":"bank","member":"intern","MEMBER":"admin","action":"finmars:Portfolio:destroy"}`,
		`{"tenant":"bank","member":"admin","request":{"method":"GET","path":"/api/v1/portfolios/portfolio/..%2Fportfolio-type/"},"context":{"ip":"::ffff:203.0.113.66"}}`,
		`[]`,
		``,
	} {
		f.Add([]byte(s))
	}
	h := demoAPI(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := post(t, h, "/v1/decide", body)
		if len(body) > httpapi.DefaultMaxBodyBytes {
			if rec.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d for a %d-byte body", rec.Code, len(body))
			}
			return
		}
		var req decision.Request
		if err := strictDecode(body, &req); err != nil {
			checkBadRequest(t, rec, "")
			return
		}
		if err := req.Validate(); err != nil {
			checkBadRequest(t, rec, inputField(err))
			return
		}
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d for a valid request: %s", rec.Code, rec.Body)
		}
		checkNormalised(t, &req)
		var d decision.Decision
		if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil {
			t.Fatalf("decision %s: %v", rec.Body, err)
		}
		checkDecision(t, &d, &req)
	})
}

func FuzzDecideBatch(f *testing.F) {
	for _, s := range []string{
		`{"tenant":"bank","member":"user_a","items":[{"action":"finmars:Portfolio:list"},{"request":{"method":"DELETE","path":"/api/v1/portfolios/portfolio/3/"},"resource":{"frn":"frn:finmars:portfolios:portfolio:equity-portfolio"}}]}`,
		`{"tenant":"bank","member":"user_a","items":[{"request":{"method":"GET","path":"/x"}},{"request":{"method":"BREW","path":"/x"}}]}`,
		`{"tenant":"bank","items":[]}`,
		`{"items":[{"action":"x"}]}`,
		`{"tenant":"bank","member":"admin","items":[{"action":"finmars:Portfolio:list","context":{"ip":"203.0.113.66"}}]}`,
		`{"tenant":"bank","items":[{"action":"x","tenant":"b"}]}`,
		`{"tenant":"bank","member":"admin","items":[{"action":"finmars:Portfolio:list"},{"Action":"x","resource":{"frn":"frn:finmars:a:b:c","frn":"frn:finmars:a:b:d"}}]}`,
	} {
		f.Add([]byte(s))
	}
	h := demoAPI(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := post(t, h, "/v1/decide/batch", body)
		if len(body) > httpapi.DefaultMaxBodyBytes {
			if rec.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d for a %d-byte body", rec.Code, len(body))
			}
			return
		}
		var b decision.BatchRequest
		if err := strictDecode(body, &b); err != nil {
			checkBadRequest(t, rec, "")
			return
		}
		reqs, err := b.Requests()
		if err != nil {
			checkBadRequest(t, rec, inputField(err))
			return
		}
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d for a valid batch: %s", rec.Code, rec.Body)
		}
		var res decision.BatchResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
			t.Fatalf("batch answer %s: %v", rec.Body, err)
		}
		if len(res.Results) != len(reqs) {
			t.Fatalf("%d results for %d items", len(res.Results), len(reqs))
		}
		for i, req := range reqs {
			checkNormalised(t, req)
			checkDecision(t, res.Results[i], req)
		}
	})
}
