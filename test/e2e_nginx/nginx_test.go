// Package e2enginx runs the real nginx in front of a small upstream with
// auth_request pointing at a real verdict, using nginx.example.conf.
package e2enginx

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/verdict-authz/verdict/internal/testjwt"
	"github.com/verdict-authz/verdict/test/e2eutil"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitFor(t *testing.T, url string, ok func(*http.Response) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			good := ok(resp)
			resp.Body.Close()
			if good {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not come up", url)
}

// nginxBinary finds nginx on PATH or in /usr/sbin. The tests need the real
// nginx: without it they fail (never skip), saying how to install it.
func nginxBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatal("nginx is not installed, and these tests run the real nginx: install it (apt-get install nginx; .ci/run does)")
	return ""
}

// Every token names this issuer; verdict runs with --authz-jwt-issuer and
// --authz-jwt-audience set to them.
const (
	issuer   = "https://id.example.com/"
	audience = "verdict"
)

// keys makes a signing key, writes its public JWKS and returns a token signer
// (for audience) and one for any audience.
func keys(t *testing.T, dir string) (jwksPath string, sign func(sub string, exp time.Time) string, signFor func(aud, sub string, exp time.Time) string) {
	t.Helper()
	signer := testjwt.NewSigner(t)
	b, err := json.Marshal(signer.JWKS)
	if err != nil {
		t.Fatal(err)
	}
	jwksPath = filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwksPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	signFor = func(aud, sub string, exp time.Time) string {
		return signer.Sign(t, sub, exp, map[string]any{jwt.IssuerKey: issuer, jwt.AudienceKey: []string{aud}})
	}
	sign = func(sub string, exp time.Time) string { return signFor(audience, sub, exp) }
	return jwksPath, sign, signFor
}

// startNginx runs nginx with nginx.example.conf, its addresses replaced by
// a free one for nginx, upstream (host:port) for the service and verdict
// for verdict, and every path inside dir; it stops when the test ends.
func startNginx(t *testing.T, nginx, dir, upstream, verdict string) string {
	t.Helper()
	nginxAddr := freeAddr(t)
	conf, err := os.ReadFile("nginx.example.conf")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer(
		"127.0.0.1:8000", nginxAddr,
		"127.0.0.1:8080", upstream,
		"127.0.0.1:8181", verdict,
	).Replace(string(conf))
	// Run as the current user with every path inside the temporary prefix.
	prefix := "pid " + filepath.Join(dir, "nginx.pid") + ";\nerror_log " + filepath.Join(dir, "error.log") + ";\n"
	if os.Geteuid() == 0 {
		prefix += "user root;\n"
	}
	text = prefix + strings.Replace(text, "http {", "http {\n    access_log off;\n    client_body_temp_path "+dir+"/body;\n    proxy_temp_path "+dir+"/proxy;\n    fastcgi_temp_path "+dir+"/fastcgi;\n    uwsgi_temp_path "+dir+"/uwsgi;\n    scgi_temp_path "+dir+"/scgi;\n", 1)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	n := exec.Command(nginx, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	n.Stderr = os.Stderr
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Process.Signal(os.Interrupt) // nginx: fast shutdown
		n.Wait()
		if t.Failed() {
			if log, err := os.ReadFile(filepath.Join(dir, "error.log")); err == nil {
				t.Logf("nginx error.log:\n%s", log)
			}
		}
	})
	waitFor(t, "http://"+nginxAddr+"/", func(r *http.Response) bool { return r.StatusCode != 0 })
	return nginxAddr
}

