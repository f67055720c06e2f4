package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
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

// cacheResults records what the decision cache did for each decision, by
// decision id.
type cacheResults struct {
	mu   sync.Mutex
	byID map[string]decision.CacheResult
}

func (c *cacheResults) ObserveDecision(_ context.Context, _ *decision.Request, d *decision.Decision, info decision.DecisionInfo) {
	c.mu.Lock()
	if c.byID == nil {
		c.byID = make(map[string]decision.CacheResult)
	}
	c.byID[d.DecisionID] = info.Cache
	c.mu.Unlock()
}

// of is what the cache did for the decision with this id, whatever other
// goroutines decided meanwhile.
func (c *cacheResults) of(id string) decision.CacheResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byID[id]
}

// Run-time changes are never answered from the decision cache: a
// registration, a delegation request, a consent and its withdrawal each
// install a generation with an empty cache before they are acknowledged,
// so the next decision, on the very body that was a cache hit just
// before, is made on the new facts. Decisions running all along (which
// fill the cache of whichever generation they started on) change nothing.
func TestRuntimeChangesAreNeverAnsweredFromTheCache(t *testing.T) {
	obs := &cacheResults{}
	h := runtimeAPI(t, "", decision.WithObserver(obs), decision.WithDecisionCache(decision.CacheOptions{Size: 1000, TTL: time.Hour}))
	const (
		approve = `{"tenant":"bank","member":"admin","request":{"method":"POST","path":"/api/requisitions/42/approve"}}`
		beat    = `{"tenant":"fineract","member":"imhotep","application":"rhythm","request":{"method":"POST","path":"/portfolio/v1/khepri/beats"}}`
	)
	// decide answers the deciding outcome and the decision's id.
	decide := func(body string) (string, string) {
		t.Helper()
		a := call(t, h, http.MethodPost, "/v1/decide", body, "")
		var d decision.Decision
		a.decode(t, &d)
		if a.code != http.StatusOK {
			t.Fatalf("%s: %d %s", body, a.code, a.body)
		}
		if d.Allow {
			return "allow", d.DecisionID
		}
		return d.Reasons[len(d.Reasons)-1].Code, d.DecisionID
	}
	change := func(method, path, body string) {
		t.Helper()
		if a := call(t, h, method, path, body, ""); a.code/100 != 2 {
			t.Fatalf("%s %s: %d %s", method, path, a.code, a.body)
		}
	}
	// decidedTwice decides body twice: the second answer comes from the
	// cache and must be the first's.
	decidedTwice := func(step, body, want string) {
		t.Helper()
		if got, _ := decide(body); got != want {
			t.Fatalf("%s: %s, want %s", step, got, want)
		}
		// Two goroutines decide the same body all along, so the last
		// observation may be theirs: look this decision up by its id.
		if got, id := decide(body); got != want || obs.of(id) != decision.CacheHit {
			t.Fatalf("%s, again: %s (cache %q), want %s from the cache", step, got, obs.of(id), want)
		}
	}

	decidedTwice("before the registration", approve, "route.unknown")
	change(http.MethodPut, "/v1/services/requisition", requisitionDoc)
	decidedTwice("after the registration", approve, "allow")

	decidedTwice("before the delegation request", beat, "delegation.not_requested")
	change(http.MethodPost, khepriPerms, `{"group": "portfolio__v1__khepri", "operations": ["CHANGE"]}`)
	decidedTwice("after the delegation request", beat, "delegation.not_enabled")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					req := httptest.NewRequest(http.MethodPost, "/v1/decide", strings.NewReader(beat))
					h.ServeHTTP(httptest.NewRecorder(), req)
				}
			}
		}()
	}
	for i := range 10 {
		change(http.MethodPut, khepriConsent, "true")
		decidedTwice(fmt.Sprintf("after consent %d", i+1), beat, "allow")
		change(http.MethodPut, khepriConsent, "false")
		decidedTwice(fmt.Sprintf("after withdrawal %d", i+1), beat, "delegation.not_enabled")
	}
	close(stop)
	wg.Wait()
}
