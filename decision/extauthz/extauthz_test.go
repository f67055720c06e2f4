package extauthz_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/extauthz"
	"github.com/verdict-authz/verdict/decision/proxyauth"
	"github.com/verdict-authz/verdict/internal/testjwt"
	"github.com/verdict-authz/verdict/loader/loadertest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// serve starts an ext_authz server over engine on a loopback port and
// returns a client connection to it.
func serve(t *testing.T, engine *decision.Engine, o extauthz.Options) *grpc.ClientConn {
	t.Helper()
	o.Log = quiet
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- extauthz.New(engine, o).Serve(ctx, ln) }()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return conn
}

// demoClient serves the demo bundle with the given identity options.
func demoClient(t *testing.T, id proxyauth.Options) authv3.AuthorizationClient {
	t.Helper()
	engine, _ := loadertest.Demo(t)
	return authv3.NewAuthorizationClient(serve(t, engine, extauthz.Options{Identity: id, ActionHeader: "X-Verdict-Action"}))
}

// checkRequest is what Envoy sends for method and path with these headers
// from a client at 10.1.2.3.
func checkRequest(method, path string, headers map[string]string, ext map[string]string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "10.1.2.3", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 51234}},
		}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: method, Path: path, Headers: headers, Host: "api.example.com", Scheme: "http", Protocol: "HTTP/1.1",
		}},
		ContextExtensions: ext,
	}}
}

// answer is a CheckResponse flattened for comparison.
type answer struct {
	code       codes.Code
	httpStatus int // 0 for an allow
	headers    map[string]string
	body       map[string]any
}

func check(t *testing.T, c authv3.AuthorizationClient, req *authv3.CheckRequest) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Check(ctx, req)
	if err != nil {
		t.Fatalf("Check: RPC error %v; every outcome must be a CheckResponse", err)
	}
	a := answer{code: codes.Code(resp.GetStatus().GetCode()), headers: map[string]string{}}
	switch r := resp.GetHttpResponse().(type) {
	case *authv3.CheckResponse_OkResponse:
		for _, h := range r.OkResponse.GetHeaders() {
			if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
				t.Errorf("upstream header %s is not set with OVERWRITE_IF_EXISTS_OR_ADD: a client's value could reach the upstream", h.GetHeader().GetKey())
			}
			a.headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
	case *authv3.CheckResponse_DeniedResponse:
		a.httpStatus = int(r.DeniedResponse.GetStatus().GetCode())
		for _, h := range r.DeniedResponse.GetHeaders() {
			a.headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
		if err := json.Unmarshal([]byte(r.DeniedResponse.GetBody()), &a.body); err != nil {
			t.Fatalf("denied body is not JSON: %v: %q", err, r.DeniedResponse.GetBody())
		}
	default:
		t.Fatalf("no HTTP response in %v", resp)
	}
	if (a.code == codes.OK) != (a.httpStatus == 0) {
		t.Fatalf("status %v with HTTP response %d: an OK must carry an OkResponse, a deny a DeniedResponse", a.code, a.httpStatus)
	}
	return a
}

// tnt3Key is a SOAJS key of the demo tenant tnt3.
const tnt3Key = "7bc1e66d003a3b2acfce1557cbda7320ec45057be0505fd7e9dec19e9fe74c194b109a48568f53449c1cc607a3cb23d70de86831a2ac4b87f1c0c5d57d19702a74ac22a64531185af11f75967f9ba54cb930149ed8a1384f924be9baa4ed5b0b"