func TestNginxAuthRequest(t *testing.T) {
	nginx := nginxBinary(t)
	dir := t.TempDir()
	bin, err := e2eutil.BuildVerdict(dir)
	if err != nil {
		t.Fatal(err)
	}
	jwksPath, sign, signFor := keys(t, dir)

	// The upstream service: says who asked and which decision let it through.
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream %s %s decision=%s", r.Method, r.URL.RequestURI(), r.Header.Get("X-Verdict-Decision-Id"))
	}))
	defer upstream.Close()

	decisionLog := filepath.Join(dir, "decisions.log")
	v, err := e2eutil.Launch(bin, e2eutil.Options{WaitPath: "/health/ready"}, "--authz-tenant", "bank", "--authz-jwks-file", jwksPath,
		"--authz-jwt-issuer", issuer, "--authz-jwt-audience", audience, "--authz-ip-header", "X-Real-IP",
		"--authz-frn-header", "X-Verdict-FRN", "--decision-log", decisionLog)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Stop()
	defer func() {
		if t.Failed() {
			t.Logf("verdict's log:\n%s", v.Out.String())
		}
	}()
	nginxAddr := startNginx(t, nginx, dir, strings.TrimPrefix(upstream.URL, "http://"), v.Addr)

	valid := sign("user_a", time.Now().Add(time.Hour))
	tests := []struct {
		name, method, path, token string
		wantStatus                int
		wantReason                string
		wantUpstream              bool
		// headers are sent by the client besides Authorization.
		headers map[string]string
	}{
		{"allowed list passes through", "GET", "/api/v1/portfolios/portfolio/?page=2", valid, 200, "iam.allow", true, nil},
		{"allowed read of own group's portfolio", "GET", "/api/v1/portfolios/portfolio/bonds-portfolio/", valid, 200, "iam.allow", true, nil},
		// The map in the example config passes the object's FRN: the
		// resource-group and object-level rules apply as through
		// /v1/decide.
		{"another group's portfolio is denied", "GET", "/api/v1/portfolios/portfolio/bonds-portfolio/", sign("user_b", time.Now().Add(time.Hour)), 403, "resource.not_covered", false, nil},
		{"her own group's portfolio is allowed", "GET", "/api/v1/portfolios/portfolio/fx-portfolio/?x=1", sign("user_b", time.Now().Add(time.Hour)), 200, "iam.allow", true, nil},
		{"an object-level Deny applies", "GET", "/api/v1/portfolios/portfolio/secret-portfolio/", sign("head_of_banking", time.Now().Add(time.Hour)), 403, "iam.explicit_deny", false, nil},
		{"a client's X-Verdict-FRN does not pick the object", "GET", "/api/v1/portfolios/portfolio/bonds-portfolio/", sign("user_b", time.Now().Add(time.Hour)), 403, "resource.not_covered", false,
			map[string]string{"X-Verdict-FRN": "frn:finmars:portfolios:portfolio:fx-portfolio"}},
		// A user code percent-encoded in the URI is the same object to
		// the service, which decodes the path: the map reads the decoded
		// path, so the object's rules still apply.
		{"an object-level Deny applies to an encoded code", "DELETE", "/api/v1/portfolios/portfolio/secret%2Dportfolio/", sign("head_of_banking", time.Now().Add(time.Hour)), 403, "iam.explicit_deny", false, nil},
		{"another group's portfolio is denied, its code encoded", "GET", "/api/v1/portfolios/portfolio/%62onds-portfolio/?x=1", sign("user_b", time.Now().Add(time.Hour)), 403, "resource.not_covered", false, nil},
		{"her own group's portfolio is allowed, its code encoded", "GET", "/api/v1/portfolios/portfolio/fx%2dportfolio/", sign("user_b", time.Now().Add(time.Hour)), 200, "iam.allow", true, nil},
		// A code the map cannot name is refused, not decided without an
		// object (which any Allow would cover).
		{"a code the map cannot name is refused", "GET", "/api/v1/portfolios/portfolio/bonds%20portfolio/", sign("user_b", time.Now().Add(time.Hour)), 403, "request.invalid", false, nil},
		{"denied delete stops at nginx", "DELETE", "/api/v1/portfolios/portfolio/7/", valid, 403, "iam.no_allow", false, nil},
		// With a JWKS a bearer JWT is required: no decision without one.
		{"no token: 401", "GET", "/api/v1/portfolios/portfolio/", "", 401, "token.missing", false, nil},
		{"a Basic credential instead of a token: 401", "GET", "/api/v1/portfolios/portfolio/", "", 401, "token.missing", false,
			map[string]string{"Authorization": "Basic dXNlcl9hOng="}},
		{"an empty bearer token: 401", "GET", "/api/v1/portfolios/portfolio/", "", 401, "token.invalid", false,
			map[string]string{"Authorization": "Bearer "}},
		{"expired token: 401", "GET", "/api/v1/portfolios/portfolio/", sign("user_a", time.Now().Add(-time.Hour)), 401, "token.invalid", false, nil},
		{"token without exp: 401", "GET", "/api/v1/portfolios/portfolio/", sign("user_a", time.Time{}), 401, "token.invalid", false, nil},
		{"token for another audience: 401", "GET", "/api/v1/portfolios/portfolio/", signFor("billing", "user_a", time.Now().Add(time.Hour)), 401, "token.invalid", false, nil},
		{"forged token: 401", "GET", "/api/v1/portfolios/portfolio/", valid[:len(valid)-4] + "AAAA", 401, "token.invalid", false, nil},
		{"unknown route: 403", "GET", "/no/such/route", valid, 403, "route.unknown", false, nil},
		// {id} must not absorb what the service may resolve to another
		// route: verdict refuses to translate such a path.
		{"an encoded separator in {id}: 403", "GET", "/api/v1/portfolios/portfolio/..%2Fportfolio-type/", valid, 403, "request.invalid", false, nil},
		{"encoded dots in {id}: 403", "GET", "/api/v1/portfolios/portfolio/%2e%2e/portfolio-type/", valid, 403, "request.invalid", false, nil},
		{"an encoded backslash in {id}: 403", "GET", "/api/v1/portfolios/portfolio/..%5Cportfolio-type/", valid, 403, "request.invalid", false, nil},
		{"admin may delete", "DELETE", "/api/v1/portfolios/portfolio/7/", sign("admin", time.Now().Add(time.Hour)), 200, "iam.admin", true, nil},
		// Headers verdict trusts, sent by a client: the example config
		// clears or overwrites them, and --authz-tenant wins anyway.
		{"a client's X-Verdict-Tenant does not pick the tenant", "DELETE", "/api/v1/portfolios/portfolio/3/", sign("antony", time.Now().Add(time.Hour)), 403, "iam.unknown_member", false,
			map[string]string{"X-Verdict-Tenant": "fineract"}},
		{"a client's X-Verdict-Service does not pick the routes", "GET", "/api/v1/portfolios/portfolio/", valid, 200, "iam.allow", true,
			map[string]string{"X-Verdict-Service": "no-such-service"}},
		{"a client's X-Real-IP does not choose its address", "DELETE", "/api/v1/portfolios/portfolio/7/", sign("admin", time.Now().Add(time.Hour)), 200, "iam.admin", true,
			map[string]string{"X-Real-IP": "203.0.113.66"}},
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, "http://"+nginxAddr+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.wantStatus, body)
			}
			if got := resp.Header.Get("X-Verdict-Reason"); got != tt.wantReason {
				t.Errorf("X-Verdict-Reason %q, want %q", got, tt.wantReason)
			}
			id := resp.Header.Get("X-Verdict-Decision-Id")
			// Refused tokens and paths are not decisions.
			if !strings.HasPrefix(tt.wantReason, "token.") && tt.wantReason != "request.invalid" && id == "" {
				t.Error("no X-Verdict-Decision-Id")
			}
			reached := strings.HasPrefix(string(body), "upstream ")
			if reached != tt.wantUpstream {
				t.Fatalf("upstream reached = %v, want %v (body %q)", reached, tt.wantUpstream, body)
			}
			if reached && !strings.Contains(string(body), "decision="+id) {
				t.Errorf("the upstream did not get the decision id %s: %q", id, body)
			}
			if id == "" {
				return
			}
			// Whatever the client sent, verdict decided for the tenant it
			// was configured with and the address nginx saw.
			in := loggedInput(t, decisionLog, id)
			if in.Tenant != "bank" || in.Context.IP != "127.0.0.1" {
				t.Errorf("decision %s: input tenant %q, context.ip %q; want bank and 127.0.0.1", id, in.Tenant, in.Context.IP)
			}
		})
	}
}

