package loader

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/verdict-authz/verdict/loader/state"
)

// DefaultPollInterval is how often a remote bundle is polled.
const DefaultPollInterval = 30 * time.Second

// MaxRemoteBundleBytes bounds a downloaded bundle.
const MaxRemoteBundleBytes = 256 << 20

// RemoteOptions configures a Remote.
type RemoteOptions struct {
	// Interval between polls (DefaultPollInterval when 0).
	Interval time.Duration
	// StateDir, when set, keeps the last good copy of the bundle, so that a
	// restart serves without the network.
	StateDir string
	// Client makes the requests (a client with a 30 s timeout when nil).
	Client *http.Client
	Log    *slog.Logger
}

// Remote keeps a bundle served from an HTTP(S) URL up to date, the way OPA's
// bundle downloader does: it polls with If-None-Match so an unchanged bundle
// costs a 304, verifies the signature when the source asks for it (OPA's
// .signatures.json format), installs a new version through the loader and
// persists the last good copy in the state directory.
//
// A version that is rejected is not downloaded again (its ETag is sent with
// If-None-Match) but it is not forgotten either: the loader keeps it as the
// source's newest version and tries it again when another change may make it
// fit (a catalog bundle reloaded, a service registered at run time). When it
// is accepted then, the loader reports it through Accepted and it becomes the
// persisted last good copy.
type Remote struct {
	loader *Loader
	opts   RemoteOptions
	log    *slog.Logger
	name   string
	url    string

	mu sync.Mutex // guards what follows: the poller and the loader (a retry) both write it
	// src is the last good copy (Tarball, ETag): the last version accepted,
	// or the one restored from the state directory.
	src Source
	// etag is sent with If-None-Match: that of the newest version
	// downloaded, accepted or not.
	etag string
	// newest is the SHA-256 of the newest version downloaded, accepted or
	// not: a server that sends no ETag answers every poll 200 with the
	// same bytes, which are then not installed (nor logged) again.
	newest [sha256.Size]byte
	// saved: src is what the state directory holds (or there is none).
	saved bool
}

