package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/decision/client"
	"github.com/verdict-authz/verdict/decision/httpapi"
	"github.com/verdict-authz/verdict/loader/loadertest"
)

const token = "admin-token"

// sidecar is the verdict HTTP API over the demo bundle, in process.
func sidecar(t *testing.T) http.Handler {
	t.Helper()
	engine, ld := loadertest.Demo(t)
	return httpapi.New(engine, httpapi.Options{Log: loadertest.Quiet, Runtime: ld, AdminToken: []byte(token)})
}

func serve(t *testing.T, h http.Handler) *client.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return client.New(srv.URL, client.WithAdminToken(token+"\n"))
}

var fast = client.Backoff{Initial: 5 * time.Millisecond, Max: 40 * time.Millisecond, Multiplier: 2}

func TestDecideBatchAndPlan(t *testing.T) {
	c := serve(t, sidecar(t))
	ctx := t.Context()
	d, err := c.Decide(ctx, &client.Request{Tenant: "bank", Member: "user_a",
		Request:  &client.HTTPRequest{Method: "GET", Path: "/api/v1/portfolios/portfolio/7/"},
		Resource: &client.Resource{FRN: "frn:finmars:portfolios:portfolio:bonds-portfolio"}})
	if err != nil || !d.Allow || d.Status != 200 || d.Action != "finmars:Portfolio:retrieve" || d.Denial() != nil {
		t.Fatalf("Decide = %+v, %v", d, err)
	}
	d, err = c.Decide(ctx, &client.Request{Tenant: "bank", Member: "intern", Action: "finmars:Portfolio:list"})
	if err != nil || d.Allow || d.Denial() == nil || d.Denial().Code != "iam.no_allow" {
		t.Fatalf("Decide (deny) = %+v, %v", d, err)
	}
	b, err := c.DecideBatch(ctx, &client.BatchRequest{Tenant: "bank", Member: "user_a", Items: []client.BatchItem{
		{Action: "finmars:Portfolio:list"},
		{Request: &client.HTTPRequest{Method: "DELETE", Path: "/api/v1/portfolios/portfolio/3/"}},
	}})
	if err != nil || len(b.Results) != 2 || !b.Results[0].Allow || b.Results[1].Allow {
		t.Fatalf("DecideBatch = %+v, %v", b, err)
	}
	p, err := c.Plan(ctx, &client.PlanRequest{Tenant: "bank", Member: "user_a", Action: "finmars:Portfolio:list", Model: "portfolios:portfolio"})
	if err != nil || p.Kind != "some" || p.Filter["owner"] != "user_a" {
		t.Fatalf("Plan = %+v, %v", p, err)
	}
	// A malformed question is an *Error naming the field, not a decision.
	_, err = c.Decide(ctx, &client.Request{Tenant: "bank", Action: "a:b:c:d"})
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Field != "action" || apiErr.Temporary() {
		t.Fatalf("malformed: %v", err)
	}
}

