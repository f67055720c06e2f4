package loader

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/verdict-authz/verdict/internal/testfiles"
)

// etagServer serves one bundle tarball with an ETag and answers 304 to
// If-None-Match with it, counting full downloads and 304s.
type etagServer struct {
	*httptest.Server
	mu          sync.Mutex
	body        []byte
	etag        string
	full, short int
}

func newETagServer(t *testing.T) *etagServer {
	s := &etagServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if r.Header.Get("If-None-Match") == s.etag {
			s.short++
			w.WriteHeader(http.StatusNotModified)
			return
		}
		s.full++
		w.Header().Set("ETag", s.etag)
		w.Write(s.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *etagServer) publish(body []byte, etag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.etag = body, etag
}

func (s *etagServer) counts() (full, short int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.full, s.short
}

// khepriDelegations are the cn tenant's delegations with a group that only the portfolio
// service registered at run time declares.
const khepriDelegations = appSelf + "    portfolio__v1__khepri: {operations: [CHANGE], enabled_by: [imhotep]}\n"

func cnCatalogSource(t *testing.T) Source {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "catalog")
	testfiles.Write(t, dir, cnCatalog)
	return Source{Name: "catalog", Location: dir}
}

// A remote version rejected for a reference to a permittable group no
// service declares is accepted as soon as a registration declares it, from
// the copy downloaded then: it is not downloaded again, and it becomes the
// persisted last good copy.
func TestRejectedRemoteBundleIsAcceptedWhenTheRegistrationArrives(t *testing.T) {
	srv := newETagServer(t)
	srv.publish(testfiles.TarGz(t, cnTenant("t1", appSelf)), `"t1"`)
	stateDir := t.TempDir()
	l, engine := newTestLoader(t)
	ctx := t.Context()
	if _, err := l.LoadAll(ctx, []Source{cnCatalogSource(t)}); err != nil {
		t.Fatal(err)
	}
	src := Source{Name: "cn", Location: srv.URL + "/cn.tar.gz"}
	r := NewRemote(l, src, RemoteOptions{StateDir: stateDir, Client: srv.Client()})
	if err := r.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := engine.Current().Revisions["cn"]; got != "t1" {
		t.Fatalf("revision %q", got)
	}

	srv.publish(testfiles.TarGz(t, cnTenant("t2", khepriDelegations)), `"t2"`)
	if err := r.Poll(ctx); err == nil || !strings.Contains(err.Error(), `unknown permittable group "portfolio__v1__khepri"`) {
		t.Fatalf("poll of t2 = %v", err)
	}
	if st := flush(t, l); st.Ready || bundleStatus(t, st, "cn").State != StateFailed {
		t.Fatalf("status after the rejection: %+v", st)
	}

	if _, _, err := l.RegisterService(ctx, "portfolio", portfolioDoc(t, "")); err != nil {
		t.Fatal(err)
	}
	if got := engine.Current().Revisions["cn"]; got != "t2" {
		t.Fatalf("the rejected remote version was not retried after the registration: revision %q", got)
	}
	if st := flush(t, l); !st.Ready || bundleStatus(t, st, "cn").Revision != "t2" {
		t.Fatalf("status after the registration: %+v", st)
	}
	wantCodes(t, decide(t, engine, "imhotep", "rhythm", "POST", "/portfolio/v1/khepri/beats"),
		true, "iam.allow", "resource.any", "delegation.allow")

	// Polls go on with the ETag of t2: 304, nothing changes.
	if err := r.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if full, short := srv.counts(); full != 2 || short != 1 {
		t.Errorf("full downloads %d, 304s %d; want 2 and 1", full, short)
	}
	if got := engine.Current().Revisions["cn"]; got != "t2" {
		t.Errorf("revision after a 304 %q", got)
	}
	// t2 is the persisted last good copy.
	l2, _ := newTestLoader(t)
	restored, ok := NewRemote(l2, src, RemoteOptions{StateDir: stateDir}).Restore()
	if !ok || restored.ETag != `"t2"` {
		t.Fatalf("restore = %v %q, want the copy accepted after the registration", ok, restored.ETag)
	}
	if b, err := Read(restored); err != nil || b.Revision != "t2" {
		t.Fatalf("restored copy: %v %v", b, err)
	}
}

// A last good copy restored from the state directory that no longer fits
// at start (the registration it refers to is not there) is accepted when
// the registration arrives, although its server has nothing newer (it
// answers 304 to the copy's ETag).
func TestRestoredRemoteCopyIsAcceptedWhenTheRegistrationArrives(t *testing.T) {
	srv := newETagServer(t)
	body := testfiles.TarGz(t, cnTenant("t2", khepriDelegations))
	srv.publish(body, `"t2"`)
	stateDir := t.TempDir()
	src := Source{Name: "cn", Location: srv.URL + "/cn.tar.gz"}
	// An earlier run accepted t2 (portfolio was registered then).
	l0, _ := newTestLoader(t)
	saved := src
	saved.Tarball, saved.ETag = body, `"t2"`
	if err := NewRemote(l0, src, RemoteOptions{StateDir: stateDir}).Accepted(saved); err != nil {
		t.Fatal(err)
	}

	l, engine := newTestLoader(t)
	ctx := t.Context()
	r := NewRemote(l, src, RemoteOptions{StateDir: stateDir, Client: srv.Client()})
	restored, ok := r.Restore()
	if !ok {
		t.Fatal("nothing restored")
	}
	_, err := l.LoadAvailable(ctx, []Source{cnCatalogSource(t), restored})
	if err == nil || !strings.Contains(err.Error(), "portfolio__v1__khepri") {
		t.Fatalf("load = %v", err)
	}
	if err := r.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if st := flush(t, l); st.Ready || bundleStatus(t, st, "cn").State != StateFailed {
		t.Fatalf("status at start: %+v", st)
	}

	if _, _, err := l.RegisterService(ctx, "portfolio", portfolioDoc(t, "")); err != nil {
		t.Fatal(err)
	}
	if got := engine.Current().Revisions["cn"]; got != "t2" {
		t.Fatalf("the restored copy was not retried after the registration: revision %q", got)
	}
	if st := flush(t, l); !st.Ready {
		t.Fatalf("status after the registration: %+v", st)
	}
	if err := r.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if full, short := srv.counts(); full != 0 || short != 2 {
		t.Errorf("full downloads %d, 304s %d; want 0 and 2", full, short)
	}
}
