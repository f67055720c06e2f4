package e2e

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/test/e2eutil"
)

// dockerfile reads the repository's Dockerfile into instructions (with
// continuation lines joined).
func dockerfile(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		out = append(out, cur.String())
		cur.Reset()
	}
	return out
}

func instruction(t *testing.T, lines []string, prefix string) string {
	t.Helper()
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return strings.TrimSpace(strings.TrimPrefix(l, prefix))
		}
	}
	t.Fatalf("the Dockerfile has no %s", prefix)
	return ""
}

// TestContainerRecipe checks what can be checked of the image without a
// Docker engine: the build stage's go build yields a static binary, the
// image's CMD starts it serving, and its HEALTHCHECK command sees it ready.
func TestContainerRecipe(t *testing.T) {
	lines := dockerfile(t)
	var build string
	for _, l := range lines {
		if strings.HasPrefix(l, "RUN ") && strings.Contains(l, "go build") {
			build = strings.TrimPrefix(l, "RUN ")
		}
	}
	if build == "" {
		t.Fatal("no RUN go build in the Dockerfile")
	}
	if !strings.Contains(instruction(t, lines, "FROM gcr.io/distroless"), "nonroot") {
		t.Error("the final image is not a nonroot distroless image")
	}
	if user := instruction(t, lines, "USER "); !strings.HasPrefix(user, "nonroot") {
		t.Errorf("USER %s, want nonroot", user)
	}

	dir := t.TempDir()
	// -trimpath changes every package's build key and would rebuild all of
	// OPA (minutes on 2 cores); it does not bear on what is checked here.
	script := strings.NewReplacer("/out/verdict", filepath.Join(dir, "verdict"), "${VERSION}", "e2e",
		"./cmd/verdict", "../../cmd/verdict", "-trimpath ", "").Replace(build)
	cmd := exec.Command("sh", "-c", script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	bin := filepath.Join(dir, "verdict")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary is dynamically linked (it has an ELF interpreter)")
		}
	}
	f.Close()
	if out, err := exec.Command(bin, "version").Output(); err != nil || !strings.Contains(string(out), "verdict e2e") {
		t.Errorf("version: %v %s", err, out)
	}

	// The image's CMD, on a free port and a temporary state directory.
	var args []string
	if err := json.Unmarshal([]byte(instruction(t, lines, "CMD ")), &args); err != nil {
		t.Fatalf("CMD is not in exec form: %v", err)
	}
	addr, err := e2eutil.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range args {
		switch {
		case a == "127.0.0.1:8181":
			args[i] = addr
		case a == "/state":
			args[i] = filepath.Join(dir, "state")
		}
	}
	server := exec.Command(bin, args...)
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		server.Process.Signal(os.Interrupt)
		server.Wait()
	}()

	health := instruction(t, lines, "HEALTHCHECK ")
	m := regexp.MustCompile(`CMD (\[.*\])`).FindStringSubmatch(health)
	if m == nil {
		t.Fatalf("HEALTHCHECK %s has no exec-form CMD", health)
	}
	var probe []string
	if err := json.Unmarshal([]byte(m[1]), &probe); err != nil {
		t.Fatal(err)
	}
	for i, a := range probe {
		probe[i] = strings.Replace(strings.Replace(a, "/verdict", bin, 1), "127.0.0.1:8181", addr, 1)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := exec.Command(probe[0], probe[1:]...).CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the HEALTHCHECK command never succeeded: %v %s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// And it fails when nothing is there.
	probe[len(probe)-1] = "http://" + addr + "/no-such-endpoint"
	if err := exec.Command(probe[0], probe[1:]...).Run(); err == nil {
		t.Error("the healthcheck succeeded against a 404")
	}
}
