package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLimitDecisions fills every evaluation slot with blocked requests and
// checks that the next decision request gets 503 overloaded with
// Retry-After, that non-decision paths pass, and that a freed slot serves.
func TestLimitDecisions(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 8)
	h := limitDecisions(2, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	mux := http.NewServeMux()
	if limitDecisions(0, mux) != http.Handler(mux) {
		t.Fatal("0 is not unlimited")
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
