package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/loader/state"
	"github.com/verdict-authz/verdict/loader/state/pgstate"
	"github.com/verdict-authz/verdict/test/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// `verdict state migrate` creates the schema once and then finds it
// current; the DSN comes from the flag, the file, VERDICT_STATE_DB or the
// configuration file.
func TestStateMigrate(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	out, _, code, err := runVerdict(t, "state", "migrate", "--state-db", dsn)
	if code != 0 || err != nil || !strings.Contains(out, "migrated from version 0 to") {
		t.Fatalf("first migrate: %q, %d, %v", out, code, err)
	}
	file := filepath.Join(t.TempDir(), "dsn")
	os.WriteFile(file, []byte(dsn+"\n"), 0o600)
	out, _, code, err = runVerdict(t, "state", "migrate", "--state-db-file", file)
	if code != 0 || err != nil || !strings.Contains(out, "is current") {
		t.Fatalf("second migrate: %q, %d, %v", out, code, err)
	}
	t.Setenv(EnvStateDB, dsn)
	if out, _, code, err = runVerdict(t, "state", "migrate"); code != 0 || !strings.Contains(out, "is current") {
		t.Fatalf("migrate with %s: %q, %d, %v", EnvStateDB, out, code, err)
	}
	// The flag wins over the variable, as every flag does.
	if out, _, code, err = runVerdict(t, "state", "migrate", "--state-db", dsn); code != 0 || !strings.Contains(out, "is current") {
		t.Fatalf("--state-db with %s set: %q, %d, %v", EnvStateDB, out, code, err)
	}
	// A DSN and a DSN file are refused: which one was meant?
	if _, _, code, err = runVerdict(t, "state", "migrate", "--state-db-file", file); code == 0 || !strings.Contains(err.Error(), "once") {
		t.Fatalf("--state-db-file with %s set: %d, %v", EnvStateDB, code, err)
	}
	// The DSN file from the configuration file of verdict run.
	os.Unsetenv(EnvStateDB)
	config := filepath.Join(t.TempDir(), "verdict.yaml")
	os.WriteFile(config, []byte("state-db-file: "+file+"\naddr: 127.0.0.1:8181\n"), 0o600)
	if out, _, code, err = runVerdict(t, "state", "migrate", "--config", config); code != 0 || !strings.Contains(out, "is current") {
		t.Fatalf("migrate --config: %q, %d, %v", out, code, err)
	}
}

// `verdict state import --from-dir` writes a state directory's entries as
// changes every sidecar then loads.
func TestStateImport(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	dir := t.TempDir()
	d, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	d.PutService(&state.ServiceFile{Name: "ledger", Document: []byte(`{"routes":[]}`)})
	d.PutDelegation(&state.DelegationFile{Tenant: "fineract", Application: "rhythm", Group: "g",
		Request:  &state.Request{Operations: []string{"CHANGE"}},
		Consents: map[string]state.Consent{"imhotep": {Enabled: false}}})
	out, _, code, err := runVerdict(t, "state", "import", "--from-dir", dir, "--state-db", dsn)
	if code != 0 || err != nil || !strings.Contains(out, "imported 1 services and 1 delegations (3 changes)") {
		t.Fatalf("import: %q, %d, %v", out, code, err)
	}
	db, err := pgstate.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	snap, err := db.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if snap.Revision != 3 || len(snap.Services) != 1 || len(snap.Requests) != 1 || len(snap.Consents) != 1 || snap.Consents[0].Enabled {
		t.Fatalf("after import: %+v", snap)
	}
	// A directory with an unusable entry is not imported.
	os.WriteFile(filepath.Join(dir, "services", "broken.json"), []byte("{"), 0o600)
	if _, _, code, err = runVerdict(t, "state", "import", "--from-dir", dir, "--state-db", dsn); code == 0 || !strings.Contains(err.Error(), "cannot be used") {
		t.Fatalf("import of a broken directory: %d, %v", code, err)
	}
}
