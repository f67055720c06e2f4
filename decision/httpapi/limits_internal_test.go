package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/decision/admission"
	"github.com/verdict-authz/verdict/loader/loadertest"
)

// TestLimitDecisions fills every evaluation slot with blocked requests and
// checks that the next decision request gets 503 overloaded with
// Retry-After, that non-decision paths pass, and that a freed slot serves.
func TestLimitDecisions(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 8)
	h := newDecisionLimiter(admission.New(2), 1<<20, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			entered <- struct{}{}
			<-release
		}
		w.WriteHeader(http.StatusOK)
	}))
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i, path := range []string{"/v1/decide", "/v1/data/verdict/decision"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, nil))
			codes[i] = rec.Code
		}()
	}
	for range 2 {
		select {
		case <-entered:
		case <-time.After(5 * time.Second):
			t.Fatal("blocked requests did not start")
		}
	}
	for _, path := range []string{"/v1/decide", "/v1/decide/batch", "/v1/plan", "/v1/data", "/v1/data/x", "/v1/authz"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, nil))
		var e ErrorBody
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" ||
			json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Code != "overloaded" || e.Message == "" {
			t.Fatalf("%s while full: %d %v %s", path, rec.Code, rec.Header(), rec.Body)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/health while full: %d", rec.Code)
	}
	close(release)
	wg.Wait()
	if codes[0] != 200 || codes[1] != 200 {
		t.Fatalf("blocked requests answered %v", codes)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/decide", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("after release: %d", rec.Code)
	}
	// The refusals are recorded; moments of them are no sustained overload.
	if d, sustained := h.slots.Overloaded(); d <= 0 || sustained {
		t.Errorf("after six refusals in a row: overloaded for %v", d)
	}
}

