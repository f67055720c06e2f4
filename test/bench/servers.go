package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// target is one server under test.
type target struct {
	Name string
	// Kind is verdict, opa or trivial: it decides the request format.
	Kind string
	// args builds the command line for a listen address.
	args      func(addr string) []string
	bin       string
	readyPath string
	// decidePath is where decisions are asked.
	decidePath string
	// cpus, when set, is the taskset -c list the server runs on, and
	// procs its GOMAXPROCS.
	cpus  string
	procs int
}

// server is a running target.
type server struct {
	t        *target
	addr     string
	cmd      *exec.Cmd
	pid      int
	loadTime time.Duration
	exited   chan struct{}
	logPath  string
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// start runs the target and waits until it answers its readiness check;
// the load time is from the process start to the first ready answer.
func start(ctx context.Context, t *target, logDir string, readyTimeout time.Duration) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(logDir, t.Name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := t.args(addr)
	cmd := exec.Command(t.bin, args...)
	if t.cpus != "" {
		// taskset execs the server: the pid stays the server's.
		cmd = exec.Command("taskset", append([]string{"-c", t.cpus, t.bin}, args...)...)
		cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(t.procs))
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// The server dies with the harness, whatever happens to the harness.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", t.Name, err)
	}
	s := &server{t: t, addr: addr, cmd: cmd, pid: cmd.Process.Pid, exited: make(chan struct{}), logPath: logPath}
	go func() { cmd.Wait(); logf.Close(); close(s.exited) }()

	client := &http.Client{Timeout: 2 * time.Second}
	deadline := began.Add(readyTimeout)
	for n := 0; ; n++ {
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("%s was not ready after %s (log: %s)", t.Name, readyTimeout, logPath)
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("%s exited before it was ready: %s (log: %s)", t.Name, cmd.ProcessState, logPath)
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		default:
		}
		resp, err := client.Get("http://" + addr + t.readyPath)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.loadTime = time.Since(began)
				return s, nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stop asks the server to end (SIGTERM), then kills it after 10 s.
func (s *server) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// runCmd runs a tool to completion with a time limit, returning its
// combined output.
func runCmd(ctx context.Context, timeout time.Duration, dir string, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// buildVerdict builds ./cmd/verdict from the module at src.
func buildVerdict(ctx context.Context, src, out string) error {
	_, err := runCmd(ctx, 10*time.Minute, src, nil, "go", "build", "-o", out, "./cmd/verdict")
	return err
}

const opaVersion = "1.22.2"

// findOPA returns an opa binary of the wanted version: the given path, one
// on PATH, one in gobin, or a fresh `go install` into gobin (minutes).
func findOPA(ctx context.Context, given, gobin string) (string, error) {
	check := func(bin string) bool {
		out, err := runCmd(ctx, 30*time.Second, "", nil, bin, "version")
		return err == nil && strings.Contains(out, "Version: "+opaVersion)
	}
	if given != "" {
		if !check(given) {
			return "", fmt.Errorf("-opa-bin %s is not OPA %s", given, opaVersion)
		}
		return given, nil
	}
	if p, err := exec.LookPath("opa"); err == nil && check(p) {
		return p, nil
	}
	if gobin == "" {
		out, err := runCmd(ctx, time.Minute, "", nil, "go", "env", "GOPATH")
		if err != nil {
			return "", err
		}
		gobin = filepath.Join(strings.TrimSpace(strings.Split(out, string(os.PathListSeparator))[0]), "bin")
	}
	bin := filepath.Join(gobin, "opa")
	if check(bin) {
		return bin, nil
	}
	fmt.Fprintf(os.Stderr, "installing OPA %s into %s (go install; takes minutes on a small machine)\n", opaVersion, gobin)
	if _, err := runCmd(ctx, 30*time.Minute, os.TempDir(), []string{"GOBIN=" + gobin},
		"go", "install", "github.com/open-policy-agent/opa@v"+opaVersion); err != nil {
		return "", err
	}
	if !check(bin) {
		return "", errors.New("opa was installed but does not report version " + opaVersion)
	}
	return bin, nil
}

// cpuListCount counts the CPUs of a taskset -c list ("0", "0-1", "0,2-3").
func cpuListCount(list string) (int, error) {
	n := 0
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := strconv.Atoi(lo)
		if err != nil || first < 0 {
			return 0, fmt.Errorf("%q is not a CPU number", lo)
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(hi); err != nil || last < first {
				return 0, fmt.Errorf("%q is not a CPU range", part)
			}
		}
		n += last - first + 1
	}
	return n, nil
}

// selfCPUs is the list of CPUs this process may run on (Linux), or "all".
func selfCPUs() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "all"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(rest)
		}
	}
	return "all"
}
