package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/httpapi"
	"github.com/verdict-authz/verdict/loader/loadertest"
)

// With the decision cache on, a repeated body is answered from the cache:
// the same bytes but for a new decision_id; bad bodies stay 400s naming the
// field however often they come.
func TestDecideWithTheCacheOn(t *testing.T) {
	engine, _ := loadertest.Demo(t, decision.WithDecisionCache(decision.CacheOptions{Size: 100, TTL: time.Hour}))
	srv := httptest.NewServer(httpapi.New(engine, httpapi.Options{Log: loadertest.Quiet}))
	defer srv.Close()
	post := func(body string) (int, string) {
		t.Helper()
		res, err := http.Post(srv.URL+"/v1/decide", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	id := regexp.MustCompile(`"decision_id":"[^"]*"`)

	for _, body := range []string{
		`{"tenant":"bank","member":"user_a","request":{"method":"GET","path":"/api/v1/portfolios/portfolio/7/"},"resource":{"frn":"frn:finmars:portfolios:portfolio:bonds-portfolio"}}`,
		`{"tenant":"bank","member":"user_b","action":"finmars:Portfolio:destroy"}`,
	} {
		var answers []string
		for i := 0; i < 3; i++ {
			status, got := post(body)
			if status != http.StatusOK {
				t.Fatalf("%s: status %d: %s", body, status, got)
			}
			var d decision.Decision
			if err := json.Unmarshal([]byte(got), &d); err != nil || d.DecisionID == "" {
				t.Fatalf("%s: answer %q does not decode: %v", body, got, err)
			}
			answers = append(answers, got)
		}
		if answers[0] == answers[1] || answers[1] == answers[2] {
			t.Errorf("%s: a cached answer repeated its decision_id", body)
		}
		for _, a := range answers[1:] {
			if id.ReplaceAllString(a, "") != id.ReplaceAllString(answers[0], "") {
				t.Errorf("%s: cached answer differs:\n%s\n%s", body, a, answers[0])
			}
		}
	}

	for _, tc := range []struct{ body, field string }{
		{`{"tenant":"bank","member":"user_a","action":"finmars:Portfolio:list","colour":"red"}`, "colour"},
		{`{"tenant":"bank","member":7,"action":"finmars:Portfolio:list"}`, "member"},
		{`{"tenant":"bank","member":"user_a"}`, "request"},
	} {
		for i := 0; i < 2; i++ {
			status, got := post(tc.body)
			var e struct{ Field string }
			json.Unmarshal([]byte(got), &e)
			if status != http.StatusBadRequest || e.Field != tc.field {
				t.Errorf("%s (time %d): %d %s, want 400 naming %q", tc.body, i+1, status, got, tc.field)
			}
		}
	}
}
