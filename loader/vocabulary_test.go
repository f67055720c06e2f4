package loader

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/internal/testfiles"
)

// vocabularyTenant is the cn tenant of runtime_test.go with one more policy.
func vocabularyTenant(revision, extra string) map[string]string {
	files := cnTenant(revision, "")
	files["verdict/tenants/cn/data.yaml"] += extra
	return files
}

// writeVocabularyWorld writes the Fineract CN catalog and a tenant bundle
// whose data.yaml ends with extra (policies for imhotep), and returns their
// sources.
func writeVocabularyWorld(t *testing.T, extra string) (catalog, tenant Source) {
	t.Helper()
	root := t.TempDir()
	testfiles.Write(t, filepath.Join(root, "catalog"), cnCatalog)
	testfiles.Write(t, filepath.Join(root, "cn"), vocabularyTenant("t1", extra))
	return Source{Name: "catalog", Location: filepath.Join(root, "catalog")}, Source{Name: "cn", Location: filepath.Join(root, "cn")}
}

func warningsOf(t *testing.T, l *Loader, bundle string) string {
	t.Helper()
	var lines []string
	for _, w := range bundleStatus(t, flush(t, l), bundle).Warnings {
		lines = append(lines, w.File+": "+w.Entry+": "+w.Message)
	}
	return strings.Join(lines, "\n")
}

// A Deny whose action matches no action of any route is a typo that widens
// access: loading the bundle fails with the file, the entry and the closest
// known action.
func TestMisspeltDenyRejectsTheBundle(t *testing.T) {
	l, _ := newTestLoader(t)
	catalog, tenant := writeVocabularyWorld(t, `
  no-requests:
    Statement:
      - {Effect: Deny, Action: "identity:permissions:reqest", Resource: "*"}
`)
	_, err := l.LoadAll(t.Context(), []Source{catalog, tenant})
	want := `bundle-assemble: bundle cn: verdict/tenants/cn/data.yaml: access_policies.no-requests.Statement[0].Action[0]: action "identity:permissions:reqest" matches no action of the catalog's routes or of a registered service, so this Deny would forbid nothing; did you mean "identity:permissions:request"?`
	if err == nil || err.Error() != want {
		t.Fatalf("LoadAll: %v\nwant: %s", err, want)
	}
}

// Services registered at run time add to the actions statements may name: a
// bundle rejected for a Deny on a registered service's action is accepted
// once it registers; a registration that takes the action away again is
// accepted (a registration never fails because of a bundle's statements)
// and the Deny shows as a warning in the status until the action is back;
// another bundle's reload is not rejected because of it.
func TestRegistrationsChangeTheActionsStatementsMayName(t *testing.T) {
	ctx := t.Context()
	l, engine := newTestLoader(t)
	catalog, tenant := writeVocabularyWorld(t, `
  no-beats:
    Statement:
      - {Effect: Deny, Action: "portfolio:khepri:beat", Resource: "*"}
`)
	if _, err := l.LoadAvailable(ctx, []Source{catalog, tenant}); err == nil || !strings.Contains(err.Error(), `action "portfolio:khepri:beat" matches no action`) {
		t.Fatalf("LoadAvailable before portfolio registers: %v", err)
	}
	if st := flush(t, l); len(st.Failing) != 1 || st.Failing[0] != "cn" {
		t.Fatalf("failing = %v, want [cn]", st.Failing)
	}

	if _, _, err := l.RegisterService(ctx, "portfolio", portfolioDoc(t, "")); err != nil {
		t.Fatal(err)
	}
	if st := flush(t, l); len(st.Failing) != 0 {
		t.Fatalf("after portfolio registered, failing = %v", st.Failing)
	}
	if w := warningsOf(t, l, "cn"); w != "" {
		t.Fatalf("cn warnings with every action known:\n%s", w)
	}
	if b := l.Bundle("cn"); b == nil {
		t.Fatal("cn is not served")
	}

	// portfolio registers again without the beat route.
	doc := portfolioDoc(t, "")
	doc["routes"] = doc["routes"].([]any)[1:]
	if _, _, err := l.RegisterService(ctx, "portfolio", doc); err != nil {
		t.Fatalf("a registration that leaves a Deny without its action: %v", err)
	}
	want := `verdict/tenants/cn/data.yaml: access_policies.no-beats.Statement[0].Action[0]: action "portfolio:khepri:beat" matches no action of the catalog's routes or of a registered service: this Deny forbids nothing`
	if w := warningsOf(t, l, "cn"); w != want {
		t.Fatalf("cn warnings:\n%s\nwant:\n%s", w, want)
	}
	// The catalog's reload is not rejected for cn's Deny.
	testfiles.Write(t, catalog.Location, map[string]string{".manifest": `{"revision": "c2", "roots": ["verdict/catalog"]}`})
	if err := l.Reload(ctx, catalog); err != nil {
		t.Fatalf("catalog reload: %v", err)
	}
	if got := engine.Current().Revisions["catalog"]; got != "c2" {
		t.Fatalf("catalog revision served = %q", got)
	}
	if w := warningsOf(t, l, "cn"); w != want {
		t.Fatalf("cn warnings after the catalog reload:\n%s\nwant:\n%s", w, want)
	}
	// But a new version of cn itself is checked as new: rejected.
	testfiles.Write(t, tenant.Location, vocabularyTenant("t2", `
  no-beats:
    Statement:
      - {Effect: Deny, Action: "portfolio:khepri:beat", Resource: "*"}
`))
	if err := l.Reload(ctx, tenant); err == nil || !strings.Contains(err.Error(), "so this Deny would forbid nothing") {
		t.Fatalf("reload of cn with its Deny on an action no route gives: %v", err)
	}

	if _, _, err := l.RegisterService(ctx, "portfolio", portfolioDoc(t, "")); err != nil {
		t.Fatal(err)
	}
	if w := warningsOf(t, l, "cn"); w != "" {
		t.Fatalf("cn warnings once the action is back:\n%s", w)
	}
}

