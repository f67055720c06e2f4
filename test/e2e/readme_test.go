package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/loader/acl"
)

// The README's commands and tables, checked against what they describe.

func readme(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile("../../" + path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fuzzCommandRE finds `go test PKG … -fuzz PATTERN` in the documentation.
var fuzzCommandRE = regexp.MustCompile(`go test (\./\S+) [^\n` + "`" + `]*?-fuzz ('[^']*'|\S+)`)

// Every documented fuzz command names exactly one fuzz target: `go test
// -fuzz` refuses a pattern that matches several ("-fuzz FuzzParse" matched
// four), so the README's command did not run. The targets are listed as
// `go test -list` lists them, and matched as -fuzz matches them.
func TestREADMEFuzzCommandsNameOneTarget(t *testing.T) {
	type command struct{ doc, pkg, pattern string }
	var commands []command
	for _, doc := range []string{"README.md", "test/FUZZING.md"} {
		for _, m := range fuzzCommandRE.FindAllStringSubmatch(readme(t, doc), -1) {
			commands = append(commands, command{doc, m[1], strings.Trim(m[2], "'")})
		}
	}
	if len(commands) == 0 {
		t.Fatal("no fuzz command found in README.md or test/FUZZING.md")
	}
	targets := map[string][]string{}
	for _, c := range commands {
		if _, ok := targets[c.pkg]; ok {
			continue
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		cmd := exec.CommandContext(ctx, "go", "test", "-list", "^Fuzz", c.pkg)
		cmd.Dir = "../.."
		out, err := cmd.Output()
		cancel()
		if err != nil {
			t.Fatalf("go test -list '^Fuzz' %s: %v\n%s", c.pkg, err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "Fuzz") {
				targets[c.pkg] = append(targets[c.pkg], line)
			}
		}
	}
	for _, c := range commands {
		re, err := regexp.Compile(c.pattern)
		if err != nil {
			t.Errorf("%s: -fuzz %q is not a regular expression: %v", c.doc, c.pattern, err)
			continue
		}
		var matched []string
		for _, name := range targets[c.pkg] {
			if re.MatchString(name) {
				matched = append(matched, name)
			}
		}
		if len(matched) != 1 {
			t.Errorf("%s: go test %s -fuzz %s matches %d fuzz targets %v, want exactly one (anchor it: '^Name$')", c.doc, c.pkg, c.pattern, len(matched), matched)
		}
	}
}

// processorRowRE is a row of the README's processor tables:
// | order | `name` | mode | what | (the runtime table has no mode column:
// its processors are all sync).
var processorRowRE = regexp.MustCompile("(?m)^\\| (\\d+) \\| `([a-z-]+)` \\| (?:(sync|async) \\| )?")

// The README's processor tables list what GET /v1/processors answers:
// every processor, with its order and mode (the table's column was "kind",
// and the async telemetry processor was missing).
func TestREADMEProcessorTables(t *testing.T) {
	type processor struct {
		Name  string `json:"name"`
		Order int    `json:"order"`
		Mode  string `json:"mode"`
	}
	var documented []processor
	for _, m := range processorRowRE.FindAllStringSubmatch(readme(t, "README.md"), -1) {
		order, _ := strconv.Atoi(m[1])
		mode := m[3]
		if mode == "" {
			mode = "sync"
		}
		documented = append(documented, processor{m[2], order, mode})
	}
	resp := demo(t).do(t, "GET", "/v1/processors", "", nil)
	var served struct{ Processors []processor }
	if err := json.Unmarshal(resp.body, &served); err != nil || resp.status != 200 {
		t.Fatalf("GET /v1/processors: %d %s", resp.status, resp.body)
	}
	key := func(p processor) string { return p.Mode + " " + strconv.Itoa(p.Order) + " " + p.Name }
	var want, got []string
	for _, p := range served.Processors {
		want = append(want, key(p))
	}
	for _, p := range documented {
		got = append(got, key(p))
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("README's processor tables:\n  %s\nGET /v1/processors:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// viewsetRowRE is a row of the README's table of the actions a viewset
// route gives: | METHOD | `on path` or — | `on {id}` or — |.
var viewsetRowRE = regexp.MustCompile("(?m)^\\| (GET|POST|PUT|PATCH|DELETE) \\| (`[a-z_]+`|—) \\| (`[a-z_]+`|—) \\|$")

// The README's table of a viewset's actions is the one routes use, and
// what it says of HEAD and OPTIONS is what the demo server answers.
func TestREADMEViewsetActions(t *testing.T) {
	var documented []acl.MethodAction
	var detail []acl.MethodAction
	for _, m := range viewsetRowRE.FindAllStringSubmatch(readme(t, "README.md"), -1) {
		if m[2] != "—" {
			documented = append(documented, acl.MethodAction{Method: m[1], Name: strings.Trim(m[2], "`")})
		}
		if m[3] != "—" {
			detail = append(detail, acl.MethodAction{Method: m[1], Name: strings.Trim(m[3], "`")})
		}
	}
	if !slices.Equal(documented, acl.CollectionActions) || !slices.Equal(detail, acl.DetailActions) {
		t.Errorf("README's viewset table: collection %v, {id} %v; routes give %v and %v", documented, detail, acl.CollectionActions, acl.DetailActions)
	}
	s := demo(t)
	ask := func(method, path string) *Decision {
		return s.decide(t, `{"tenant":"bank","member":"admin","request":{"method":"`+method+`","path":"`+path+`"}}`)
	}
	if d := ask("HEAD", "/api/v1/portfolios/portfolio/"); d.Action != "finmars:Portfolio:list" {
		t.Errorf("HEAD on a collection: action %q, want finmars:Portfolio:list", d.Action)
	}
	if d := ask("HEAD", "/api/v1/portfolios/portfolio/7/"); d.Action != "finmars:Portfolio:retrieve" {
		t.Errorf("HEAD on {id}: action %q, want finmars:Portfolio:retrieve", d.Action)
	}
	if d := ask("OPTIONS", "/api/v1/portfolios/portfolio/"); d.Allow || d.Status != 404 || !slices.Contains(d.codes(), "route.unknown") {
		t.Errorf("OPTIONS on a collection: allow %v status %d %v, want route.unknown 404", d.Allow, d.Status, d.codes())
	}
}

// A server started with `go run … &` leaves verdict running when the job
// is killed (only go is the job): the README builds the binary once and
// starts ./verdict in the background.
func TestREADMEBackgroundServersUseTheBinary(t *testing.T) {
	text := readme(t, "README.md")
	if !strings.Contains(text, "go build -o verdict ./cmd/verdict") {
		t.Error("the README does not show go build -o verdict ./cmd/verdict")
	}
	for i, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "go run ") && strings.HasSuffix(strings.TrimSpace(line), "&") {
			t.Errorf("README.md:%d starts a background server with go run: %s", i+1, line)
		}
	}
}
