package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// resolved is a run command's flags after bindRunConfig's resolution.
type resolved struct {
	flags *pflag.FlagSet
	rc    *runConfig
}

// resolveRun parses args as verdict run's flags and resolves them with env
// as the environment (and, when file is not "", a configuration file of
// that content given by --config).
func resolveRun(t *testing.T, args []string, env map[string]string, file string) (resolved, error) {
	t.Helper()
	if file != "" {
		path := filepath.Join(t.TempDir(), "verdict.yaml")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", path)
	}
	cmd := newRunCommand()
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	rc := &runConfig{}
	*rc = runConfig{}
	rc.path, _ = cmd.Flags().GetString(configFlag)
	err := rc.resolve(cmd.Flags(), func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	})
	return resolved{cmd.Flags(), rc}, err
}

// value is a flag's value as text (a list joined by "|").
func (r resolved) value(name string) string {
	f := r.flags.Lookup(name)
	if list, ok := f.Value.(pflag.SliceValue); ok {
		return strings.Join(list.GetSlice(), "|")
	}
	return f.Value.String()
}

// source is where a flag's value came from, as config print says it.
func (r resolved) source(name string) string {
	for _, s := range r.rc.settings {
		if s.Name == name {
			return s.describe()
		}
	}
	return "(no setting)"
}

func TestConfigPrecedence(t *testing.T) {
	const file = "addr: 127.0.0.1:7001\ndecision-cache-size: 10\nbundle: [a=/file/a]\n"
	for _, tt := range []struct {
		name       string
		args       []string
		env        map[string]string
		file       string
		flag       string
		want, from string
	}{
		{name: "default", flag: "addr", want: "127.0.0.1:8181", from: "default"},
		{name: "file", file: file, flag: "addr", want: "127.0.0.1:7001", from: "file "},
		{name: "env over file", file: file, env: map[string]string{"VERDICT_ADDR": "127.0.0.1:7002"}, flag: "addr", want: "127.0.0.1:7002", from: "env VERDICT_ADDR"},
		{name: "flag over env and file", file: file, args: []string{"--addr", "127.0.0.1:7003"}, env: map[string]string{"VERDICT_ADDR": "127.0.0.1:7002"}, flag: "addr", want: "127.0.0.1:7003", from: "flag"},
		{name: "env alone", env: map[string]string{"VERDICT_DECISION_CACHE_SIZE": "99"}, flag: "decision-cache-size", want: "99", from: "env VERDICT_DECISION_CACHE_SIZE"},
		{name: "an empty variable is unset", file: file, env: map[string]string{"VERDICT_ADDR": ""}, flag: "addr", want: "127.0.0.1:7001", from: "file "},
		{name: "other keys of the file stay", file: file, env: map[string]string{"VERDICT_ADDR": "127.0.0.1:7002"}, flag: "decision-cache-size", want: "10", from: "file "},
		{name: "a list from the file", file: file, flag: "bundle", want: "a=/file/a", from: "file "},
		{name: "a list from env replaces the file's", file: file, env: map[string]string{"VERDICT_BUNDLE": "b=/env/b,c=/env/c"}, flag: "bundle", want: "b=/env/b|c=/env/c", from: "env VERDICT_BUNDLE"},
		{name: "a repeated flag replaces env and file", file: file, env: map[string]string{"VERDICT_BUNDLE": "b=/env/b"}, args: []string{"--bundle", "d=/d", "--bundle", "e=/e"}, flag: "bundle", want: "d=/d|e=/e", from: "flag"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := resolveRun(t, tt.args, tt.env, tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.value(tt.flag); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.flag, got, tt.want)
			}
			if got := r.source(tt.flag); !strings.HasPrefix(got, tt.from) {
				t.Errorf("%s comes from %q, want %q…", tt.flag, got, tt.from)
			}
		})
	}
}