// fakeClock is a clock tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// /health/ready answers 503 once decisions have been refused for
// admission.ReadyAfter without a pause of admission.Gap, and 200 again
// after such a pause; a short burst of refusals leaves it ready.
func TestReadinessReflectsSustainedOverload(t *testing.T) {
	engine, _ := loadertest.Demo(t)
	clock := &fakeClock{t: time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC)}
	slots := admission.New(1, admission.WithClock(clock.now))
	s := New(engine, Options{Log: loadertest.Quiet, Admission: slots})
	ready := func() (int, string) {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health/ready", nil))
		return rec.Code, rec.Body.String()
	}
	refuseFor := func(d time.Duration) {
		for end := clock.t.Add(d); clock.t.Before(end); clock.advance(admission.Gap / 2) {
			slots.Refused()
		}
		slots.Refused()
	}
	refuseFor(admission.ReadyAfter / 2)
	if code, body := ready(); code != http.StatusOK {
		t.Fatalf("after a burst of refusals: %d %s", code, body)
	}
	refuseFor(admission.ReadyAfter / 2)
	code, body := ready()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"status":"not_ready"`) || !strings.Contains(body, "overloaded") {
		t.Fatalf("after %v of refusals: %d %s", admission.ReadyAfter, code, body)
	}
	// A pause longer than admission.Gap ends the overload ...
	clock.advance(admission.Gap + time.Millisecond)
	if code, body := ready(); code != http.StatusOK {
		t.Fatalf("after a pause: %d %s", code, body)
	}
	// ... and the next refusals start a new run.
	refuseFor(admission.ReadyAfter - admission.Gap)
	if code, body := ready(); code != http.StatusOK {
		t.Fatalf("a new run of refusals counts from its start: %d %s", code, body)
	}
}

// The bytes of decision bodies read and not yet answered are bounded: a
// body that would pass the budget is refused 503 overloaded while it is
// read, and the budget is given back when a request ends.
func TestDecisionBodiesHaveAMemoryBudget(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	// One slot and 1 KiB bodies: a budget of 2 KiB.
	h := newDecisionLimiter(admission.New(1), 1<<10, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		w.WriteHeader(http.StatusOK)
	}))
	h.bodyAllowance = 0 // the budget alone (TestBodyAllowance: with one)
	body := strings.Repeat("x", 1000)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/v1/decide", strings.NewReader(body)))
	}()
	<-entered
	// A second body fits the budget (and then finds the slot taken) ...
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/decide", strings.NewReader(body)))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "in flight (at most 1)") {
		t.Fatalf("second body: %d %s", rec.Code, rec.Body)
	}
	// ... while the budget is held by a body being read, a third does not.
	h.bodyBytes.Add(1000)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/decide", strings.NewReader(body)))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" || !strings.Contains(rec.Body.String(), "memory budget") {
		t.Fatalf("third body: %d %s", rec.Code, rec.Body)
	}
	h.bodyBytes.Add(-1000)
	close(release)
	wg.Wait()
	if n := h.bodyBytes.Load(); n != 0 {
		t.Fatalf("%d bytes still counted after every request ended", n)
	}
	// A body over the per-request limit is 413, as without the limiter.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/decide", strings.NewReader(strings.Repeat("x", 2000))))
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: %d %s", rec.Code, rec.Body)
	}
}

func nest(n int, open, close, inner string) string {
	return strings.Repeat(open, n) + inner + strings.Repeat(close, n)
}

func TestCheckDepth(t *testing.T) {
	for _, c := range []struct {
		body  string
		field string // "" with ok: passes
		ok    bool
	}{
		{`{"context":` + nest(63, `{"a":`, `}`, `1`) + `}`, "", true},
		{`{"context":` + nest(64, `{"a":`, `}`, `1`) + `}`, "context", false},
		{`{"tenant":"x","context":` + nest(100, `[`, `]`, ``) + `}`, "context[0][0][0][0][0][0][0]", false},
		{`{"items":[{},{"context":` + nest(70, `{"a":`, `}`, `1`) + `}]}`, "items[1].context", false},
		{`{"a\"{[":"{{{{[[[","con\u0074ext":` + nest(64, `{"b":`, `}`, `1`) + `}`, "context", false},
		{nest(65, `[`, `]`, ``), "", false},
		{nest(64, `[`, `]`, ``), "", true},
		{`{"x":"` + strings.Repeat("{", 1000) + `"}`, "", true},
		{`{"unterminated":"` + strings.Repeat("[", 100), "", true},
	} {
		err := checkDepth([]byte(c.body), MaxJSONDepth)
		if c.ok {
			if err != nil {
				t.Errorf("%.60s: %v", c.body, err)
			}
			continue
		}
		de, _ := err.(*DepthError)
		if de == nil || de.Field != c.field {
			t.Errorf("%.60s: %v, want field %q", c.body, err, c.field)
		}
	}
}

// TestBodyAllowance: the first bodyAllowance bytes of a body are not
// counted, so a small body is read with the budget full; a larger one is
// counted beyond the allowance and refused; nothing stays counted.
func TestBodyAllowance(t *testing.T) {
	h := newDecisionLimiter(admission.New(1), 1<<10, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	h.bodyAllowance = 100
	h.bodyBytes.Store(h.bodyBudget) // stalled bodies hold the whole budget
	for _, tt := range []struct {
		size int
		want int
	}{{1, http.StatusOK}, {100, http.StatusOK}, {101, http.StatusServiceUnavailable}, {1000, http.StatusServiceUnavailable}} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/decide", strings.NewReader(strings.Repeat("x", tt.size))))
		if rec.Code != tt.want {
			t.Errorf("a %d-byte body with the budget full: %d %s, want %d", tt.size, rec.Code, rec.Body, tt.want)
		}
	}
	h.bodyBytes.Store(0)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/decide", strings.NewReader(strings.Repeat("x", 1000))))
	if rec.Code != http.StatusOK {
		t.Fatalf("a 1000-byte body with the budget free: %d %s", rec.Code, rec.Body)
	}
	if n := h.bodyBytes.Load(); n != 0 {
		t.Fatalf("%d bytes still counted after every request ended", n)
	}
}