func TestCheckDecisions(t *testing.T) {
	c := demoClient(t, proxyauth.Options{Tenant: "bank", MemberHeader: "X-User"})
	open := demoClient(t, proxyauth.Options{MemberHeader: "X-User"})
	const list = "/api/v1/portfolios/portfolio/"
	tests := []struct {
		name       string
		client     authv3.AuthorizationClient
		req        *authv3.CheckRequest
		wantCode   codes.Code
		wantStatus int // 0: allowed
		wantReason string
		wantAction string
	}{
		{"allow", c, checkRequest("GET", list, map[string]string{"x-user": "user_a"}, nil),
			codes.OK, 0, "", "finmars:Portfolio:list"},
		{"allow, with a query string", c, checkRequest("GET", list+"?page=2", map[string]string{"x-user": "user_a"}, nil),
			codes.OK, 0, "", "finmars:Portfolio:list"},
		{"deny 403: not allowed", c, checkRequest("DELETE", list+"3/", map[string]string{"x-user": "user_a"}, nil),
			codes.PermissionDenied, 403, "iam.no_allow", ""},
		{"deny 401: anonymous", c, checkRequest("GET", list, nil, nil),
			codes.Unauthenticated, 401, "iam.anonymous", ""},
		{"deny 404: unknown route", c, checkRequest("GET", "/nowhere", map[string]string{"x-user": "user_a"}, nil),
			codes.NotFound, 404, "route.unknown", ""},
		{"deny 404: unknown tenant", open, checkRequest("GET", list, map[string]string{"x-user": "user_a", "x-verdict-tenant": "nobody"}, nil),
			codes.NotFound, 404, "tenant.unknown", ""},
		{"the source address is context.ip: blocked", c, func() *authv3.CheckRequest {
			r := checkRequest("GET", list, map[string]string{"x-user": "admin"}, nil)
			r.Attributes.Source.Address.GetSocketAddress().Address = "::ffff:203.0.113.66"
			return r
		}(), codes.PermissionDenied, 403, "ext.ip_blocked", ""},
		{"the source address is context.ip: not blocked", c, checkRequest("GET", list, map[string]string{"x-user": "admin"}, nil),
			codes.OK, 0, "", "finmars:Portfolio:list"},
		{"context_extensions tenant wins over the header", open, checkRequest("DELETE", list+"3/",
			map[string]string{"x-user": "antony", "x-verdict-tenant": "fineract"}, map[string]string{"tenant": "bank"}),
			codes.PermissionDenied, 403, "iam.unknown_member", ""},
		{"without it the header names the tenant", open, checkRequest("DELETE", list+"3/",
			map[string]string{"x-user": "antony", "x-verdict-tenant": "fineract"}, nil),
			codes.OK, 0, "", "finmars:Portfolio:destroy"},
		{"context_extensions service limits the routes searched", c, checkRequest("GET", list,
			map[string]string{"x-user": "user_a"}, map[string]string{"service": "example03"}),
			codes.NotFound, 404, "route.unknown", ""},
		{"a key of another tenant than the configured one", c, checkRequest("GET", "/buildName", map[string]string{"key": tnt3Key}, nil),
			codes.PermissionDenied, 403, "key.invalid", ""},
		{"a key names its tenant", open, checkRequest("GET", "/buildName", map[string]string{"key": tnt3Key}, nil),
			codes.OK, 0, "", "example03:buildName:get"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := check(t, tt.client, tt.req)
			if a.code != tt.wantCode || a.httpStatus != tt.wantStatus {
				t.Fatalf("code %v status %d, want %v %d; body %v", a.code, a.httpStatus, tt.wantCode, tt.wantStatus, a.body)
			}
			if a.headers[extauthz.HeaderDecisionID] == "" {
				t.Errorf("no %s header", extauthz.HeaderDecisionID)
			}
			if tt.wantStatus == 0 {
				if got := a.headers["x-verdict-action"]; got != tt.wantAction {
					t.Errorf("action header %q, want %q", got, tt.wantAction)
				}
				return
			}
			if got := a.headers[extauthz.HeaderReason]; got != tt.wantReason {
				t.Errorf("reason header %q, want %q", got, tt.wantReason)
			}
			if a.body["decision_id"] != a.headers[extauthz.HeaderDecisionID] || a.body["allow"] != false {
				t.Errorf("body %v is not the decision", a.body)
			}
			if reasons, _ := a.body["reasons"].([]any); len(reasons) == 0 {
				t.Errorf("body %v has no reasons", a.body)
			}
			if a.headers["content-type"] != "application/json" {
				t.Errorf("content-type %q", a.headers["content-type"])
			}
		})
	}
}