// VERDICT_CONFIG names the file when --config does not; --config wins.
func TestConfigFileFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	envFile, flagFile := filepath.Join(dir, "env.yaml"), filepath.Join(dir, "flag.yaml")
	os.WriteFile(envFile, []byte("addr: 127.0.0.1:7001\n"), 0o600)
	os.WriteFile(flagFile, []byte("addr: 127.0.0.1:7002\n"), 0o600)
	r, err := resolveRun(t, nil, map[string]string{EnvConfig: envFile}, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.value("addr"); got != "127.0.0.1:7001" || r.rc.describePath() != envFile+" from VERDICT_CONFIG" {
		t.Errorf("with %s: addr %q, file %q", EnvConfig, got, r.rc.describePath())
	}
	r, err = resolveRun(t, []string{"--config", flagFile}, map[string]string{EnvConfig: envFile}, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.value("addr"); got != "127.0.0.1:7002" {
		t.Errorf("--config with %s set: addr %q, want the flag's file", EnvConfig, got)
	}
}

func TestConfigTypes(t *testing.T) {
	for _, tt := range []struct {
		name, file string
		env        map[string]string
		flag, want string
	}{
		{name: "bool", file: "watch: true", flag: "watch", want: "true"},
		{name: "bool false over a true default", file: "decision-log-default-masks: false", flag: "decision-log-default-masks", want: "false"},
		{name: "bool from env", env: map[string]string{"VERDICT_WATCH": "true"}, flag: "watch", want: "true"},
		{name: "int", file: "max-concurrent-decisions: 128", flag: "max-concurrent-decisions", want: "128"},
		{name: "duration", file: "state-max-staleness: 45s", flag: "state-max-staleness", want: "45s"},
		{name: "duration in minutes", file: "poll-interval: 2m", flag: "poll-interval", want: "2m0s"},
		{name: "duration from env", env: map[string]string{"VERDICT_DECISION_CACHE_TTL": "250ms"}, flag: "decision-cache-ttl", want: "250ms"},
		{name: "string list", file: "bundle:\n  - demo=/a\n  - fin=/b\n", flag: "bundle", want: "demo=/a|fin=/b"},
		{name: "one scalar is a list of one", file: "bundle: /a", flag: "bundle", want: "/a"},
		{name: "empty list", file: "disable-processor: []", flag: "disable-processor", want: ""},
		{name: "a list item with a comma", file: `decision-log-mask: ["/input/context/a,b"]`, flag: "decision-log-mask", want: "/input/context/a,b"},
		{name: "env list with a quoted comma", env: map[string]string{"VERDICT_DECISION_LOG_MASK": `/input/x,"/input/context/a,b"`}, flag: "decision-log-mask", want: "/input/x|/input/context/a,b"},
		{name: "a number as a string", file: "addr: 8181", flag: "addr", want: "8181"},
		{name: "an empty string", file: `authz-key-header: ""`, flag: "authz-key-header", want: ""},
		{name: "an anchor and alias", file: "authz-tenant: &t bank\nauthz-member-claim: *t\n", flag: "authz-member-claim", want: "bank"},
		{name: "only comments", file: "# nothing yet\n", flag: "addr", want: "127.0.0.1:8181"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := tt.file
			if file == "" {
				file = "# none\n"
			}
			r, err := resolveRun(t, nil, tt.env, file)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.value(tt.flag); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.flag, got, tt.want)
			}
		})
	}
}