var requisition = &client.Service{Routes: []client.Route{
	{Method: "POST", Path: "/api/requisitions/{id}/approve", Action: "requisition:requisitions:approve"},
}}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestRegisterServiceRetriesUntilTheSidecarAnswers(t *testing.T) {
	addr := freeAddr(t)
	var attempts atomic.Int32
	var retries []error
	var mu sync.Mutex
	b := fast
	b.OnRetry = func(attempt int, err error, wait time.Duration) {
		mu.Lock()
		retries = append(retries, err)
		mu.Unlock()
		if wait <= 0 || wait > fast.Max {
			t.Errorf("wait %v outside (0, %v]", wait, fast.Max)
		}
	}
	c := client.New("http://"+addr, client.WithAdminToken(token), client.WithBackoff(b))

	// The sidecar comes up late and then is overloaded twice.
	api := sidecar(t)
	var overloaded atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		if overloaded.Add(1) <= 2 {
			http.Error(w, `{"code":"overloaded","message":"try later"}`, http.StatusServiceUnavailable)
			return
		}
		api.ServeHTTP(w, r)
	})
	type result struct {
		reg *client.Registration
		err error
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	go func() {
		reg, err := c.RegisterService(ctx, "requisition", requisition)
		done <- result{reg, err}
	}()
	time.Sleep(150 * time.Millisecond)
	select {
	case r := <-done:
		t.Fatalf("RegisterService returned while nothing listened: %+v, %v", r.reg, r.err)
	default:
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	defer srv.Close()

	r := <-done
	if r.err != nil || !r.reg.Created || r.reg.Name != "requisition" {
		t.Fatalf("RegisterService = %+v, %v", r.reg, r.err)
	}
	mu.Lock()
	defer mu.Unlock()
	if attempts.Load() != 3 || len(retries) < 3 {
		t.Errorf("%d attempts reached the server, %d retries", attempts.Load(), len(retries))
	}
	var refused, busy int
	for _, e := range retries {
		var apiErr *client.Error
		if errors.As(e, &apiErr) && apiErr.StatusCode == 503 {
			busy++
		} else {
			refused++
		}
	}
	if busy != 2 || refused == 0 {
		t.Errorf("retries: %d refused connections, %d overloaded answers", refused, busy)
	}
	// It took effect.
	d, err := c.Decide(ctx, &client.Request{Tenant: "bank", Member: "admin", Request: &client.HTTPRequest{Method: "POST", Path: "/api/requisitions/1/approve"}})
	if err != nil || !d.Allow {
		t.Fatalf("decision after registration: %+v, %v", d, err)
	}
}

func TestRegisterServiceStopsAtAnAnswerRetryingCannotChange(t *testing.T) {
	api := sidecar(t)
	var attempts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		api.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ctx := t.Context()

	bad := &client.Service{Routes: []client.Route{{Method: "GET", Path: "no-slash"}}}
	_, err := client.New(srv.URL, client.WithAdminToken(token), client.WithBackoff(fast)).RegisterService(ctx, "bad", bad)
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || len(apiErr.Problems) != 2 || attempts.Load() != 1 {
		t.Fatalf("invalid document: %v (%d attempts)", err, attempts.Load())
	}
	_, err = client.New(srv.URL, client.WithAdminToken("wrong"), client.WithBackoff(fast)).RegisterService(ctx, "requisition", requisition)
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || attempts.Load() != 2 {
		t.Fatalf("wrong token: %v (%d attempts)", err, attempts.Load())
	}
	if _, err := client.New(srv.URL).RegisterService(ctx, "", requisition); err == nil {
		t.Fatal("an empty name was accepted")
	}
}

func TestRegisterServiceGivesUpWhenTheContextEnds(t *testing.T) {
	c := client.New("http://"+freeAddr(t), client.WithBackoff(fast))
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.RegisterService(ctx, "requisition", requisition)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "attempt") {
		t.Fatalf("err = %v", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("gave up after %v", elapsed)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := client.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2}
	for attempt, bound := range []time.Duration{100, 200, 400, 800, 1000, 1000, 1000} {
		bound *= time.Millisecond
		for i := 0; i < 50; i++ {
			if d := b.Delay(attempt); d < bound/10 || d > bound {
				t.Fatalf("Delay(%d) = %v, want within [%v, %v]", attempt, d, bound/10, bound)
			}
		}
	}
	if d := (client.Backoff{}).Delay(100); d > client.DefaultBackoff.Max || d <= 0 {
		t.Errorf("zero Backoff uses the defaults: %v", d)
	}
	// Jitter: the waits are not all the same.
	seen := map[time.Duration]bool{}
	for i := 0; i < 20; i++ {
		seen[b.Delay(3)] = true
	}
	if len(seen) < 5 {
		t.Errorf("only %d distinct waits", len(seen))
	}
}

func TestPermissionsAndConsent(t *testing.T) {
	c := serve(t, sidecar(t))
	ctx := t.Context()
	p, err := c.RequestPermission(ctx, "fineract", "rhythm", "portfolio__v1__khepri", []string{"CHANGE"})
	if err != nil || !p.Created || p.Group != "portfolio__v1__khepri" {
		t.Fatalf("RequestPermission = %+v, %v", p, err)
	}
	if err := c.SetConsent(ctx, "fineract", "rhythm", "portfolio__v1__khepri", "imhotep", true); err != nil {
		t.Fatal(err)
	}
	list, err := c.Permissions(ctx, "fineract", "rhythm")
	if err != nil || len(list) != 2 || list[1].EnabledBy[0] != "imhotep" {
		t.Fatalf("Permissions = %+v, %v", list, err)
	}
	var apiErr *client.Error
	if err := c.SetConsent(ctx, "fineract", "rhythm", "portfolio__v1__khepri", "nobody", true); !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Fatalf("unknown member: %v", err)
	}
}