// TestCheckAgreesWithDecide: for generated questions (tenants, keys,
// members, methods, paths with odd segments and escapes, client addresses,
// per-route service), a check allows exactly when the engine, asked the
// same question as POST /v1/decide asks it, allows; a denied check carries
// the decision's status; and a check refused as malformed is a question
// the engine refuses as malformed too.
func TestCheckAgreesWithDecide(t *testing.T) {
	engine, _ := loadertest.Demo(t)
	c := authv3.NewAuthorizationClient(serve(t, engine, extauthz.Options{Identity: proxyauth.Options{MemberHeader: "X-User"}}))
	pick := func(r *rand.Rand, xs ...string) string { return xs[r.IntN(len(xs))] }
	r := rand.New(rand.NewPCG(18, 1))
	seen := map[string]int{} // outcomes, so that the generator keeps covering each
	for i := 0; i < 600; i++ {
		tenant := pick(r, "bank", "bank", "bank", "fineract", "fineract", "tnt3", "nobody", "")
		key := pick(r, "", "", "", "", tnt3Key, "not-a-key")
		member := pick(r, "user_a", "user_a", "admin", "admin", "antony", "user_b", "intern", "imhotep", "", "nobody")
		method := pick(r, "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "get")
		path := pick(r, "/api/v1/portfolios/portfolio/", "/api/v1/portfolios/portfolio/7/", "/api/v1/portfolios/portfolio/light/",
			"/api/v1/instruments/instrument/", "/api/v1/instruments/instrument/9/recalculate/", "/buildName", "/users/5", "/identity/v1/users")
		if r.IntN(3) == 0 { // an odd variant
			path += pick(r, "%6Cight/", "..%2F", "./", "x/y/", "?q=1", "#f", "%00")
		}
		ip := pick(r, "10.1.2.3", "10.1.2.3", "203.0.113.66", "::ffff:203.0.113.66", "2001:db8::1")
		service := pick(r, "", "", "", "portfolios", "example03", "nope")
		headers := map[string]string{"x-user": member, "x-verdict-tenant": tenant, "key": key}
		var ext map[string]string
		if service != "" {
			ext = map[string]string{"service": service}
		}
		req := checkRequest(method, path, headers, ext)
		req.Attributes.Source.Address.GetSocketAddress().Address = ip
		want, err := engine.Decide(context.Background(), &decision.Request{
			Tenant: tenant, Key: key, Member: member,
			Request: &decision.HTTPRequest{Method: method, Path: path, Service: service},
			Context: map[string]any{"ip": mustIP(t, ip)},
		})
		a := check(t, c, req)
		question := fmt.Sprintf("%s %s tenant %q key %q member %q ip %s service %q", method, path, tenant, key, member, ip, service)
		if err != nil {
			if a.code == codes.OK || a.httpStatus != 400 {
				t.Errorf("%s: decide refuses it (%v), the check answered %v %d", question, err, a.code, a.httpStatus)
			}
			seen["refused"]++
			continue
		}
		seen[fmt.Sprint(want.Status)]++
		allowed := a.code == codes.OK
		if allowed != want.Allow || (!allowed && a.httpStatus != want.Status) {
			t.Errorf("%s: check allowed=%v status %d, decide allow=%v status %d (%s)",
				question, allowed, a.httpStatus, want.Allow, want.Status, want.DecidingReason())
		}
	}
	for _, outcome := range []string{"200", "401", "403", "404", "refused"} {
		if seen[outcome] < 5 {
			t.Errorf("only %d generated questions were %s (%v): the generator no longer covers it", seen[outcome], outcome, seen)
		}
	}
}

func mustIP(t *testing.T, s string) string {
	t.Helper()
	ip, err := proxyauth.ParseIP(s)
	if err != nil {
		t.Fatal(err)
	}
	return ip
}

func TestCheckJWT(t *testing.T) {
	signer := testjwt.NewSigner(t)
	const audience = "verdict"
	c := demoClient(t, proxyauth.Options{Tenant: "bank", JWKS: signer.JWKS, Audience: audience})
	hour := time.Now().Add(time.Hour)
	aud := map[string]any{"aud": audience}
	tests := []struct {
		name       string
		auth       string
		wantCode   codes.Code
		wantStatus int
		wantReason string
	}{
		{"good token", "Bearer " + signer.Sign(t, "user_a", hour, aud), codes.OK, 0, ""},
		{"good token, member not allowed", "Bearer " + signer.Sign(t, "intern", hour, aud), codes.PermissionDenied, 403, "iam.no_allow"},
		{"expired", "Bearer " + signer.Sign(t, "user_a", time.Now().Add(-time.Hour), aud), codes.Unauthenticated, 401, "token.invalid"},
		{"wrong audience", "Bearer " + signer.Sign(t, "user_a", hour, map[string]any{"aud": "billing"}), codes.Unauthenticated, 401, "token.invalid"},
		{"signed by another key", "Bearer " + testjwt.NewSigner(t).Sign(t, "user_a", hour, aud), codes.Unauthenticated, 401, "token.invalid"},
		{"not a JWT", "Bearer not.a.jwt", codes.Unauthenticated, 401, "token.invalid"},
		{"no exp", "Bearer " + signer.Sign(t, "user_a", time.Time{}, aud), codes.Unauthenticated, 401, "token.invalid"},
		// With a JWKS a token is required (issue 14 item 4).
		{"no token", "", codes.Unauthenticated, 401, "token.missing"},
		{"a Basic credential", "Basic dXNlcl9hOng=", codes.Unauthenticated, 401, "token.missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := check(t, c, checkRequest("GET", "/api/v1/portfolios/portfolio/", map[string]string{"authorization": tt.auth}, nil))
			if a.code != tt.wantCode || a.httpStatus != tt.wantStatus || a.headers[extauthz.HeaderReason] != tt.wantReason {
				t.Fatalf("code %v status %d reason %q, want %v %d %q; body %v",
					a.code, a.httpStatus, a.headers[extauthz.HeaderReason], tt.wantCode, tt.wantStatus, tt.wantReason, a.body)
			}
			wantChallenge := map[string]string{"token.invalid": `Bearer error="invalid_token"`, "token.missing": "Bearer"}[tt.wantReason]
			if wantChallenge != "" && (a.headers["www-authenticate"] != wantChallenge || a.body["code"] != tt.wantReason) {
				t.Errorf("headers %v body %v", a.headers, a.body)
			}
		})
	}
}

