package httpapi_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/admission"
	"github.com/verdict-authz/verdict/decision/httpapi"
	"github.com/verdict-authz/verdict/loader/loadertest"
)

const okDecide = `{"tenant":"bank","member":"user_a","action":"finmars:Portfolio:list"`

func deep(n int) string {
	return strings.Repeat(`{"a":`, n) + `1` + strings.Repeat(`}`, n)
}

// TestJSONDepthLimit: a body nesting deeper than 64 levels gets 400 naming
// the field, on every decoding path; 64 levels pass.
func TestJSONDepthLimit(t *testing.T) {
	h := demoAPI(t)
	if rec := post(t, h, "/v1/decide", []byte(okDecide+`,"context":`+deep(63)+`}`)); rec.Code != http.StatusOK {
		t.Fatalf("64 levels: %d %s", rec.Code, rec.Body)
	}
	for _, c := range []struct{ path, body, field string }{
		{"/v1/decide", okDecide + `,"context":` + deep(64) + `}`, "context"},
		{"/v1/decide", okDecide + `,"context":` + deep(5000) + `}`, "context"},
		{"/v1/decide?explain=full", okDecide + `,"context":` + deep(64) + `}`, "context"},
		{"/v1/decide/batch", `{"tenant":"bank","member":"user_a","items":[{"action":"finmars:Portfolio:list"},{"action":"finmars:Portfolio:list","context":` + deep(64) + `}]}`, "items[1].context"},
		{"/v1/plan", okDecide + `,"context":` + deep(64) + `}`, "context"},
		{"/v1/data/verdict/decision", `{"input":` + deep(64) + `}`, "input"},
	} {
		rec := post(t, h, c.path, []byte(c.body))
		checkBadRequest(t, rec, c.field)
		if !strings.Contains(rec.Body.String(), "deeper than 64") {
			t.Errorf("%s: %s", c.path, rec.Body)
		}
	}
}

// TestBodyAndBatchLimits: a body over 1 MiB gets 413, a batch of 1,001
// items 400 naming items, a batch of 1,000 is served.
func TestBodyAndBatchLimits(t *testing.T) {
	h := demoAPI(t)
	big := okDecide + `,"context":{"pad":"` + strings.Repeat("x", httpapi.DefaultMaxBodyBytes) + `"}}`
	for _, path := range []string{"/v1/decide", "/v1/decide/batch", "/v1/plan", "/v1/data/verdict/decision"} {
		if rec := post(t, h, path, []byte(big)); rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "body_too_large") {
			t.Errorf("%s: %d %s", path, rec.Code, rec.Body)
		}
	}
	batch := func(n int) []byte {
		items := strings.Repeat(`{"action":"finmars:Portfolio:list"},`, n)
		return []byte(`{"tenant":"bank","member":"user_a","items":[` + strings.TrimSuffix(items, ",") + `]}`)
	}
	checkBadRequest(t, post(t, h, "/v1/decide/batch", batch(decision.MaxBatchItems+1)), "items")
	rec := post(t, h, "/v1/decide/batch", batch(decision.MaxBatchItems))
	if rec.Code != http.StatusOK || strings.Count(rec.Body.String(), `"decision_id"`) != decision.MaxBatchItems {
		t.Fatalf("1,000 items: %d, %d decisions", rec.Code, strings.Count(rec.Body.String(), `"decision_id"`))
	}
}

// TestAdmissionOption: a server with the limit on serves
// decisions and health as usual (the 503 path is TestLimitDecisions).
func TestAdmissionOption(t *testing.T) {
	engine, _ := loadertest.Demo(t)
	h := httpapi.New(engine, httpapi.Options{Log: loadertest.Quiet, Admission: admission.New(1)})
	for i := range 3 {
		if rec := post(t, h, "/v1/decide", []byte(okDecide+`}`)); rec.Code != http.StatusOK {
			t.Fatalf("decision %s: %d %s", strconv.Itoa(i), rec.Code, rec.Body)
		}
	}
}
