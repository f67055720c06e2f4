package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// decideAs makes one decision whose context carries marker, so that its
// line can be found in the decision log.
func decideAs(t *testing.T, s *server, marker string) {
	t.Helper()
	body := fmt.Sprintf(`{"tenant":"bank","member":"user_a","action":"finmars:Portfolio:list","context":{"marker":%q}}`, marker)
	if r := s.post(t, "/v1/decide", body); r.status != http.StatusOK {
		t.Fatalf("decide: %d %s", r.status, r.body)
	}
}

// waitFor waits (at most 10 s) until read returns something holding text,
// and returns it.
func waitFor(t *testing.T, what string, read func() string, text string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := read()
		if strings.Contains(got, text) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has no %q after 10 s:\n%s", what, text, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitForLine waits until the file holds a line with text.
func waitForLine(t *testing.T, path, text string) string {
	t.Helper()
	return waitFor(t, path, func() string { data, _ := os.ReadFile(path); return string(data) }, text)
}

// logrotate's convention: it renames the decision log and sends SIGHUP;
// verdict keeps serving, writes the lines of decisions made before the
// signal to the renamed file and the later ones to a new file under the
// name it was given.
func TestSIGHUPReopensTheDecisionLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.log")
	s := startServer(t, "--bundle", demoBundle, "--decision-log", path)
	decideAs(t, s, "before-rotation")
	waitForLine(t, path, "before-rotation")

	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	decideAs(t, s, "between-rename-and-signal")
	if err := s.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "verdict's log", s.Out.String, "decision log reopened")
	decideAs(t, s, "after-rotation")
	fresh := waitForLine(t, path, "after-rotation")
	if strings.Contains(fresh, "before-rotation") || strings.Contains(fresh, "between-rename-and-signal") {
		t.Errorf("the new file holds lines from before the signal:\n%s", fresh)
	}
	old, err := os.ReadFile(path + ".1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"before-rotation", "between-rename-and-signal"} {
		if !strings.Contains(string(old), want) {
			t.Errorf("the rotated file lacks %q:\n%s", want, old)
		}
	}
	if strings.Contains(string(old), "after-rotation") {
		t.Errorf("a line after the signal went to the rotated file")
	}
	select {
	case <-s.Done:
		t.Fatalf("verdict exited on SIGHUP (%v):\n%s", s.WaitErr, s.Out.String())
	default:
	}
	if r := s.do(t, http.MethodGet, "/health/ready", "", nil); r.status != http.StatusOK {
		t.Errorf("/health/ready after SIGHUP: %d", r.status)
	}
}

// A --decision-log-mask adds to the default masks, which also hide secrets
// in the context; the effective masks are logged at start, and
// --decision-log-default-masks=false keeps only the ones given.
func TestDecisionLogMasksKeepTheDefaults(t *testing.T) {
	const body = `{"tenant":"bank","member":"user_a","action":"finmars:Portfolio:list",` +
		`"context":{"marker":"m","Authorization":"Bearer s3cret","headers":{"X-Api-Key":"k-123"},"ip":"10.0.0.1"}}`
	for _, tt := range []struct {
		name       string
		args       []string
		wantMasks  string
		secretsOut bool
	}{
		{"defaults and the mask given", nil, `masks="/input/key, /input/member, /input/context: values under secret names and bearer tokens"`, false},
		{"only the mask given", []string{"--decision-log-default-masks=false"}, `masks=/input/member`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "decisions.log")
			s := startServer(t, append([]string{"--bundle", demoBundle, "--decision-log", path, "--decision-log-mask", "/input/member"}, tt.args...)...)
			if !strings.Contains(s.Out.String(), tt.wantMasks) {
				t.Errorf("the start-up log does not say %s:\n%s", tt.wantMasks, s.Out.String())
			}
			if r := s.post(t, "/v1/decide", body); r.status != http.StatusOK {
				t.Fatalf("decide: %d %s", r.status, r.body)
			}
			line := waitForLine(t, path, `"marker":"m"`)
			if !strings.Contains(line, `"member":"***"`) || !strings.Contains(line, `"ip":"10.0.0.1"`) {
				t.Errorf("line: %s", line)
			}
			for _, secret := range []string{"s3cret", "k-123"} {
				if strings.Contains(line, secret) != tt.secretsOut {
					t.Errorf("secret %q in the line: %v, want %v:\n%s", secret, !tt.secretsOut, tt.secretsOut, line)
				}
			}
		})
	}
}