// TestCheckSpoofing: what a client sends cannot pick who it is beyond what
// the options trust.
func TestCheckSpoofing(t *testing.T) {
	const list = "/api/v1/portfolios/portfolio/"
	t.Run("the member header is not read unless configured", func(t *testing.T) {
		c := demoClient(t, proxyauth.Options{Tenant: "bank"})
		a := check(t, c, checkRequest("GET", list, map[string]string{"x-user": "admin", "x-verdict-member": "admin"}, nil))
		if a.httpStatus != 401 || a.headers[extauthz.HeaderReason] != "iam.anonymous" {
			t.Errorf("status %d reason %q, want 401 iam.anonymous", a.httpStatus, a.headers[extauthz.HeaderReason])
		}
	})
	t.Run("the tenant header is not read with a configured tenant", func(t *testing.T) {
		c := demoClient(t, proxyauth.Options{Tenant: "bank", MemberHeader: "X-User"})
		a := check(t, c, checkRequest("DELETE", list+"3/", map[string]string{"x-user": "antony", "x-verdict-tenant": "fineract"}, nil))
		if a.httpStatus != 403 || a.body["tenant"] != "bank" {
			t.Errorf("status %d tenant %v, want 403 for bank", a.httpStatus, a.body["tenant"])
		}
	})
	t.Run("a client's decision id and action headers are overwritten", func(t *testing.T) {
		c := demoClient(t, proxyauth.Options{Tenant: "bank", MemberHeader: "X-User"})
		a := check(t, c, checkRequest("GET", list, map[string]string{
			"x-user": "user_a", extauthz.HeaderDecisionID: "forged", "x-verdict-action": "finmars:*",
		}, nil))
		if a.code != codes.OK || a.headers[extauthz.HeaderDecisionID] == "forged" || a.headers["x-verdict-action"] != "finmars:Portfolio:list" {
			t.Errorf("code %v headers %v", a.code, a.headers)
		}
	})
	t.Run("a configured IP header given twice is refused", func(t *testing.T) {
		c := demoClient(t, proxyauth.Options{Tenant: "bank", MemberHeader: "X-User", IPHeader: "X-Real-IP"})
		r := checkRequest("GET", list, nil, nil)
		r.Attributes.Request.Http.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: "x-user", Value: "admin"},
			{Key: "x-real-ip", RawValue: []byte("10.0.0.1")},
			{Key: "x-real-ip", RawValue: []byte("203.0.113.66")},
		}}
		a := check(t, c, r)
		if a.httpStatus != 400 || a.body["field"] != "X-Real-IP" {
			t.Errorf("status %d body %v, want 400 on X-Real-IP", a.httpStatus, a.body)
		}
	})
	t.Run("a configured IP header replaces the source address", func(t *testing.T) {
		c := demoClient(t, proxyauth.Options{Tenant: "bank", MemberHeader: "X-User", IPHeader: "X-Real-IP"})
		a := check(t, c, checkRequest("GET", list, map[string]string{"x-user": "admin", "x-real-ip": "203.0.113.66"}, nil))
		if a.httpStatus != 403 || a.headers[extauthz.HeaderReason] != "ext.ip_blocked" {
			t.Errorf("status %d reason %q, want 403 ext.ip_blocked", a.httpStatus, a.headers[extauthz.HeaderReason])
		}
	})
}