// TestNginxRepeatedCallerHeaders: nginx passes the client's key header on
// to the auth subrequest as it is, copies included. A client sending one
// twice must not let verdict read one copy while the service reads
// another: verdict refuses it (403 request.invalid) and the request stops
// at nginx. The headers the example config sets or clears reach verdict
// once whatever the client sent (TestNginxExampleConfigSetsVerdictHeaders).
func TestNginxRepeatedCallerHeaders(t *testing.T) {
	nginx := nginxBinary(t)
	dir := t.TempDir()
	bin, err := e2eutil.BuildVerdict(dir)
	if err != nil {
		t.Fatal(err)
	}
	jwksPath, sign, _ := keys(t, dir)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "upstream")
	}))
	defer upstream.Close()
	v, err := e2eutil.Launch(bin, e2eutil.Options{WaitPath: "/health/ready"}, "--authz-tenant", "bank", "--authz-jwks-file", jwksPath,
		"--authz-jwt-issuer", issuer, "--authz-jwt-audience", audience, "--authz-ip-header", "X-Real-IP", "--authz-frn-header", "X-Verdict-FRN")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Stop()
	nginxAddr := startNginx(t, nginx, dir, strings.TrimPrefix(upstream.URL, "http://"), v.Addr)
	admin := "Bearer " + sign("admin", time.Now().Add(time.Hour))
	userA := "Bearer " + sign("user_a", time.Now().Add(time.Hour))
	for _, tt := range []struct {
		name       string
		header     http.Header
		wantStatus int
		wantReason string
	}{
		{"each once: decided", http.Header{"Authorization": {admin}}, 200, "iam.admin"},
		// nginx itself refuses a repeated Authorization (400) before
		// asking verdict, which would refuse it too.
		{"two bearer tokens: nginx refuses", http.Header{"Authorization": {userA, admin}}, 400, ""},
		{"two keys", http.Header{"Authorization": {admin}, "Key": {"k1", "k2"}}, 403, "request.invalid"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("DELETE", "http://"+nginxAddr+"/api/v1/portfolios/portfolio/7/", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = tt.header
			resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus || resp.Header.Get("X-Verdict-Reason") != tt.wantReason || (string(body) == "upstream") != (tt.wantStatus == 200) {
				t.Fatalf("status %d reason %q, want %d %q; body %s\nverdict's log:\n%s", resp.StatusCode, resp.Header.Get("X-Verdict-Reason"),
					tt.wantStatus, tt.wantReason, body, v.Out.String())
			}
		})
	}
}