// NewRemote prepares polling for a remote source.
func NewRemote(l *Loader, src Source, opts RemoteOptions) *Remote {
	if opts.Interval <= 0 {
		opts.Interval = DefaultPollInterval
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	r := &Remote{loader: l, opts: opts, log: opts.Log, name: src.Name, url: src.Location, src: src}
	l.mu.Lock()
	l.remotes[src.Name] = r
	l.mu.Unlock()
	return r
}

// persisted is the metadata stored beside a persisted bundle.
type persisted struct {
	URL   string    `json:"url"`
	ETag  string    `json:"etag"`
	Saved time.Time `json:"saved"`
}

func (r *Remote) paths() (tarball, meta string) {
	dir := filepath.Join(r.opts.StateDir, "bundles")
	return filepath.Join(dir, r.name+".tar.gz"), filepath.Join(dir, r.name+".json")
}

// Restore returns the persisted last good copy, when the state directory
// holds one for this URL. Polls ask for changes since its ETag. If it is
// rejected at start (a registration it refers to is gone), the server is
// not asked for the same version again: the loader keeps the copy and tries
// it again after later changes.
func (r *Remote) Restore() (Source, bool) {
	if r.opts.StateDir == "" {
		return Source{}, false
	}
	tarPath, metaPath := r.paths()
	raw, err := os.ReadFile(metaPath)
	if err != nil {
		return Source{}, false
	}
	var meta persisted
	if err := json.Unmarshal(raw, &meta); err != nil || meta.URL != r.url {
		return Source{}, false
	}
	data, err := os.ReadFile(tarPath)
	if err != nil {
		return Source{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	src := r.src
	src.Tarball, src.ETag = data, meta.ETag
	r.src, r.saved = src, true
	r.setNewestLocked(src)
	return src, true
}

// Fetch downloads the bundle unless the server says it has not changed
// since the last download (changed is false then).
func (r *Remote) Fetch(ctx context.Context) (src Source, changed bool, err error) {
	r.mu.Lock()
	last, etag := r.src, r.etag
	r.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return Source{}, false, err
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	req.Header.Set("Accept", "application/gzip, application/vnd.openpolicyagent.bundles, application/octet-stream")
	resp, err := r.opts.Client.Do(req)
	if err != nil {
		return Source{}, false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return last, false, nil
	case http.StatusOK:
	default:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return Source{}, false, fmt.Errorf("GET %s: HTTP %d", r.url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxRemoteBundleBytes+1))
	if err != nil {
		return Source{}, false, fmt.Errorf("GET %s: %w", r.url, err)
	}
	if len(body) > MaxRemoteBundleBytes {
		return Source{}, false, fmt.Errorf("GET %s: the bundle exceeds %d bytes", r.url, MaxRemoteBundleBytes)
	}
	r.mu.Lock()
	same := sha256.Sum256(body) == r.newest
	r.mu.Unlock()
	if same {
		// No ETag (or a new one on the same bytes): nothing new.
		return last, false, nil
	}
	src = last
	src.Tarball, src.ETag = body, resp.Header.Get("ETag")
	return src, true, nil
}

// setNewestLocked records src as the newest version downloaded: its ETag
// is sent with the next poll, and its bytes are not installed again.
func (r *Remote) setNewestLocked(src Source) {
	r.etag = src.ETag
	r.newest = sha256.Sum256(src.Tarball)
}

// Accepted records that src was installed: later polls ask for changes
// since its ETag, and it becomes the persisted last good copy. The loader
// calls it for every version of the source it installs; the copy already
// persisted is not written again.
func (r *Remote) Accepted(src Source) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.saved && r.src.ETag == src.ETag && bytes.Equal(r.src.Tarball, src.Tarball) {
		return nil
	}
	r.src, r.saved = src, false
	r.setNewestLocked(src)
	if r.opts.StateDir == "" {
		r.saved = true
		return nil
	}
	tarPath, metaPath := r.paths()
	if err := state.MkdirDurable(filepath.Dir(tarPath)); err != nil {
		return fmt.Errorf("persist bundle %s: %w", src.Name, err)
	}
	if err := state.WriteFileAtomic(tarPath, src.Tarball); err != nil {
		return fmt.Errorf("persist bundle %s: %w", src.Name, err)
	}
	meta, _ := json.Marshal(persisted{URL: src.Location, ETag: src.ETag, Saved: time.Now().UTC()})
	if err := state.WriteFileAtomic(metaPath, meta); err != nil {
		return fmt.Errorf("persist bundle %s: %w", src.Name, err)
	}
	r.saved = true
	return nil
}

// Poll fetches once and installs a changed bundle. A bundle that is
// rejected keeps the last good one serving; its ETag is remembered so the
// same bad version is not downloaded again and again, and the loader keeps
// it to try again after later changes (see Remote).
func (r *Remote) Poll(ctx context.Context) error {
	src, changed, err := r.Fetch(ctx)
	if err != nil {
		r.mu.Lock()
		last := r.src
		r.mu.Unlock()
		r.loader.ReportDownloadError(last, err)
		return &DownloadError{Err: err}
	}
	if !changed {
		return nil
	}
	b, readErr := Read(src)
	if err := r.loader.Apply(ctx, src, b, readErr); err != nil {
		r.mu.Lock()
		r.setNewestLocked(src)
		r.mu.Unlock()
		return err
	}
	// The loader has reported src through Accepted already; this returns
	// the error of persisting it, if any (and tries once more).
	return r.Accepted(src)
}

// Run polls until ctx ends.
func (r *Remote) Run(ctx context.Context) {
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.Poll(ctx); err != nil && !errors.Is(err, context.Canceled) {
				r.log.Debug("remote bundle poll failed", "bundle", r.name, "error", err)
			}
		}
	}
}
