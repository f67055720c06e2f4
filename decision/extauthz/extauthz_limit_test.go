package extauthz_test

import (
	"context"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/verdict-authz/verdict/decision/admission"
	"github.com/verdict-authz/verdict/decision/extauthz"
	"github.com/verdict-authz/verdict/decision/proxyauth"
	"github.com/verdict-authz/verdict/loader/loadertest"
)

// TestCheckSharesTheDecisionLimit is a regression test: the gRPC port was
// not limited by --max-concurrent-decisions, so checks could evaluate
// beyond the limit the HTTP decision endpoints keep. Over a real loopback
// connection: with the one slot of the shared pool taken (as an HTTP
// decision in flight takes it), a check is denied 503 UNAVAILABLE with
// Retry-After (a deny, never an OK or an RPC error), the refusal counts in
// the overload signal, and once the slot is free the check is decided.
func TestCheckSharesTheDecisionLimit(t *testing.T) {
	engine, _ := loadertest.Demo(t)
	slots := admission.New(1)
	c := authv3.NewAuthorizationClient(serve(t, engine, extauthz.Options{
		Identity: proxyauth.Options{Tenant: "bank", MemberHeader: "X-User"}, Admission: slots}))
	req := checkRequest("GET", "/api/v1/portfolios/portfolio/", map[string]string{"x-user": "user_a"}, nil)
	if a := check(t, c, req); a.code != codes.OK {
		t.Fatalf("a free slot: code %v status %d body %v, want an allow", a.code, a.httpStatus, a.body)
	}
	if err := slots.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	a := check(t, c, req)
	if a.code != codes.Unavailable || a.httpStatus != 503 || a.headers["retry-after"] != "1" || a.body["code"] != "overloaded" {
		t.Fatalf("every slot taken: code %v status %d headers %v body %v; want a denied 503 overloaded, UNAVAILABLE, Retry-After 1",
			a.code, a.httpStatus, a.headers, a.body)
	}
	if d := slots.OverloadedFor(); d < 0 || d >= admission.ReadyAfter {
		t.Errorf("the refusal is not recorded as a moment of overload: %v", d)
	}
	slots.Release()
	// Many checks at once, more than the one slot: each is decided or
	// refused overloaded, never allowed beyond the limit unevaluated.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := check(t, c, req)
			if a.code != codes.OK && (a.code != codes.Unavailable || a.httpStatus != 503) {
				t.Errorf("concurrent check: code %v status %d body %v", a.code, a.httpStatus, a.body)
			}
		}()
	}
	wg.Wait()
	if a := check(t, c, req); a.code != codes.OK {
		t.Fatalf("slot released: code %v status %d body %v, want an allow", a.code, a.httpStatus, a.body)
	}
}

// TestCheckHealthReflectsSustainedOverload: decisions refused for
// admission.ReadyAfter without a pause (at either door) make the health
// service NOT_SERVING, as they make GET /health/ready 503; a pause of
// admission.Gap makes it SERVING again.
func TestCheckHealthReflectsSustainedOverload(t *testing.T) {
	engine, _ := loadertest.Demo(t)
	var mu sync.Mutex
	now := time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	slots := admission.New(1, admission.WithClock(clock))
	hc := healthpb.NewHealthClient(serve(t, engine, extauthz.Options{
		Identity: proxyauth.Options{Tenant: "bank"}, Admission: slots, HealthInterval: 10 * time.Millisecond}))
	waitFor := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			resp, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "envoy.service.auth.v3.Authorization"})
			if err == nil && resp.GetStatus() == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("health %v %v, want %v", resp.GetStatus(), err, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor(healthpb.HealthCheckResponse_SERVING)
	for range 12 {
		slots.Refused()
		advance(admission.Gap / 2)
	}
	slots.Refused()
	waitFor(healthpb.HealthCheckResponse_NOT_SERVING)
	advance(admission.Gap + time.Millisecond)
	waitFor(healthpb.HealthCheckResponse_SERVING)
}
