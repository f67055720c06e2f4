package state_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/internal/testfiles"
	"github.com/verdict-authz/verdict/loader/state"
)

// legacyFileName is the file name verdict gave an entry before names were
// made collision-free: url.PathEscape of each part joined with ",", or
// "sha256-" and the SHA-256 of the parts joined with NUL when that was
// longer than 200 bytes (or empty, "." or "..").
func legacyFileName(parts ...string) string {
	esc := make([]string, len(parts))
	for i, p := range parts {
		esc[i] = url.PathEscape(p)
	}
	name := strings.Join(esc, ",")
	if len(name) > 200 || name == "" || name == "." || name == ".." {
		sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
		name = "sha256-" + hex.EncodeToString(sum[:])
	}
	return name + ".json"
}

// Every service name gets a file of its own: a name too long to spell out,
// and the name that is spelled like the long name's hashed file name (under
// the earlier naming and under this one), a name that looks like a
// temporary file, and names that would escape or hide in the directory.
func TestEveryNameHasItsOwnFile(t *testing.T) {
	long := strings.Repeat("x", 201)
	sum := sha256.Sum256([]byte(long))
	names := []string{
		long,
		"sha256-" + hex.EncodeToString(sum[:]),
		"+sha256-" + hex.EncodeToString(sum[:]),
		".a.json.tmp1",
		".", "..", "a/b", "a,b", "x@y", "%41", "A", "é", "a b",
	}
	d := open(t)
	for i, name := range names {
		doc := json.RawMessage(`{"i":"` + string(rune('a'+i)) + `"}`)
		if err := d.PutService(&state.ServiceFile{Name: name, RegisteredAt: at, Document: doc}); err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		base := filepath.Base(d.ServicePath(name))
		if strings.HasPrefix(base, ".") || strings.ContainsAny(base, "/\x00") || len(base) > 255 ||
			filepath.Dir(d.ServicePath(name)) != filepath.Join(d.Path(), state.ServicesDir) {
			t.Errorf("%q is written to %s", name, d.ServicePath(name))
		}
	}
	c := load(t, d)
	if len(c.Problems) != 0 || len(c.Renamed) != 0 {
		t.Fatalf("problems %v, renamed %v", c.Problems, c.Renamed)
	}
	got := map[string]string{}
	for _, s := range c.Services {
		got[s.Name] = string(s.Document)
	}
	for i, name := range names {
		if want := `{"i":"` + string(rune('a'+i)) + `"}`; got[name] != want {
			t.Errorf("service %q loaded back as %q, want %q", name, got[name], want)
		}
	}
	if len(c.Services) != len(names) {
		t.Errorf("%d services loaded, want %d", len(c.Services), len(names))
	}
}