func TestMiddleware(t *testing.T) {
	c := serve(t, sidecar(t))
	var served atomic.Int32
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		d := client.DecisionFrom(r.Context())
		if d == nil || !d.Allow {
			t.Errorf("the handler runs without an allow: %+v", d)
		}
		w.Write([]byte("served " + d.Action))
	})
	h := client.Middleware(app, client.MiddlewareOptions{
		Client: c, TenantHeader: "X-Tenant", Tenant: "bank",
		Member:      client.HeaderMember("X-User"),
		Application: func(r *http.Request) string { return r.Header.Get("X-App") },
	})
	srv := httptest.NewServer(h)
	defer srv.Close()

	do := func(method, path string, headers map[string]string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	code, hdr, body := do("GET", "/api/v1/portfolios/portfolio/", map[string]string{"X-User": "user_a"})
	if code != 200 || body != "served finmars:Portfolio:list" || hdr.Get("X-Verdict-Decision-Id") == "" {
		t.Fatalf("allowed: %d %q", code, body)
	}
	deny := func(code int, body string, wantStatus int, wantReason string) {
		t.Helper()
		var db client.DenyBody
		if err := json.Unmarshal([]byte(body), &db); err != nil || code != wantStatus || db.Allow || db.Status != wantStatus ||
			len(db.Reasons) == 0 || db.Reasons[len(db.Reasons)-1].Code != wantReason || db.DecisionID == "" {
			t.Fatalf("denied: %d %s (want %d %s)", code, body, wantStatus, wantReason)
		}
	}
	code, _, body = do("GET", "/api/v1/portfolios/portfolio/", map[string]string{"X-User": "intern"})
	deny(code, body, 403, "iam.no_allow")
	code, _, body = do("GET", "/api/v1/portfolios/portfolio/", nil)
	deny(code, body, 401, "iam.anonymous")
	code, _, body = do("GET", "/nothing", map[string]string{"X-User": "user_a"})
	deny(code, body, 404, "route.unknown")
	code, _, body = do("POST", "/portfolio/v1/khepri/beats", map[string]string{"X-User": "imhotep", "X-Tenant": "fineract", "X-App": "rhythm"})
	deny(code, body, 403, "delegation.not_requested")
	if served.Load() != 1 {
		t.Errorf("the handler ran %d times", served.Load())
	}
	// The path goes to verdict as the client wrote it: an encoded "/" that
	// the router may resolve to another route is refused, and an encoded
	// "?" is part of {id}, not the start of a query.
	code, _, body = do("GET", "/api/v1/portfolios/portfolio/..%2Fportfolio-type/", map[string]string{"X-User": "user_a"})
	if code != 400 || !strings.Contains(body, "request.path") {
		t.Errorf("an encoded / in {id}: %d %s", code, body)
	}
	code, _, body = do("GET", "/api/v1/portfolios/portfolio/light%3Fx/", map[string]string{"X-User": "user_a"})
	if code != 200 || body != "served finmars:Portfolio:retrieve" {
		t.Errorf("an encoded ? in {id}: %d %q, want the retrieve action", code, body)
	}
	if served.Load() != 2 {
		t.Errorf("the handler ran %d times", served.Load())
	}

	// verdict unreachable: fail closed with 503.
	down := client.Middleware(app, client.MiddlewareOptions{Client: client.New("http://" + freeAddr(t)), Tenant: "bank"})
	rec := httptest.NewRecorder()
	down.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/portfolios/portfolio/", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "authorization_unavailable") {
		t.Errorf("verdict down: %d %s", rec.Code, rec.Body)
	}
	// No tenant: verdict refuses the question, the request is refused.
	none := client.Middleware(app, client.MiddlewareOptions{Client: c})
	rec = httptest.NewRecorder()
	none.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/portfolios/portfolio/", nil))
	if rec.Code != 400 {
		t.Errorf("no tenant: %d %s", rec.Code, rec.Body)
	}
	if served.Load() != 2 {
		t.Errorf("the handler ran %d times", served.Load())
	}
}

// TestStandardLibraryOnly keeps the client light: a service importing it
// must not link OPA or the rest of verdict.
func TestStandardLibraryOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep != "github.com/verdict-authz/verdict/decision/client" {
			t.Errorf("the client depends on %s", dep)
		}
	}
}
