package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/test/e2eutil"
)

// nonroot is the user of the distroless image the Dockerfile builds on.
const nonroot = 65532

// asContainerUser makes cmd run as the container's user, nonroot, when the
// tests run as root, and returns the uid verdict will run as. The binary is
// copied to a directory that user may enter.
func asContainerUser(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	if os.Geteuid() != 0 {
		return os.Getuid()
	}
	dir := openDir(t)
	bin := filepath.Join(dir, "verdict")
	src, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd.Path = bin
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nonroot, Gid: nonroot}}
	return nonroot
}

// openDir is a temporary directory every user may enter and read.
func openDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "verdict-container-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The image's default --state-dir /state failed with "mkdir
// /state/services: permission denied" when /state was a volume owned by
// root and verdict ran as nonroot. On such a directory verdict now stops at
// once naming the directory, its user and the fix; on a directory owned by
// its user (what the Dockerfile now creates) it starts.
func TestStateDirOfAnotherUser(t *testing.T) {
	t.Run("a directory the user cannot write: a clear error", func(t *testing.T) {
		state := filepath.Join(openDir(t), "state")
		if err := os.Mkdir(state, 0o755); err != nil {
			t.Fatal(err)
		}
		if os.Geteuid() != 0 {
			// Not root: the tests' own user stands for nonroot.
			if err := os.Chmod(state, 0o555); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, "run", "--addr", "127.0.0.1:0", "--state-dir", state)
		uid := asContainerUser(t, cmd)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("verdict run on a state directory it cannot write: %v, want exit 1\n%s", err, out)
		}
		id := strconv.Itoa(uid)
		for _, want := range []string{
			"--state-dir " + state + ": verdict runs as uid " + id,
			"cannot write there",
			"permission denied",
			"chown " + id + ":",
			"securityContext.fsGroup",
		} {
			if !strings.Contains(string(out), want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("a directory owned by the user: it starts", func(t *testing.T) {
		state := filepath.Join(openDir(t), "state")
		if err := os.Mkdir(state, 0o700); err != nil {
			t.Fatal(err)
		}
		addr, err := e2eutil.FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(binary, "run", "--addr", addr, "--state-dir", state)
		if uid := asContainerUser(t, cmd); uid == nonroot {
			if err := os.Chown(state, nonroot, nonroot); err != nil {
				t.Fatal(err)
			}
		}
		s, err := e2eutil.StartCmd(cmd, addr)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Stop()
		if err := s.Wait("/health/ready", 15*time.Second); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(state, "services")); err != nil {
			t.Errorf("the state directory was not set up: %v", err)
		}
	})
}

// The image's HEALTHCHECK runs `verdict healthcheck` with no address: it
// probes VERDICT_ADDR, the address `verdict run` serves on without --addr,
// so a container serving elsewhere than 127.0.0.1:8181 is still healthy.
func TestHealthcheckFollowsVERDICT_ADDR(t *testing.T) {
	addr, err := e2eutil.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(addr, ":")
	env := append(os.Environ(), "VERDICT_ADDR=0.0.0.0:"+port)
	cmd := exec.Command(binary, "run")
	cmd.Env = env
	s, err := e2eutil.StartCmd(cmd, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if err := s.Wait("/health/ready", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	healthcheck := func(env []string, args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(binary, append([]string{"healthcheck"}, args...)...)
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return 0, out.String()
		case errors.As(err, &exit):
			return exit.ExitCode(), out.String()
		}
		t.Fatal(err)
		return 0, ""
	}
	if code, out := healthcheck(env); code != 0 || strings.TrimSpace(out) != "ok" {
		t.Errorf("healthcheck with VERDICT_ADDR=0.0.0.0:%s: exit %d %q, want 0 ok", port, code, out)
	}
	// A URL without a path probes /health/ready (it was a 404).
	if code, out := healthcheck(os.Environ(), "--url", "http://"+addr); code != 0 {
		t.Errorf("healthcheck --url http://%s: exit %d %q, want 0", addr, code, out)
	}
	// Nothing serves on the default address in this test.
	other, err := e2eutil.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	if code, out := healthcheck(append(os.Environ(), "VERDICT_ADDR="+other)); code != 1 || !strings.Contains(out, other+"/health/ready") {
		t.Errorf("healthcheck of an address nothing serves on: exit %d %q, want 1 naming the URL", code, out)
	}
}
