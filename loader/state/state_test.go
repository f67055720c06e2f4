package state_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/loader/state"
)

func load(t *testing.T, d *state.Dir) *state.Contents {
	t.Helper()
	c, err := d.Load()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func open(t *testing.T) *state.Dir {
	t.Helper()
	d, err := state.Open(filepath.Join(t.TempDir(), "nested", "state"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var at = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func TestOpenCreatesTheLayout(t *testing.T) {
	d := open(t)
	for _, sub := range []string{state.ServicesDir, state.DelegationsDir} {
		if fi, err := os.Stat(filepath.Join(d.Path(), sub)); err != nil || !fi.IsDir() {
			t.Errorf("%s: %v", sub, err)
		}
	}
	if !filepath.IsAbs(d.Path()) {
		t.Errorf("Path() = %q, want an absolute path", d.Path())
	}
	// Opening again is fine.
	if _, err := state.Open(d.Path()); err != nil {
		t.Fatal(err)
	}
}

func TestRoundTrip(t *testing.T) {
	d := open(t)
	svc := &state.ServiceFile{Name: "requisition", RegisteredAt: at, Document: json.RawMessage(`{"routes":[]}`)}
	if err := d.PutService(svc); err != nil {
		t.Fatal(err)
	}
	del := &state.DelegationFile{
		Tenant: "fineract", Application: "rhythm", Group: "portfolio__v1__khepri",
		Request:  &state.Request{Operations: []string{"CHANGE"}, At: at},
		Consents: map[string]state.Consent{"imhotep": {Enabled: true, At: at}},
	}
	if err := d.PutDelegation(del); err != nil {
		t.Fatal(err)
	}
	// Consent alone (the request was declared in the bundle).
	if err := d.PutDelegation(&state.DelegationFile{Tenant: "fineract", Application: "rhythm", Group: "identity__v1__app_self",
		Consents: map[string]state.Consent{"imhotep": {Enabled: false, At: at}}}); err != nil {
		t.Fatal(err)
	}
	c := load(t, d)
	if len(c.Problems) != 0 {
		t.Fatalf("problems: %v", c.Problems)
	}
	if len(c.Services) != 1 || c.Services[0].Name != "requisition" || !c.Services[0].RegisteredAt.Equal(at) ||
		string(c.Services[0].Document) != `{"routes":[]}` || c.Services[0].Version != state.Version {
		t.Errorf("services = %+v", c.Services)
	}
	if len(c.Delegations) != 2 {
		t.Fatalf("delegations = %+v", c.Delegations)
	}
	// Sorted by key: identity__v1__app_self before portfolio__v1__khepri.
	if g := c.Delegations[0]; g.Group != "identity__v1__app_self" || g.Request != nil || g.Consents["imhotep"].Enabled {
		t.Errorf("first delegation = %+v", g)
	}
	if g := c.Delegations[1]; g.Group != "portfolio__v1__khepri" || g.Request == nil || g.Request.Operations[0] != "CHANGE" ||
		!g.Consents["imhotep"].Enabled {
		t.Errorf("second delegation = %+v", g)
	}
}

func TestPutReplacesAndLeavesNoTemporaryFile(t *testing.T) {
	d := open(t)
	for i := 0; i < 3; i++ {
		doc := json.RawMessage(`{"routes":[],"n":` + string(rune('0'+i)) + `}`)
		if err := d.PutService(&state.ServiceFile{Name: "s", RegisteredAt: at, Document: doc}); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(d.Path(), state.ServicesDir))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "s.json" {
		t.Fatalf("files: %v", entries)
	}
	if c := load(t, d); len(c.Services) != 1 || !strings.Contains(string(c.Services[0].Document), `"n":2`) {
		t.Fatalf("loaded %+v", c.Services)
	}
}

func TestCorruptFilesAreReportedAndIgnored(t *testing.T) {
	d := open(t)
	if err := d.PutService(&state.ServiceFile{Name: "good", RegisteredAt: at, Document: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	write := func(sub, name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(d.Path(), sub, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(state.ServicesDir, "truncated.json", `{"version":1,"name":"trunc`)
	write(state.ServicesDir, "future.json", `{"version":2,"name":"future","registered_at":"2026-01-01T00:00:00Z","document":{}}`)
	write(state.ServicesDir, "array.json", `{"version":1,"name":"array","registered_at":"2026-01-01T00:00:00Z","document":[1]}`)
	write(state.ServicesDir, "extra.json", `{"version":1,"name":"x","document":{},"surprise":true}`)
	write(state.DelegationsDir, "empty.json", ``)
	write(state.DelegationsDir, "nothing.json", `{"version":1,"tenant":"t","application":"a","group":"g"}`)
	write(state.DelegationsDir, "noops.json", `{"version":1,"tenant":"t","application":"a","group":"g","request":{"operations":[],"at":"2026-01-01T00:00:00Z"}}`)
	// A temporary file of an interrupted write is removed, not reported.
	write(state.ServicesDir, ".good.json.tmp123", `{"half`)
	// Files that are not *.json are left alone.
	write(state.ServicesDir, "README", `notes`)

	c := load(t, d)
	if len(c.Services) != 1 || c.Services[0].Name != "good" {
		t.Errorf("services = %+v", c.Services)
	}
	if len(c.Delegations) != 0 {
		t.Errorf("delegations = %+v", c.Delegations)
	}
	bad := map[string]string{}
	for _, p := range c.Problems {
		bad[filepath.Base(p.File)] = p.Message
	}
	for _, name := range []string{"truncated.json", "future.json", "array.json", "extra.json", "empty.json", "nothing.json", "noops.json"} {
		if bad[name] == "" {
			t.Errorf("%s is not reported; problems: %v", name, c.Problems)
		}
	}
	if !strings.Contains(bad["future.json"], "version 2") {
		t.Errorf("future.json: %q", bad["future.json"])
	}
	if len(c.Problems) != 7 {
		t.Errorf("%d problems, want 7: %v", len(c.Problems), c.Problems)
	}
	if _, err := os.Stat(filepath.Join(d.Path(), state.ServicesDir, ".good.json.tmp123")); !os.IsNotExist(err) {
		t.Errorf("the leftover temporary file is still there (%v)", err)
	}
}

func TestFileNamesKeepKeysApart(t *testing.T) {
	d := open(t)
	// Names that would collide or escape the directory if used raw.
	keys := [][3]string{
		{"a,b", "c", "d"},
		{"a", "b,c", "d"},
		{"a/b", "c", "d"},
		{"..", "..", ".."},
		{strings.Repeat("x", 128), strings.Repeat("y", 128), "z"},
		{strings.Repeat("x", 128), strings.Repeat("y", 128), "w"},
	}
	for _, k := range keys {
		if err := d.PutDelegation(&state.DelegationFile{Tenant: k[0], Application: k[1], Group: k[2],
			Request: &state.Request{Operations: []string{"READ"}, At: at}}); err != nil {
			t.Fatalf("%v: %v", k, err)
		}
		p := d.DelegationPath(k[0], k[1], k[2])
		if filepath.Dir(p) != filepath.Join(d.Path(), state.DelegationsDir) || len(filepath.Base(p)) > 255 {
			t.Errorf("%v is written to %s", k, p)
		}
	}
	for _, name := range []string{"..", ".", "a/b", "a,b"} {
		if err := d.PutService(&state.ServiceFile{Name: name, RegisteredAt: at, Document: json.RawMessage(`{}`)}); err != nil {
			t.Fatalf("service %q: %v", name, err)
		}
	}
	c := load(t, d)
	if len(c.Problems) != 0 {
		t.Fatalf("problems: %v", c.Problems)
	}
	if len(c.Delegations) != len(keys) || len(c.Services) != 4 {
		t.Fatalf("loaded %d delegations and %d services", len(c.Delegations), len(c.Services))
	}
	got := map[[3]string]bool{}
	for _, f := range c.Delegations {
		got[[3]string{f.Tenant, f.Application, f.Group}] = true
	}
	for _, k := range keys {
		if !got[k] {
			t.Errorf("%v was not loaded back", k)
		}
	}
}

func TestConcurrentWritersOfDifferentEntries(t *testing.T) {
	d := open(t)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			name := "svc" + string(rune('a'+i%26)) + string(rune('a'+i/26))
			errs <- d.PutService(&state.ServiceFile{Name: name, RegisteredAt: at, Document: json.RawMessage(`{}`)})
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if c := load(t, d); len(c.Services) != 50 || len(c.Problems) != 0 {
		t.Fatalf("loaded %d services, problems %v", len(c.Services), c.Problems)
	}
}

func TestWriteFileAtomicFailsCleanly(t *testing.T) {
	dir := t.TempDir()
	// The target is a directory: the rename fails and no temporary file
	// is left behind.
	target := filepath.Join(dir, "taken")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := state.WriteFileAtomic(target, []byte("data")); err == nil {
		t.Fatal("writing over a non-empty directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("files left: %v", entries)
	}
	if err := state.WriteFileAtomic(filepath.Join(dir, "missing", "f"), []byte("x")); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
}

func TestPutRejectsIncompleteKeys(t *testing.T) {
	d := open(t)
	if err := d.PutService(&state.ServiceFile{}); err == nil {
		t.Error("a service without a name was written")
	}
	if err := d.PutDelegation(&state.DelegationFile{Tenant: "t", Group: "g"}); err == nil {
		t.Error("a delegation without an application was written")
	}
}