// Every problem of the file is an error naming the file, the line and the
// key; none is ignored.
func TestConfigFileErrors(t *testing.T) {
	for _, tt := range []struct {
		name, file string
		env        map[string]string
		want       []string
	}{
		{name: "unknown key", file: "addr: 127.0.0.1:1\n\nadr: x\n", want: []string{"verdict.yaml:3: adr: unknown key", `did you mean "addr"?`}},
		{name: "underscores", file: "decision_cache_size: 5\n", want: []string{"verdict.yaml:1: decision_cache_size: unknown key", `did you mean "decision-cache-size"?`}},
		{name: "unrelated key", file: "x: 1\nfoo: 2\n", want: []string{"verdict.yaml:1: x: unknown key", "verdict.yaml:2: foo: unknown key"}},
		{name: "nested key", file: "authz:\n  tenant: bank\n", want: []string{"verdict.yaml:1: authz: unknown key"}},
		{name: "twice", file: "addr: a:1\nwatch: true\naddr: b:2\n", want: []string{"verdict.yaml:3: addr: given twice (first on line 1)"}},
		{name: "config in config", file: "config: other.yaml\n", want: []string{"verdict.yaml:1: config: a configuration file cannot name another one"}},
		{name: "not an int", file: "watch: true\ndecision-cache-size: lots\n", want: []string{"verdict.yaml:2: decision-cache-size:", "invalid syntax"}},
		{name: "not a duration", file: "state-max-staleness: 30\n", want: []string{"verdict.yaml:1: state-max-staleness:", "missing unit"}},
		{name: "not a bool", file: "watch: yes please\n", want: []string{"verdict.yaml:1: watch:"}},
		{name: "a list for one value", file: "addr: [a:1, b:2]\n", want: []string{"verdict.yaml:1: addr: takes one string, not a list"}},
		{name: "a mapping for a list", file: "bundle: {demo: /a}\n", want: []string{"verdict.yaml:1: bundle: takes a list of values"}},
		{name: "a list of lists", file: "bundle:\n  - [a]\n", want: []string{"verdict.yaml:1: bundle: line 2: list items are single values"}},
		{name: "null", file: "addr:\n", want: []string{`verdict.yaml:1: addr: has no value (write "" for an empty one)`}},
		{name: "not a mapping", file: "- addr\n", want: []string{"verdict.yaml:1: want a mapping of flag names to values"}},
		{name: "two documents", file: "addr: a:1\n---\nwatch: true\n", want: []string{"verdict.yaml:2: a second YAML document"}},
		{name: "bad YAML", file: "addr: [\n", want: []string{"verdict.yaml: yaml:"}},
		{name: "bad env value", env: map[string]string{"VERDICT_DECISION_CACHE_SIZE": "lots"}, file: "# none\n", want: []string{"VERDICT_DECISION_CACHE_SIZE: ", "invalid syntax"}},
		{name: "bad env list", env: map[string]string{"VERDICT_BUNDLE": `"a,b`}, file: "# none\n", want: []string{"VERDICT_BUNDLE: want comma-separated values"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := resolveRun(t, nil, tt.env, tt.file)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	// A missing file is an error, not an empty configuration.
	cmd := newRunCommand()
	cmd.ParseFlags([]string{"--config", filepath.Join(t.TempDir(), "missing.yaml")})
	rc := &runConfig{}
	rc.path, _ = cmd.Flags().GetString(configFlag)
	if err := rc.resolve(cmd.Flags(), func(string) (string, bool) { return "", false }); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
}

// sampleValue is a valid value for a flag of this type other than def, its
// default, as text a variable or the file gives and as Value.String() then
// reads (lists: items joined by "|"). A flag of a new type fails the test
// until it has a sample here, and a sample is applied only through
// flag.Value.Set or pflag.SliceValue, as resolve does it.
func sampleValue(t *testing.T, f *pflag.Flag) (env, want string) {
	switch f.Value.Type() {
	case "string":
		return "sample-" + f.Name, "sample-" + f.Name
	case "bool":
		if f.DefValue == "true" {
			return "false", "false"
		}
		return "true", "true"
	case "int":
		return "4242", "4242"
	case "int64":
		return "4242424242", "4242424242"
	case "duration":
		return "42s", "42s"
	case "float64":
		return "0.25", "0.25"
	case "stringArray", "stringSlice":
		return "one,two", "one|two"
	}
	t.Fatalf("--%s: no sample for flag type %s; add one to sampleValue and check that resolve sets it", f.Name, f.Value.Type())
	return "", ""
}

// Every flag of verdict run has its VERDICT_<FLAG> variable and its key in
// the file: a flag added later is covered without a change here, or the
// test fails.
func TestEveryRunFlagHasAVariableAndAKey(t *testing.T) {
	n := 0
	runFlags().VisitAll(func(f *pflag.Flag) {
		n++
		env, want := sampleValue(t, f)
		name := envName(f.Name)
		if !strings.HasPrefix(name, "VERDICT_") || strings.ContainsAny(name, "-abcdefghijklmnopqrstuvwxyz") {
			t.Errorf("--%s: variable %q", f.Name, name)
		}
		r, err := resolveRun(t, nil, map[string]string{name: env}, "")
		if err != nil {
			t.Fatalf("%s=%s: %v", name, env, err)
		}
		if got := r.value(f.Name); got != want || r.source(f.Name) != "env "+name {
			t.Errorf("%s=%s: --%s = %q from %s, want %q from env", name, env, f.Name, got, r.source(f.Name), want)
		}
		yamlValue := env
		if strings.Contains(want, "|") {
			yamlValue = "[" + env + "]"
		}
		r, err = resolveRun(t, nil, nil, f.Name+": "+yamlValue+"\n")
		if err != nil {
			t.Fatalf("file %s: %s: %v", f.Name, yamlValue, err)
		}
		if got := r.value(f.Name); got != want || !strings.HasPrefix(r.source(f.Name), "file ") {
			t.Errorf("file %s: %s: --%s = %q from %s, want %q from the file", f.Name, yamlValue, f.Name, got, r.source(f.Name), want)
		}
	})
	if n < 30 {
		t.Fatalf("only %d run flags walked", n)
	}
	for _, want := range []string{"VERDICT_ADDR", "VERDICT_DECISION_CACHE_SIZE", "VERDICT_STATE_DB", "VERDICT_AUTHZ_JWKS_FILE"} {
		f := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(want, "VERDICT_"), "_", "-"))
		if runFlags().Lookup(f) == nil || envName(f) != want {
			t.Errorf("%s: no flag --%s", want, f)
		}
	}
}

func TestMaskSecrets(t *testing.T) {
	for _, tt := range []struct{ flag, value, want string }{
		{"state-db", "postgres://verdict:hunter2@db:5432/verdict?sslmode=require", "postgres://verdict:***@db:5432/verdict?sslmode=require"},
		{"state-db", "postgres://verdict@db/verdict?password=hunter2", "postgres://verdict@db/verdict?password=***"},
		{"state-db", "host=db user=verdict password=hunter2 dbname=verdict", "host=db user=verdict password=*** dbname=verdict"},
		{"state-db", "host=db password='hunter 2' dbname=verdict", "host=db password=*** dbname=verdict"},
		{"bundle", "fin=https://bundles.example.com/fin.tar.gz?token=abc&v=2", "fin=https://bundles.example.com/fin.tar.gz?token=***&v=2"},
		{"bundle", "https://ci:s3cret@bundles.example.com/fin.tar.gz", "https://ci:***@bundles.example.com/fin.tar.gz"},
		{"bundle", "https://bundles.example.com/fin.tar.gz?X-Amz-Signature=abc&X-Amz-Credential=k", "https://bundles.example.com/fin.tar.gz?X-Amz-Credential=***&X-Amz-Signature=***"},
		{"admin-token-file", "/etc/verdict/admin/token", "/etc/verdict/admin/token"},
		{"some-token", "abc", "***"},
		{"addr", "127.0.0.1:8181", "127.0.0.1:8181"},
		{"state-db", "", ""},
	} {
		if got := maskSecrets(tt.flag, tt.value); got != tt.want {
			t.Errorf("maskSecrets(%s, %q) = %q, want %q", tt.flag, tt.value, got, tt.want)
		}
	}
}

// `verdict config print` shows every run flag with its source, masks
// secrets, and its YAML reads back as a configuration file giving the same
// values.
func TestConfigPrint(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "verdict.yaml")
	os.WriteFile(file, []byte("addr: 127.0.0.1:7001\nbundle: [demo=/srv/demo]\nstate-db: postgres://verdict:hunter2@db/verdict\nwatch: true\n"), 0o600)
	t.Setenv("VERDICT_DECISION_CACHE_SIZE", "500")
	t.Setenv("VERDICT_BUNDLE_VERIFICATION_KEY", "")
	out, _, code, err := runVerdict(t, "config", "print", "--config", file, "--log-level", "debug")
	if code != 0 || err != nil {
		t.Fatalf("config print: %d, %v", code, err)
	}
	for _, want := range []string{
		"addr: 127.0.0.1:7001 # file " + file + ":1",
		"bundle: [demo=/srv/demo] # file " + file + ":2",
		"state-db: postgres://verdict:***@db/verdict # file " + file + ":3",
		"watch: true # file " + file + ":4",
		"decision-cache-size: 500 # env VERDICT_DECISION_CACHE_SIZE",
		"log-level: debug # flag",
		"poll-interval: 30s # default",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("config print lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hunter2") || strings.Contains(out, "\nformat:") || strings.Contains(out, "\nconfig:") {
		t.Errorf("config print shows the password, its own --format or --config as a key:\n%s", out)
	}
	// The output is a configuration file: read back, every flag has the
	// value printed (but the masked one).
	reread := filepath.Join(dir, "printed.yaml")
	os.WriteFile(reread, []byte(strings.ReplaceAll(out, "***", "hunter2")), 0o600)
	os.Unsetenv("VERDICT_DECISION_CACHE_SIZE")
	again, _, code, err := runVerdict(t, "config", "print", "--config", reread)
	if code != 0 || err != nil {
		t.Fatalf("config print of its own output: %d, %v", code, err)
	}
	strip := func(s string) []string {
		var lines []string
		for _, l := range strings.Split(s, "\n")[1:] {
			v, _, _ := strings.Cut(l, " # ")
			lines = append(lines, v)
		}
		return lines
	}
	if a, b := strip(out), strip(again); !slices.Equal(a, b) {
		t.Errorf("printed configuration read back differs:\n%s\n---\n%s", out, again)
	}

	// JSON: values typed, sources and origins.
	t.Setenv("VERDICT_ADDR", "127.0.0.1:7009")
	out, _, code, err = runVerdict(t, "config", "print", "--config", file, "--format", "json")
	if code != 0 || err != nil {
		t.Fatalf("config print --format json: %d, %v", code, err)
	}
	var doc struct {
		Config struct{ Path, Source string }
		Flags  map[string]struct {
			Value  any
			Source string
			Origin string
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	addr := doc.Flags["addr"]
	if doc.Config.Path != file || doc.Config.Source != "flag" || addr.Value != "127.0.0.1:7009" || addr.Source != "env" || addr.Origin != "VERDICT_ADDR" {
		t.Errorf("json: config %+v, addr %+v", doc.Config, addr)
	}
	if db := doc.Flags["state-db"]; db.Value != "postgres://verdict:***@db/verdict" || db.Origin != file+":3" {
		t.Errorf("json state-db: %+v", db)
	}
	if len(doc.Flags) != countFlags(runFlags()) {
		t.Errorf("json has %d flags, verdict run has %d", len(doc.Flags), countFlags(runFlags()))
	}
	if _, _, _, err := runVerdict(t, "config", "print", "--format", "toml"); err == nil || !strings.Contains(err.Error(), "--format") {
		t.Errorf("--format toml: %v", err)
	}
}

func countFlags(f *pflag.FlagSet) int {
	n := 0
	f.VisitAll(func(*pflag.Flag) { n++ })
	return n
}

// verdict healthcheck probes the address of the configuration file that
// verdict run serves on, unless VERDICT_ADDR or --addr says otherwise; the
// file's keys are checked against verdict run's flags.
func TestHealthcheckReadsTheConfigFile(t *testing.T) {
	ready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != readyPath {
			http.NotFound(w, r)
		}
	}))
	defer ready.Close()
	addr := strings.TrimPrefix(ready.URL, "http://")
	file := filepath.Join(t.TempDir(), "verdict.yaml")
	os.WriteFile(file, []byte("addr: "+addr+"\nbundle: [/srv/demo]\n"), 0o600)
	if out, _, code, err := runVerdict(t, "healthcheck", "--config", file); code != 0 || err != nil || strings.TrimSpace(out) != "ok" {
		t.Errorf("healthcheck --config: %q %d %v", out, code, err)
	}
	t.Setenv(EnvConfig, file)
	if out, _, code, err := runVerdict(t, "healthcheck"); code != 0 || err != nil {
		t.Errorf("healthcheck with %s: %q %d %v", EnvConfig, out, code, err)
	}
	t.Setenv("VERDICT_ADDR", "127.0.0.1:1")
	if _, _, _, err := runVerdict(t, "healthcheck"); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("VERDICT_ADDR over the file: %v", err)
	}
	os.WriteFile(file, []byte("adr: "+addr+"\n"), 0o600)
	if _, _, _, err := runVerdict(t, "healthcheck", "--addr", addr); err == nil || !strings.Contains(err.Error(), "adr: unknown key") {
		t.Errorf("healthcheck with an unknown key: %v", err)
	}
}

// The README's complete configuration file holds every flag of verdict run
// and is valid.
func TestREADMEConfigExampleIsComplete(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const start = "```yaml\n# verdict.yaml\n"
	_, example, ok := strings.Cut(string(readme), start)
	if !ok {
		t.Fatalf("README.md has no block starting %q", start)
	}
	example, _, _ = strings.Cut(example, "```")
	r, err := resolveRun(t, nil, nil, example)
	if err != nil {
		t.Fatalf("the README's configuration file: %v", err)
	}
	for _, s := range r.rc.settings {
		if s.Source != sourceFile {
			t.Errorf("the README's configuration file has no %s", s.Name)
		}
	}
}