func TestCheckMalformed(t *testing.T) {
	c := demoClient(t, proxyauth.Options{MemberHeader: "X-User"})
	user := map[string]string{"x-user": "user_a", "x-verdict-tenant": "bank"}
	tests := []struct {
		name       string
		req        *authv3.CheckRequest
		wantStatus int
		wantField  string
		wantReason string
	}{
		{"empty request", &authv3.CheckRequest{}, 400, "attributes.request.http", ""},
		{"no method", checkRequest("", "/api/v1/portfolios/portfolio/", user, nil), 400, "attributes.request.http.method", ""},
		{"unknown method", checkRequest("BREW", "/api/v1/portfolios/portfolio/", user, nil), 400, "attributes.request.http.method", ""},
		{"no path", checkRequest("GET", "", user, nil), 400, "attributes.request.http.path", ""},
		{"not a path", checkRequest("GET", "api/v1", user, nil), 400, "attributes.request.http.path", extauthz.ReasonRequestInvalid},
		{"no tenant", checkRequest("GET", "/api/v1/portfolios/portfolio/", map[string]string{"x-user": "user_a"}, nil), 400, "X-Verdict-Tenant or key", ""},
		{"source address not an IP", func() *authv3.CheckRequest {
			r := checkRequest("GET", "/api/v1/portfolios/portfolio/", user, nil)
			r.Attributes.Source.Address.GetSocketAddress().Address = "evil"
			return r
		}(), 400, "attributes.source.address", ""},
		{"an encoded separator in the path", checkRequest("GET", "/api/v1/portfolios/portfolio/..%2Fportfolio-type/", user, nil), 400, "attributes.request.http.path", extauthz.ReasonRequestInvalid},
		{"a dot segment in the path", checkRequest("GET", "/api/v1/portfolios/portfolio/../portfolio-type/", user, nil), 400, "attributes.request.http.path", extauthz.ReasonRequestInvalid},
		{"unknown context extension", checkRequest("GET", "/api/v1/portfolios/portfolio/", user, map[string]string{"servce": "portfolios"}), 500, "context_extensions.servce", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := check(t, c, tt.req)
			if a.code == codes.OK || a.httpStatus != tt.wantStatus || a.body["field"] != tt.wantField {
				t.Fatalf("code %v status %d body %v, want a deny %d naming %s", a.code, a.httpStatus, a.body, tt.wantStatus, tt.wantField)
			}
			if got := a.headers[extauthz.HeaderReason]; got != tt.wantReason {
				t.Errorf("reason %q, want %q", got, tt.wantReason)
			}
		})
	}
}

// TestCheckNoBundle: before any bundle is loaded, checks are denied and
// the health service says NOT_SERVING; once one is, SERVING.
func TestCheckNoBundle(t *testing.T) {
	engine := decision.NewEngine(quiet)
	conn := serve(t, engine, extauthz.Options{Identity: proxyauth.Options{Tenant: "bank"}, HealthInterval: 10 * time.Millisecond})
	a := check(t, authv3.NewAuthorizationClient(conn), checkRequest("GET", "/api/v1/portfolios/portfolio/", nil, nil))
	if a.code == codes.OK || a.httpStatus < 400 {
		t.Fatalf("no bundle: code %v status %d, want a deny", a.code, a.httpStatus)
	}
	hc := healthpb.NewHealthClient(conn)
	for _, svc := range []string{"", "envoy.service.auth.v3.Authorization"} {
		resp, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("health %q with no bundle: %v %v, want NOT_SERVING", svc, resp.GetStatus(), err)
		}
	}
	demo, _ := loadertest.Demo(t)
	engine.Install(&demo.Current().Generation)
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "envoy.service.auth.v3.Authorization"})
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health after a bundle loaded: %v %v, want SERVING", resp.GetStatus(), err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