// A state directory written by an earlier verdict is read whole, and its
// files are renamed to the names this verdict writes, so that a later
// change replaces the entry instead of adding a second file for it.
func TestLoadRenamesFilesOfEarlierNames(t *testing.T) {
	long := strings.Repeat("y", 300)
	services := []string{"plain", "x@y", "(paren)", "a=b", long}
	delegations := [][3]string{{"t", "a", "g"}, {"t:1", "a+b", "g=c"}, {strings.Repeat("t", 128), strings.Repeat("a", 128), "g"}}
	d := open(t)
	files := map[string]string{}
	for _, name := range services {
		data, _ := json.Marshal(map[string]any{"version": 1, "name": name, "registered_at": at, "document": map[string]any{"old": true}})
		files[filepath.Join(state.ServicesDir, legacyFileName(name))] = string(data)
	}
	for _, k := range delegations {
		data, _ := json.Marshal(map[string]any{"version": 1, "tenant": k[0], "application": k[1], "group": k[2],
			"consents": map[string]any{"m": map[string]any{"enabled": false, "at": at}}})
		files[filepath.Join(state.DelegationsDir, legacyFileName(k[0], k[1], k[2]))] = string(data)
	}
	testfiles.Write(t, d.Path(), files)

	// Read (verdict check) reads them where they are and renames nothing.
	before := testfiles.Tree(t, d.Path())
	read, err := state.Read(d.Path())
	if err != nil {
		t.Fatal(err)
	}
	if len(read.Services) != len(services) || len(read.Delegations) != len(delegations) || len(read.Problems) != 0 || len(read.Renamed) != 0 {
		t.Fatalf("Read = %+v", read)
	}
	if after := testfiles.Tree(t, d.Path()); !reflect.DeepEqual(before, after) {
		t.Fatalf("Read changed the directory")
	}

	c := load(t, d)
	if len(c.Services) != len(services) || len(c.Delegations) != len(delegations) || len(c.Problems) != 0 {
		t.Fatalf("Load = %+v", c)
	}
	// Most names are spelled the same by both namings ("plain", {t, a, g}).
	renames := 0
	for _, name := range services {
		if legacyFileName(name) != filepath.Base(d.ServicePath(name)) {
			renames++
		}
	}
	for _, k := range delegations {
		if legacyFileName(k[0], k[1], k[2]) != filepath.Base(d.DelegationPath(k[0], k[1], k[2])) {
			renames++
		}
	}
	if len(c.Renamed) != renames || renames != 5 {
		t.Errorf("renamed %v", c.Renamed)
	}
	for _, s := range c.Services {
		if s.Path != d.ServicePath(s.Name) {
			t.Errorf("service %q is at %s, want %s", s.Name, s.Path, d.ServicePath(s.Name))
		}
	}
	for _, f := range c.Delegations {
		if f.Path != d.DelegationPath(f.Tenant, f.Application, f.Group) {
			t.Errorf("delegation %s/%s/%s is at %s", f.Tenant, f.Application, f.Group, f.Path)
		}
	}
	// A change now replaces the entry's one file.
	for _, name := range services {
		if err := d.PutService(&state.ServiceFile{Name: name, RegisteredAt: at, Document: json.RawMessage(`{"new":true}`)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range delegations {
		if err := d.PutDelegation(&state.DelegationFile{Tenant: k[0], Application: k[1], Group: k[2],
			Consents: map[string]state.Consent{"m": {Enabled: true, At: at}}}); err != nil {
			t.Fatal(err)
		}
	}
	c = load(t, d)
	if len(c.Services) != len(services) || len(c.Delegations) != len(delegations) || len(c.Problems) != 0 || len(c.Renamed) != 0 {
		t.Fatalf("after the changes: %+v", c)
	}
	for _, s := range c.Services {
		if string(s.Document) != `{"new":true}` {
			t.Errorf("service %q = %s", s.Name, s.Document)
		}
	}
	for _, f := range c.Delegations {
		if !f.Consents["m"].Enabled {
			t.Errorf("delegation %s/%s/%s kept the old consent", f.Tenant, f.Application, f.Group)
		}
	}
}

// Two files holding the same entry are reported (nothing tells which is
// right); the file under the entry's own name is kept. A file is never
// renamed over one that cannot be read.
func TestTwoFilesForOneEntryAreReported(t *testing.T) {
	svc := func(name string) string {
		return `{"version":1,"name":"` + name + `","registered_at":"2026-01-01T00:00:00Z","document":{}}`
	}
	tests := []struct {
		name    string
		files   map[string]string
		want    []string // the services loaded
		reports []string // the files reported
	}{
		{"a copy beside the entry's file",
			map[string]string{"s.json": svc("s"), "copy.json": svc("s")}, []string{"s"}, []string{"copy.json"}},
		{"two copies, neither under the entry's name",
			map[string]string{"one.json": svc("s"), "two.json": svc("s")}, nil, []string{"one.json", "two.json"}},
		{"the entry's file cannot be read",
			map[string]string{"x%40y.json": `{"trunc`, "x@y.json": svc("x@y")}, nil, []string{"x%40y.json", "x@y.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := open(t)
			files := map[string]string{}
			for name, content := range tt.files {
				files[filepath.Join(state.ServicesDir, name)] = content
			}
			testfiles.Write(t, d.Path(), files)
			before := testfiles.Tree(t, d.Path())
			c := load(t, d)
			var got, reported []string
			for _, s := range c.Services {
				got = append(got, s.Name)
			}
			for _, p := range c.Problems {
				reported = append(reported, filepath.Base(p.File))
			}
			if !reflect.DeepEqual(got, tt.want) || !sameSet(reported, tt.reports) {
				t.Errorf("loaded %v, reported %v (%v); want %v and %v", got, reported, c.Problems, tt.want, tt.reports)
			}
			if after := testfiles.Tree(t, d.Path()); !reflect.DeepEqual(before, after) {
				t.Errorf("Load changed the directory:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	set := map[string]int{}
	for _, s := range a {
		set[s]++
	}
	for _, s := range b {
		set[s]--
	}
	for _, n := range set {
		if n != 0 {
			return false
		}
	}
	return true
}

// A subdirectory that cannot be listed is an error, not an empty state:
// starting without its entries could give back access they withdrew.
func TestUnlistableSubdirectoryIsAnError(t *testing.T) {
	d := open(t)
	deleg := filepath.Join(d.Path(), state.DelegationsDir)
	if err := os.Remove(deleg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(deleg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := d.Load(); err == nil || !strings.Contains(err.Error(), deleg) {
		t.Fatalf("Load = %+v, %v; want an error naming %s", c, err, deleg)
	}
	if c, err := state.Read(d.Path()); err == nil {
		t.Fatalf("Read = %+v, want an error", c)
	}
}

func TestQuarantineMovesTheFileAside(t *testing.T) {
	d := open(t)
	bad := filepath.Join(d.Path(), state.DelegationsDir, "t,a,g.json")
	if err := os.WriteFile(bad, []byte(`{"vers`), 0o600); err != nil {
		t.Fatal(err)
	}
	to, err := d.Quarantine(bad, at)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(d.Path(), state.QuarantineDir, "20261122T100000.000000000Z", state.DelegationsDir, "t,a,g.json")
	if to != want {
		t.Errorf("moved to %s, want %s", to, want)
	}
	if data, err := os.ReadFile(to); err != nil || string(data) != `{"vers` {
		t.Errorf("quarantined file: %q, %v", data, err)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("the file is still there (%v)", err)
	}
	// The quarantine is no entry.
	if c := load(t, d); len(c.Problems)+len(c.Delegations) != 0 {
		t.Errorf("Load = %+v", c)
	}
	// Only files of the state directory are moved, and never over another.
	if _, err := d.Quarantine(filepath.Join(t.TempDir(), "x.json"), at); err == nil {
		t.Error("a file outside the state directory was quarantined")
	}
	if err := os.WriteFile(bad, []byte(`again`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Quarantine(bad, at); err == nil {
		t.Error("a quarantined file was replaced")
	}
}

func TestPutRejectsKeysJSONCannotKeep(t *testing.T) {
	d := open(t)
	if err := d.PutService(&state.ServiceFile{Name: "bad\xff", Document: json.RawMessage(`{}`)}); err == nil ||
		!strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("a service name of invalid UTF-8 was written (%v)", err)
	}
	if err := d.PutDelegation(&state.DelegationFile{Tenant: "t", Application: "a\xc3", Group: "g",
		Consents: map[string]state.Consent{"m": {}}}); err == nil || !strings.Contains(err.Error(), "application") {
		t.Errorf("an application name of invalid UTF-8 was written (%v)", err)
	}
}
