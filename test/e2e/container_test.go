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

	// The image's CMD, on a free port (the image's VERDICT_ADDR) and a
	// temporary state directory.
	var args []string
	if err := json.Unmarshal([]byte(instruction(t, lines, "CMD ")), &args); err != nil {
		t.Fatalf("CMD is not in exec form: %v", err)
	}
	addr, err := e2eutil.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "VERDICT_ADDR="+addr)
	for i, a := range args {
		if a == "/state" {
			args[i] = filepath.Join(dir, "state")
		}
	}
	server := exec.Command(bin, args...)
	server.Env = env
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
		probe[i] = strings.Replace(a, "/verdict", bin, 1)
	}
	command := func(args ...string) *exec.Cmd {
		cmd := exec.Command(probe[0], append(probe[1:len(probe):len(probe)], args...)...)
		cmd.Env = env
		return cmd
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := command().CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the HEALTHCHECK command never succeeded: %v %s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// And it fails when nothing is there.
	if err := command("--url", "http://"+addr+"/no-such-endpoint").Run(); err == nil {
		t.Error("the healthcheck succeeded against a 404")
	}
}

// stages returns the instructions after the Dockerfile's last FROM, and the
// build stage's (those after the first).
func stages(lines []string) (build, final []string) {
	var starts []int
	for i, l := range lines {
		if strings.HasPrefix(l, "FROM ") {
			starts = append(starts, i)
		}
	}
	if len(starts) < 2 {
		return nil, nil
	}
	return lines[starts[0]:starts[1]], lines[starts[len(starts)-1]:]
}

// TestContainerStateAndHealthcheck checks the image's layout without a
// Docker engine. The image ran as nonroot with VOLUME /state that nobody
// created or owned, so the default --state-dir /state failed (mkdir
// /state/services: permission denied); now the build stage makes the
// directory and the final stage copies it owned by nonroot before
// declaring the volume (a fresh volume starts as that copy). The
// HEALTHCHECK probed a fixed 127.0.0.1:8181; now it names no address and
// follows VERDICT_ADDR, which the image sets and `verdict run` serves on
// (the CMD gives no --addr the HEALTHCHECK could not see).
func TestContainerStateAndHealthcheck(t *testing.T) {
	build, final := stages(dockerfile(t))
	if final == nil {
		t.Fatal("want a build stage and a final stage")
	}
	index := func(lines []string, match func(string) bool) int {
		for i, l := range lines {
			if match(l) {
				return i
			}
		}
		return -1
	}
	copyState := index(final, func(l string) bool {
		return strings.HasPrefix(l, "COPY ") && strings.Contains(l, "--chown=65532:65532") && strings.HasSuffix(l, " /state")
	})
	volume := index(final, func(l string) bool { return strings.HasPrefix(l, "VOLUME ") && strings.Contains(l, `"/state"`) })
	switch {
	case copyState < 0:
		t.Error("the final stage does not create /state owned by nonroot (COPY --from=build --chown=65532:65532 … /state)")
	case volume < 0:
		t.Error("the final stage declares no VOLUME [\"/state\"]")
	case volume < copyState:
		t.Error("VOLUME /state comes before /state is created: a fresh volume would not get its owner")
	default:
		fields := strings.Fields(final[copyState])
		from := fields[len(fields)-2]
		if index(build, func(l string) bool {
			return strings.HasPrefix(l, "RUN ") && strings.Contains(l, "mkdir") && strings.Contains(l, from)
		}) < 0 {
			t.Errorf("the build stage does not make %s, which the final stage copies to /state", from)
		}
	}
	if index(final, func(l string) bool { return strings.HasPrefix(l, "ENV VERDICT_ADDR=") }) < 0 {
		t.Error("the final stage does not set VERDICT_ADDR, the address verdict run and verdict healthcheck share")
	}
	health := instruction(t, final, "HEALTHCHECK ")
	if !strings.Contains(health, `CMD ["/verdict", "healthcheck"]`) {
		t.Errorf("HEALTHCHECK %s: want CMD [\"/verdict\", \"healthcheck\"], with no address, to follow VERDICT_ADDR", health)
	}
	if cmd := instruction(t, final, "CMD "); strings.Contains(cmd, "--addr") || !strings.Contains(cmd, `"--state-dir", "/state"`) {
		t.Errorf("CMD %s: want --state-dir /state and no --addr (which the HEALTHCHECK does not see)", cmd)
	}
}

// TestDockerignore: the build context leaves out the repository's history
// and local build output, and keeps what the build needs. Patterns are
// root-relative globs or **/ globs, as .dockerignore writes them.
func TestDockerignore(t *testing.T) {
	raw, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(raw), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, strings.TrimPrefix(l, "/"))
		}
	}
	// ignored: a pattern matches the path or a directory above it, from the
	// root, or from any level for a **/ pattern.
	ignored := func(path string) bool {
		parts := strings.Split(path, "/")
		for _, p := range patterns {
			sub, anyLevel := strings.CutPrefix(p, "**/")
			for i := range parts {
				if i > 0 && !anyLevel {
					break
				}
				for j := i; j < len(parts); j++ {
					if m, _ := filepath.Match(sub, strings.Join(parts[i:j+1], "/")); m {
						return true
					}
				}
			}
		}
		return false
	}
	for _, path := range []string{".git/HEAD", "verdict", "cmd/verdict/verdict.test", "loader/acl/testdata/fuzz/FuzzParse/seed"} {
		if !ignored(path) {
			t.Errorf(".dockerignore sends %s to the build", path)
		}
	}
	for _, path := range []string{"go.mod", "go.sum", "cmd/verdict/main.go", "bundles/demo/verdict/data.yaml", "rego/verdict/engine.rego", "loader/acl/testdata/x.yaml"} {
		if ignored(path) {
			t.Errorf(".dockerignore leaves out %s, which the build needs", path)
		}
	}
}
