package loader

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/internal/testfiles"
	"github.com/verdict-authz/verdict/test/e2eutil"
)

// A rejected bundle is logged with what keeps serving: "the last good
// version keeps serving" was logged too for a bundle that failed at start,
// which has none.
func TestRejectedChangeLogSaysWhatServes(t *testing.T) {
	var logs e2eutil.SyncBuffer // the pipeline logs from its own goroutine
	log := slog.New(slog.NewTextHandler(&logs, nil))
	l, err := New(decision.NewEngine(log), log)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := t.Context()
	dir := t.TempDir()
	src := Source{Name: "a", Location: dir}
	rejected := func() string {
		t.Helper()
		flush(t, l)
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "change rejected") {
				logs.Reset()
				_, msg, _ := strings.Cut(line, "msg=")
				return msg
			}
		}
		t.Fatalf("no rejection logged:\n%s", logs.String())
		return ""
	}

	testfiles.Write(t, dir, map[string]string{"verdict/tenants/ta/data.yaml": "name: [ta\n"})
	if _, err := l.LoadAll(ctx, []Source{src}); err == nil {
		t.Fatal("a broken bundle loaded")
	}
	if msg := rejected(); !strings.Contains(msg, "no good version to serve") {
		t.Errorf("at start: %s", msg)
	}

	testfiles.Write(t, dir, tenantBundle("ta", "a1", "  alice: {}\n"))
	if _, err := l.LoadAll(ctx, []Source{src}); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	for _, broken := range []string{"name: [ta\n", "name: ta\nmembers: {alice: {roles: [nope]}}\n"} { // read, then validation
		testfiles.Write(t, dir, map[string]string{"verdict/tenants/ta/data.yaml": broken})
		if err := l.Reload(ctx, src); err == nil {
			t.Fatal("a broken version was accepted")
		}
		if msg := rejected(); !strings.Contains(msg, "the last good version keeps serving") {
			t.Errorf("a served bundle's bad version %q: %s", broken, msg)
		}
	}
}