// The status shows a served bundle's warnings, not only the log: an unknown
// member field (a misspelt roles) and an Allow that matches no action.
func TestStatusShowsBundleWarnings(t *testing.T) {
	l, _ := newTestLoader(t)
	catalog, tenant := writeVocabularyWorld(t, `
  lists:
    Statement:
      - {Effect: Allow, Action: "identity:permissions:requets", Resource: "*"}
`)
	testfiles.Write(t, tenant.Location, map[string]string{"verdict/tenants/cn/data.yaml": strings.Replace(
		vocabularyTenant("t1", "")["verdict/tenants/cn/data.yaml"], "imhotep: {policies: [self]}", "imhotep: {policies: [self], rolse: [x]}", 1) + `
  lists:
    Statement:
      - {Effect: Allow, Action: "identity:permissions:requets", Resource: "*"}
`})
	if _, err := l.LoadAll(t.Context(), []Source{catalog, tenant}); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		`verdict/tenants/cn/data.yaml: members.imhotep.rolse: unknown field; it is ignored`,
		`verdict/tenants/cn/data.yaml: access_policies.lists.Statement[0].Action[0]: action "identity:permissions:requets" matches no action of the catalog's routes or of a registered service: this Allow grants nothing; did you mean "identity:permissions:request"?`,
		`verdict/tenants/cn/data.yaml: access_policies.self.Statement[0].Action[1]: action "portfolio:*" matches no action of the catalog's routes or of a registered service: this Allow grants nothing`,
	}, "\n")
	if w := warningsOf(t, l, "cn"); w != want {
		t.Fatalf("cn warnings:\n%s\nwant:\n%s", w, want)
	}
	if w := warningsOf(t, l, "catalog"); w != "" {
		t.Fatalf("catalog warnings: %s", w)
	}
}

// Without any service (a tenant bundle loaded without its catalog) the
// actions cannot be told typos: nothing is checked.
func TestNoServiceNoActionCheck(t *testing.T) {
	l, _ := newTestLoader(t)
	_, tenant := writeVocabularyWorld(t, `
  no-requests:
    Statement:
      - {Effect: Deny, Action: "identity:permissions:reqest", Resource: "*"}
`)
	if _, err := l.LoadAll(t.Context(), []Source{tenant}); err != nil {
		t.Fatalf("a tenant bundle alone: %v", err)
	}
	if w := warningsOf(t, l, "cn"); w != "" {
		t.Fatalf("cn warnings without a catalog:\n%s", w)
	}
}
