package e2e

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/test/e2eutil"
)

// `verdict run --config FILE` with VERDICT_ADDR set serves on the
// variable's address (the environment wins over the file), takes the rest
// of its configuration from the file (the bundle, the decision cache), and
// `verdict config print` shows the same, the DSN's password masked.
func TestRunWithConfigFileAndEnvironment(t *testing.T) {
	fileAddr, err := e2eutil.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	envAddr, err := e2eutil.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	config := filepath.Join(dir, "verdict.yaml")
	os.WriteFile(config, []byte(`# verdict run's flags, each under its own name
addr: `+fileAddr+`
bundle:
  - demo=`+demoBundle+`
decision-cache-size: 1000
decision-cache-ttl: 2s
log-format: json
`), 0o600)
	// Without GOGC in the environment, verdict run sets its own target.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOGC=") {
			env = append(env, kv)
		}
	}
	env = append(env, "VERDICT_ADDR="+envAddr, "VERDICT_CONFIG="+config)

	cmd := exec.Command(binary, "run")
	cmd.Env = env
	s, err := e2eutil.StartCmd(cmd, envAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if err := s.Wait("/health/ready", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", fileAddr, time.Second); err == nil {
		c.Close()
		t.Errorf("something serves on the file's address %s, which VERDICT_ADDR overrides", fileAddr)
	}
	srv := &server{s}
	d := srv.decide(t, `{"tenant":"bank","member":"admin","action":"finmars:Portfolio:list"}`)
	if !d.Allow || d.Revision["demo"] == "" {
		t.Errorf("decision from the file's bundle named demo: %+v", d)
	}
	log := s.Out.String()
	for _, want := range []string{`"msg":"configuration"`, `"from_env":["VERDICT_ADDR"]`, `"decision-cache-size"`, config + " from VERDICT_CONFIG", `"msg":"verdict is serving","addr":"` + envAddr,
		`"msg":"collector target","GOGC":"130","source":"default (set GOGC to change it)"`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s (the file's log-format is json):\n%s", want, log)
		}
	}
	if m := srv.do(t, "GET", "/metrics", "", nil); !bytes.Contains(m.body, []byte("verdict_decision_cache")) {
		t.Errorf("/metrics without the decision cache the file turns on")
	}

	print := exec.Command(binary, "config", "print", "--state-db", "postgres://verdict:hunter2@db/verdict")
	print.Env = env
	out, err := print.CombinedOutput()
	if err != nil {
		t.Fatalf("config print: %v\n%s", err, out)
	}
	for _, want := range []string{
		"addr: " + envAddr + " # env VERDICT_ADDR\n",
		"decision-cache-size: 1000 # file " + config + ":5\n",
		"state-db: postgres://verdict:***@db/verdict # flag\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("config print lacks %q:\n%s", want, out)
		}
	}
	if bytes.Contains(out, []byte("hunter2")) {
		t.Errorf("config print shows the password:\n%s", out)
	}

	// A misspelt key stops verdict run, naming the file, the line and the key.
	os.WriteFile(config, []byte("addr: "+fileAddr+"\ndecision-cache-sise: 10\n"), 0o600)
	bad := exec.Command(binary, "run", "--config", config)
	out, err = bad.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(string(out), config+`:2: decision-cache-sise: unknown key: not a flag of verdict run; did you mean "decision-cache-size"?`) {
		t.Errorf("run with an unknown key: %v\n%s", err, out)
	}
}
