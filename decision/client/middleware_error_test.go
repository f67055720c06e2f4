package client_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/decision/client"
)

// When verdict cannot be asked, the middleware's 503 showed the end user
// the client's error, with verdict's internal address
// ("Post \"http://127.0.0.1:8181/v1/decide\": dial tcp …"). The address
// now goes to the log only.
func TestMiddlewareKeepsVerdictsAddressInTheLog(t *testing.T) {
	addr := freeAddr(t)
	var logs bytes.Buffer
	app := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { t.Error("the request was served") })
	h := client.Middleware(app, client.MiddlewareOptions{Client: client.New("http://" + addr), Tenant: "bank",
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/portfolios/portfolio/", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"code":"authorization_unavailable"`) {
		t.Fatalf("verdict down: %d %s", rec.Code, rec.Body)
	}
	if strings.Contains(rec.Body.String(), addr) || strings.Contains(rec.Body.String(), "dial") {
		t.Errorf("the end user sees verdict's address: %s", rec.Body)
	}
	if !strings.Contains(logs.String(), addr) || !strings.Contains(logs.String(), "path=/api/v1/portfolios/portfolio/") {
		t.Errorf("the log lacks the error with verdict's address and the request:\n%s", logs.String())
	}
}
