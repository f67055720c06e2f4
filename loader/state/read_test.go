package state_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/internal/testfiles"
	"github.com/verdict-authz/verdict/loader/state"
)

// Read returns what Load returns, but never creates, writes or removes
// anything: the leftover temporary file Load would remove stays.
func TestReadIsLoadWithoutWriting(t *testing.T) {
	d := open(t)
	if err := d.PutService(&state.ServiceFile{Name: "requisition", RegisteredAt: at, Document: json.RawMessage(`{"routes": []}`)}); err != nil {
		t.Fatal(err)
	}
	if err := d.PutDelegation(&state.DelegationFile{Tenant: "fineract", Application: "rhythm", Group: "g",
		Request: &state.Request{Operations: []string{"READ"}, At: at}}); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(d.Path(), state.ServicesDir, ".requisition.json.tmp42")
	for path, content := range map[string]string{
		tmp: `{"half`,
		filepath.Join(d.Path(), state.ServicesDir, "broken.json"): `{"version":`,
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	before := testfiles.Tree(t, d.Path())

	got, err := state.Read(d.Path())
	if err != nil {
		t.Fatal(err)
	}
	if after := testfiles.Tree(t, d.Path()); !reflect.DeepEqual(before, after) {
		t.Errorf("Read changed the directory:\nbefore %v\nafter  %v", before, after)
	}
	if len(got.Services) != 1 || got.Services[0].Name != "requisition" || string(got.Services[0].Document) != `{"routes":[]}` {
		t.Errorf("services = %+v", got.Services)
	}
	if len(got.Delegations) != 1 || got.Delegations[0].Group != "g" {
		t.Errorf("delegations = %+v", got.Delegations)
	}
	if len(got.Problems) != 1 || filepath.Base(got.Problems[0].File) != "broken.json" ||
		!strings.Contains(got.Problems[0].Message, "not a valid state file") {
		t.Errorf("problems = %v, want broken.json only (the temporary file is no entry)", got.Problems)
	}

	// Relative paths are read too.
	wd, _ := os.Getwd()
	rel, err := filepath.Rel(wd, d.Path())
	if err != nil {
		t.Fatal(err)
	}
	if c, err := state.Read(rel); err != nil || len(c.Services) != 1 {
		t.Errorf("Read(%q) = %+v, %v", rel, c, err)
	}

	// Load reads the same entries, and removes the temporary file.
	loaded := load(t, d)
	if !reflect.DeepEqual(loaded, got) {
		t.Errorf("Load = %+v\nRead = %+v", loaded, got)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("Load left the temporary file (%v)", err)
	}
}

func TestReadRefusesWhatIsNoStateDirectory(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(base, "missing"), "does not exist"},
		{"missing parent", filepath.Join(base, "no", "state"), "does not exist"},
		{"a file", file, "is not a directory"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := state.Read(tt.path)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.path) {
				t.Fatalf("Read = %+v, %v; want an error naming %s and saying %q", c, err, tt.path, tt.want)
			}
		})
	}
	if entries, _ := os.ReadDir(base); len(entries) != 1 {
		t.Errorf("Read created something: %v", entries)
	}

	// An existing directory without the subdirectories is an empty state,
	// and they are not created.
	empty := filepath.Join(base, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	c, err := state.Read(empty)
	if err != nil || len(c.Services)+len(c.Delegations)+len(c.Problems) != 0 {
		t.Fatalf("Read(empty) = %+v, %v", c, err)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("Read created %v", entries)
	}
}

func TestDocumentMapKeepsNumbers(t *testing.T) {
	f := &state.ServiceFile{Document: json.RawMessage(`{"routes": [], "n": 12345678901234567890}`)}
	doc, err := f.DocumentMap()
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := doc["n"].(json.Number); !ok || n.String() != "12345678901234567890" {
		t.Errorf("n = %#v, want json.Number", doc["n"])
	}
	for _, bad := range []string{`[1]`, `null`, `{`} {
		if _, err := (&state.ServiceFile{Document: json.RawMessage(bad)}).DocumentMap(); err == nil {
			t.Errorf("DocumentMap(%s) succeeded", bad)
		}
	}
}