// loggedInput waits for decision id in verdict's decision log and returns
// the tenant and context.ip of its input.
func loggedInput(t *testing.T, path, id string) (in struct {
	Tenant  string `json:"tenant"`
	Context struct {
		IP string `json:"ip"`
	} `json:"context"`
}) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.Contains(line, id) {
				continue
			}
			var entry struct {
				DecisionID string          `json:"decision_id"`
				Input      json.RawMessage `json:"input"`
			}
			if json.Unmarshal([]byte(line), &entry) != nil || entry.DecisionID != id {
				continue
			}
			if err := json.Unmarshal(entry.Input, &in); err != nil {
				t.Fatalf("decision %s: input %s: %v", id, entry.Input, err)
			}
			return in
		}
		if time.Now().After(deadline) {
			t.Fatalf("decision %s is not in the decision log:\n%s", id, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNginxExampleConfigSetsVerdictHeaders checks the example config alone,
// in front of a stand-in for verdict that records the subrequest: the
// headers verdict trusts never carry what the client sent. nginx passes
// every client header to an auth_request subrequest, so a header the
// config does not set or clear reaches verdict as the client wrote it.
func TestNginxExampleConfigSetsVerdictHeaders(t *testing.T) {
	nginx := nginxBinary(t)
	dir := t.TempDir()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "upstream")
	}))
	defer upstream.Close()
	got := make(chan http.Header, 1)
	verdict := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Only the probe (not the requests that wait for nginx to start).
		if r.URL.Path == "/v1/authz" && r.Header.Get("X-Probe") != "" {
			select {
			case got <- r.Header.Clone():
			default:
			}
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer verdict.Close()
	nginxAddr := startNginx(t, nginx, dir, strings.TrimPrefix(upstream.URL, "http://"), strings.TrimPrefix(verdict.URL, "http://"))

	req, err := http.NewRequest("GET", "http://"+nginxAddr+"/api/v1/portfolios/portfolio/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Verdict-Tenant", "fineract")
	req.Header.Set("X-Verdict-Service", "other")
	req.Header.Set("X-Verdict-FRN", "frn:finmars:portfolios:portfolio:fx-portfolio")
	req.Header.Add("X-Real-IP", "203.0.113.66")
	req.Header.Add("X-Real-IP", "10.0.0.1")
	req.Header.Set("X-Original-Method", "DELETE")
	req.Header.Set("X-Original-URI", "/admin/")
	req.Header.Set("key", "a-key")
	req.Header.Set("X-Probe", "1")
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200 (the stand-in allows everything)", resp.StatusCode)
	}
	var h http.Header
	select {
	case h = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the auth subrequest never reached verdict")
	}
	for name, want := range map[string][]string{
		"X-Verdict-Tenant":  nil,
		"X-Verdict-Service": nil,
		"X-Verdict-Frn":     nil, // the collection names no object
		"X-Real-Ip":         {"127.0.0.1"},
		"X-Original-Method": {"GET"},
		"X-Original-Uri":    {"/api/v1/portfolios/portfolio/"},
		// A SOAJS key is the client's credential: passed on, verified by
		// verdict.
		"Key": {"a-key"},
	} {
		if got := h.Values(name); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("verdict got %s %q, want %q", name, got, want)
		}
	}
}
