package loader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"
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
type Remote struct {
	loader *Loader
	opts   RemoteOptions
	log    *slog.Logger

	src  Source // the last downloaded version (Tarball, ETag)
	etag string
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
	return &Remote{loader: l, opts: opts, log: opts.Log, src: src}
}

// persisted is the metadata stored beside a persisted bundle.
type persisted struct {
	URL   string    `json:"url"`
	ETag  string    `json:"etag"`
	Saved time.Time `json:"saved"`
}

func (r *Remote) paths() (tarball, meta string) {
	dir := filepath.Join(r.opts.StateDir, "bundles")
	return filepath.Join(dir, r.src.Name+".tar.gz"), filepath.Join(dir, r.src.Name+".json")
}

// Restore returns the persisted last good copy, when the state directory
// holds one for this URL.
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
	if err := json.Unmarshal(raw, &meta); err != nil || meta.URL != r.src.Location {
		return Source{}, false
	}
	data, err := os.ReadFile(tarPath)
	if err != nil {
		return Source{}, false
	}
	src := r.src
	src.Tarball, src.ETag = data, meta.ETag
	r.src, r.etag = src, meta.ETag
	return src, true
}

// Fetch downloads the bundle unless the server says it has not changed
// since the last download (changed is false then).
func (r *Remote) Fetch(ctx context.Context) (src Source, changed bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.src.Location, nil)
	if err != nil {
		return Source{}, false, err
	}
	if r.etag != "" {
		req.Header.Set("If-None-Match", r.etag)
	}
	req.Header.Set("Accept", "application/gzip, application/vnd.openpolicyagent.bundles, application/octet-stream")
	resp, err := r.opts.Client.Do(req)
	if err != nil {
		return Source{}, false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return r.src, false, nil
	case http.StatusOK:
	default:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return Source{}, false, fmt.Errorf("GET %s: HTTP %d", r.src.Location, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxRemoteBundleBytes+1))
	if err != nil {
		return Source{}, false, fmt.Errorf("GET %s: %w", r.src.Location, err)
	}
	if len(body) > MaxRemoteBundleBytes {
		return Source{}, false, fmt.Errorf("GET %s: the bundle exceeds %d bytes", r.src.Location, MaxRemoteBundleBytes)
	}
	src = r.src
	src.Tarball, src.ETag = body, resp.Header.Get("ETag")
	return src, true, nil
}

// Accepted records that src was installed: later polls ask for changes
// since its ETag, and it becomes the persisted last good copy.
func (r *Remote) Accepted(src Source) error {
	r.src, r.etag = src, src.ETag
	if r.opts.StateDir == "" {
		return nil
	}
	tarPath, metaPath := r.paths()
	if err := os.MkdirAll(filepath.Dir(tarPath), 0o700); err != nil {
		return fmt.Errorf("persist bundle %s: %w", src.Name, err)
	}
	if err := writeFileAtomic(tarPath, src.Tarball); err != nil {
		return fmt.Errorf("persist bundle %s: %w", src.Name, err)
	}
	meta, _ := json.Marshal(persisted{URL: src.Location, ETag: src.ETag, Saved: time.Now().UTC()})
	if err := writeFileAtomic(metaPath, meta); err != nil {
		return fmt.Errorf("persist bundle %s: %w", src.Name, err)
	}
	return nil
}

// Poll fetches once and installs a changed bundle. A bundle that is
// rejected keeps the last good one serving; its ETag is remembered so the
// same bad version is not downloaded again and again.
func (r *Remote) Poll(ctx context.Context) error {
	src, changed, err := r.Fetch(ctx)
	if err != nil {
		r.loader.ReportDownloadError(r.src, err)
		return &DownloadError{Err: err}
	}
	if !changed {
		return nil
	}
	b, readErr := Read(src)
	if err := r.loader.Apply(ctx, src, b, readErr); err != nil {
		r.etag = src.ETag
		return err
	}
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
				r.log.Debug("remote bundle poll failed", "bundle", r.src.Name, "error", err)
			}
		}
	}
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it over path, so a crash never leaves half a file.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
