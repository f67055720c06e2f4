// Package testdemo writes edited copies of the embedded demo bundle for
// tests of what a bundle change changes (verdict diff, the shadow
// candidate): the README's worked example and variations on it.
package testdemo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/bundles"
)

// Edit is one textual replacement in the bank tenant's data.yaml.
type Edit struct{ Old, New string }

// FreezePortfolioWrites is the README's example: every member of all_staff
// is denied finmars:Portfolio:*update (update and partial_update) on every
// object.
var FreezePortfolioWrites = []Edit{
	{"policies: [deny-secret-portfolio, office-hours-transactions]",
		"policies: [deny-secret-portfolio, office-hours-transactions, freeze-portfolio-writes]"},
	{"resource_groups:\n", "  freeze-portfolio-writes:\n    Statement:\n" +
		"      - {Effect: Deny, Action: \"finmars:Portfolio:*update\", Resource: \"*\"}\n\nresource_groups:\n"},
}

// InternReadsInstruments gives the intern, who may do nothing in the demo,
// the instrument-read policy.
var InternReadsInstruments = []Edit{{"  intern: {}", "  intern: {policies: [instrument-read]}"}}

// Write copies the demo bundle into a new temporary directory, applies the
// edits to verdict/tenants/bank/data.yaml and returns the directory. An edit
// whose Old text is not there fails the test.
func Write(tb testing.TB, edits ...[]Edit) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "demo")
	if err := os.CopyFS(dir, bundles.Demo()); err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, "verdict", "tenants", "bank", "data.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	s := string(data)
	for _, list := range edits {
		for _, e := range list {
			if !strings.Contains(s, e.Old) {
				tb.Fatalf("testdemo: the bank tenant has no %q", e.Old)
			}
			s = strings.Replace(s, e.Old, e.New, 1)
		}
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		tb.Fatal(err)
	}
	return dir
}
