// Package e2enginx runs the real nginx in front of a small upstream with
// auth_request pointing at a real verdict, using nginx.example.conf.
package e2enginx

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
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

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

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

func nginxBinary(t *testing.T) string {
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("nginx is not installed; .ci/run installs it")
	}
	t.Skip("nginx is not installed (apt-get install nginx)")
	return ""
}

// Every token names this issuer; verdict runs with --authz-jwt-issuer and
// --authz-jwt-audience set to them.
const (
	issuer   = "https://id.example.com/"
	audience = "verdict"
)

// keys makes an RSA key, writes its public JWKS and returns a token signer
// (for audience) and one for any audience.
func keys(t *testing.T, dir string) (jwksPath string, sign func(sub string, exp time.Time) string, signFor func(aud, sub string, exp time.Time) string) {
	t.Helper()
	raw, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	priv.Set(jwk.KeyIDKey, "test")
	priv.Set(jwk.AlgorithmKey, jwa.RS256())
	pub, err := priv.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	set.AddKey(pub)
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	jwksPath = filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwksPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	signFor = func(aud, sub string, exp time.Time) string {
		tok, err := jwt.NewBuilder().Issuer(issuer).Audience([]string{aud}).Subject(sub).Expiration(exp).Build()
		if err != nil {
			t.Fatal(err)
		}
		signed, err := jwt.Sign(tok, jwt.WithKey(jwa.RS256(), priv))
		if err != nil {
			t.Fatal(err)
		}
		return string(signed)
	}
	sign = func(sub string, exp time.Time) string { return signFor(audience, sub, exp) }
	return jwksPath, sign, signFor
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

	v, err := e2eutil.Launch(bin, e2eutil.Options{WaitPath: "/health/ready"}, "--authz-tenant", "bank", "--authz-jwks-file", jwksPath,
		"--authz-jwt-issuer", issuer, "--authz-jwt-audience", audience)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Stop()
	defer func() {
		if t.Failed() {
			t.Logf("verdict's log:\n%s", v.Out.String())
		}
	}()
	verdictAddr := v.Addr
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	nginxAddr := freeAddr(t)
	conf, err := os.ReadFile("nginx.example.conf")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer(
		"127.0.0.1:8000", nginxAddr,
		"127.0.0.1:8080", strings.TrimPrefix(upstream.URL, "http://"),
		"127.0.0.1:8181", verdictAddr,
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
	n := exec.CommandContext(ctx, nginx, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	n.Stderr = os.Stderr
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		n.Process.Signal(os.Interrupt) // nginx: fast shutdown
		n.Wait()
		if t.Failed() {
			if log, err := os.ReadFile(filepath.Join(dir, "error.log")); err == nil {
				t.Logf("nginx error.log:\n%s", log)
			}
		}
	}()
	waitFor(t, "http://"+nginxAddr+"/", func(r *http.Response) bool { return r.StatusCode != 0 })

	valid := sign("user_a", time.Now().Add(time.Hour))
	tests := []struct {
		name, method, path, token string
		wantStatus                int
		wantReason                string
		wantUpstream              bool
	}{
		{"allowed list passes through", "GET", "/api/v1/portfolios/portfolio/?page=2", valid, 200, "iam.allow", true},
		{"allowed read of own group's portfolio", "GET", "/api/v1/portfolios/portfolio/7/", valid, 200, "iam.allow", true},
		{"denied delete stops at nginx", "DELETE", "/api/v1/portfolios/portfolio/7/", valid, 403, "iam.no_allow", false},
		{"no token is anonymous: 401", "GET", "/api/v1/portfolios/portfolio/", "", 401, "iam.anonymous", false},
		{"expired token: 401", "GET", "/api/v1/portfolios/portfolio/", sign("user_a", time.Now().Add(-time.Hour)), 401, "token.invalid", false},
		{"token for another audience: 401", "GET", "/api/v1/portfolios/portfolio/", signFor("billing", "user_a", time.Now().Add(time.Hour)), 401, "token.invalid", false},
		{"forged token: 401", "GET", "/api/v1/portfolios/portfolio/", valid[:len(valid)-4] + "AAAA", 401, "token.invalid", false},
		{"unknown route: 403", "GET", "/no/such/route", valid, 403, "route.unknown", false},
		{"admin may delete", "DELETE", "/api/v1/portfolios/portfolio/7/", sign("admin", time.Now().Add(time.Hour)), 200, "iam.admin", true},
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
			if tt.wantReason != "token.invalid" && id == "" {
				t.Error("no X-Verdict-Decision-Id")
			}
			reached := strings.HasPrefix(string(body), "upstream ")
			if reached != tt.wantUpstream {
				t.Fatalf("upstream reached = %v, want %v (body %q)", reached, tt.wantUpstream, body)
			}
			if reached && !strings.Contains(string(body), "decision="+id) {
				t.Errorf("the upstream did not get the decision id %s: %q", id, body)
			}
		})
	}
}
