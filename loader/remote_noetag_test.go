package loader

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/internal/testfiles"
)

// A server that sends no ETag answers every poll 200 with the whole bundle.
// The same bytes again are not a change: nothing is installed or logged (a
// line "change closed without a new generation" was logged at INFO on
// every poll); new bytes are installed, and a rejected version is not
// tried again until its bytes change.
func TestRemoteWithoutETagPollsQuietly(t *testing.T) {
	var mu sync.Mutex
	body := testfiles.TarGz(t, tenantBundle("ta", "a1", "  alice: {}\n"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	publish := func(b []byte) { mu.Lock(); body = b; mu.Unlock() }

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	engine := decision.NewEngine(log)
	l, err := New(engine, log)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	r := NewRemote(l, Source{Name: "a", Location: srv.URL + "/a.tar.gz"}, RemoteOptions{Client: srv.Client()})
	poll := func() string {
		t.Helper()
		logs.Reset()
		r.Poll(ctx)
		flush(t, l)
		return logs.String()
	}
	if out := poll(); !strings.Contains(out, "change applied") {
		t.Fatalf("first poll:\n%s", out)
	}
	for i := 0; i < 3; i++ {
		if out := poll(); out != "" {
			t.Fatalf("a poll of the same bytes logged:\n%s", out)
		}
	}
	publish(testfiles.TarGz(t, tenantBundle("ta", "a2", "  alice: {}\n")))
	if out := poll(); !strings.Contains(out, "change applied") || engine.Current().Revisions["a"] != "a2" {
		t.Fatalf("new bytes were not installed:\n%s", out)
	}
	publish(testfiles.TarGz(t, map[string]string{"verdict/tenants/ta/data.yaml": "name: [ta\n"}))
	if out := poll(); !strings.Contains(out, "change rejected") {
		t.Fatalf("a bad version was not rejected:\n%s", out)
	}
	if out := poll(); out != "" {
		t.Fatalf("the same bad version was tried again:\n%s", out)
	}
}
