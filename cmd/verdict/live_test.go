package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/internal/testfiles"
	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/loader/store"
)

// A key file whose text holds a run of more than 255 characters without a
// "/" (common in PEM base64, and any long HMAC secret) must be accepted:
// OPA's keys.NewKeyConfig would stat that text as a path and fail.
func TestVerificationKeyWithALongRunWithoutSlash(t *testing.T) {
	secret := strings.Repeat("k", 300)
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	vc, err := verificationConfig(liveOptions{verificationKey: path, verificationKeyID: "k1", verificationAlg: "HS256"})
	if err != nil {
		t.Fatalf("verificationConfig: %v", err)
	}
	kc := vc.PublicKeys["k1"]
	if kc == nil || kc.Key != secret || kc.Algorithm != "HS256" {
		t.Fatalf("key config = %+v", kc)
	}
	if _, err := verificationConfig(liveOptions{verificationKey: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("a missing key file was accepted")
	}
}

func newLiveTestLoader(t *testing.T) *loader.Loader {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ld, err := loader.New(decision.NewEngine(log), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ld.Close)
	return ld
}

// A remote bundle downloaded at start is persisted in the state directory
// once it is served, and the next start serves that copy without the
// network.
func TestRemoteBundleDownloadedAtStartIsPersisted(t *testing.T) {
	body := testfiles.TarGz(t, map[string]string{
		".manifest":                   `{"revision": "r1", "roots": ["verdict/tenants/r"]}`,
		"verdict/tenants/r/data.yaml": "name: r\nmembers:\n  m: {}\n",
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("ETag", `"r1"`)
		w.Write(body)
	}))
	stateDir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	o := runOptions{stateDir: stateDir}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	src := loader.Source{Name: "remote", Location: srv.URL + "/b.tar.gz"}
	revisions, err := loadBundles(ctx, newLiveTestLoader(t), []loader.Source{src}, o, log)
	if err != nil || revisions["remote"] != "r1" {
		t.Fatalf("load = %v %v", revisions, err)
	}
	saved, err := os.ReadFile(filepath.Join(stateDir, "bundles", "remote.tar.gz"))
	if err != nil || !bytes.Equal(saved, body) {
		t.Fatalf("persisted copy: %d bytes, %v", len(saved), err)
	}
	srv.Close()
	revisions, err = loadBundles(ctx, newLiveTestLoader(t), []loader.Source{src}, o, log)
	if err != nil || revisions["remote"] != "r1" {
		t.Fatalf("load without the network = %v %v", revisions, err)
	}
}

// editDuringLoad is a pipeline processor that runs edit once, during the
// first bundle change: the initial load.
type editDuringLoad struct {
	once sync.Once
	edit func()
}

func (p *editDuringLoad) Name() string { return "test-edit-during-load" }
func (p *editDuringLoad) Order() int   { return 150 }
func (p *editDuringLoad) Process(_ context.Context, ev *loader.Event, _ *store.WriteTxn) error {
	if ev.Bundle != nil {
		p.once.Do(p.edit)
	}
	return nil
}

// With --watch, an edit made while the bundles are being loaded at start
// (after the bundle was read, before the server is ready) is reloaded: the
// watcher exists before the first read.
func TestWatchSeesAnEditMadeDuringTheInitialLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b")
	manifest := func(rev string) string { return `{"revision": "` + rev + `", "roots": ["verdict/tenants/r"]}` }
	write := func(name, content string) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(".manifest", manifest("r1"))
	write("verdict/tenants/r/data.yaml", "name: r\nmembers:\n  m: {}\n")

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	engine := decision.NewEngine(log)
	ld, err := loader.New(engine, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ld.Close)
	ld.Pipeline().Register(&editDuringLoad{edit: func() { write(".manifest", manifest("r2")) }})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	o := runOptions{live: liveOptions{watch: true, debounce: 20 * time.Millisecond}}
	revisions, err := loadBundles(ctx, ld, []loader.Source{{Name: "b", Location: dir}}, o, log)
	if err != nil || revisions["b"] != "r1" {
		t.Fatalf("load = %v %v", revisions, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for engine.Current().Revisions["b"] != "r2" {
		if time.Now().After(deadline) {
			t.Fatalf("the edit made during the initial load was not reloaded: revision %q", engine.Current().Revisions["b"])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
