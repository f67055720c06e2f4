package loader

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long a bundle's files must be quiet before it is
// reloaded.
const DefaultDebounce = 100 * time.Millisecond

// WatchOptions tunes a Watcher.
type WatchOptions struct {
	// Debounce collapses a bundle's events within this window into one
	// reload (DefaultDebounce when 0).
	Debounce time.Duration
	// MaxWait bounds how long a burst of events can postpone a reload
	// (20 × Debounce when 0).
	MaxWait time.Duration
	// Settle is how long a read that failed waits for more events before the
	// failure is reported (Debounce when 0): a file that is truncated and
	// then written, or a directory replaced by rm and cp, shows no
	// transient error.
	Settle time.Duration
	Log    *slog.Logger
}

// Watcher reloads local bundles (directories and tarballs) when their files
// change. fsnotify watches every directory of each bundle, including the
// ones created later, and the directory holding each bundle location, so
// that a bundle replaced whole (rename, `ln -sfn`, a Kubernetes ConfigMap's
// ..data swap) or deleted is seen too. Each bundle's events are debounced
// and its reloads run one at a time, newest wins.
type Watcher struct {
	loader *Loader
	opts   WatchOptions
	log    *slog.Logger
	fsw    *fsnotify.Watcher
	deb    *debouncer

	mu      sync.Mutex
	sources map[string]Source
	// dirs maps a watched directory (real path) to the bundles whose tree
	// it belongs to.
	dirs map[string]map[string]bool
	// parents maps a watched parent directory (real path) and a base name to
	// the bundles located there.
	parents map[string]map[string]map[string]bool
	// owned lists the directories each bundle asked to watch.
	owned map[string]map[string]bool
	// seq counts each bundle's events, so a failed read can tell whether a
	// newer event has come.
	seq map[string]uint64

	work    chan string
	done    chan struct{} // closed when Run returns
	queued  map[string]bool
	reloads chan ReloadResult // optional, for tests
}

// ReloadResult is the outcome of one watched reload.
type ReloadResult struct {
	Bundle string
	Err    error
}

// NewWatcher watches the local sources (remote and embedded ones are
// skipped) and reloads them through l. Start it with Run.
func NewWatcher(l *Loader, sources []Source, opts WatchOptions) (*Watcher, error) {
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 20 * opts.Debounce
	}
	if opts.Settle <= 0 {
		opts.Settle = opts.Debounce
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch bundles: %w", err)
	}
	w := &Watcher{
		loader:  l,
		opts:    opts,
		log:     opts.Log,
		fsw:     fsw,
		sources: map[string]Source{},
		dirs:    map[string]map[string]bool{},
		parents: map[string]map[string]map[string]bool{},
		owned:   map[string]map[string]bool{},
		seq:     map[string]uint64{},
		work:    make(chan string, 64),
		done:    make(chan struct{}),
		queued:  map[string]bool{},
	}
	w.deb = newDebouncer(opts.Debounce, opts.MaxWait, w.enqueue)
	for _, src := range sources {
		if src.FS != nil || src.IsRemote() {
			continue
		}
		w.sources[src.Name] = src
		if err := w.sync(src); err != nil {
			fsw.Close()
			return nil, err
		}
	}
	return w, nil
}

// Run handles events until ctx ends, then closes the watcher.
func (w *Watcher) Run(ctx context.Context) error {
	defer w.fsw.Close()
	defer close(w.done)
	defer w.deb.stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.worker(ctx)
	}()
	defer func() { <-done }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return nil
			}
			// An overflowed queue loses events: reload everything.
			w.log.Warn("bundle watcher error; reloading every watched bundle", "error", err)
			for name := range w.sources {
				w.touch(name)
			}
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return nil
			}
			w.handle(ev)
		}
	}
}

// handle maps a file event to the bundles it concerns.
func (w *Watcher) handle(ev fsnotify.Event) {
	if ev.Op == fsnotify.Chmod {
		return
	}
	dir, base := filepath.Dir(ev.Name), filepath.Base(ev.Name)
	w.mu.Lock()
	affected := map[string]bool{}
	for name := range w.dirs[dir] {
		affected[name] = true
	}
	for name := range w.dirs[ev.Name] {
		affected[name] = true
	}
	for name := range w.parents[dir][base] {
		affected[name] = true
	}
	w.mu.Unlock()
	if len(affected) == 0 {
		return
	}
	resync := false
	switch {
	case ev.Has(fsnotify.Create):
		info, err := os.Stat(ev.Name)
		resync = err == nil && info.IsDir() || base == k8sDataDir
	case ev.Has(fsnotify.Rename) || ev.Has(fsnotify.Remove):
		w.mu.Lock()
		_, wasDir := w.dirs[ev.Name]
		resync = wasDir || len(w.parents[dir][base]) > 0 || base == k8sDataDir
		w.mu.Unlock()
	}
	for name := range affected {
		if resync {
			// A new directory (or a bundle root that came back) is watched
			// right away, so files written into it from now on are seen;
			// whatever was written before is read by the reload below.
			w.mu.Lock()
			src := w.sources[name]
			w.mu.Unlock()
			if err := w.sync(src); err != nil {
				w.log.Warn("cannot watch bundle directories", "bundle", name, "error", err)
			}
		}
		w.touch(name)
	}
}

func (w *Watcher) touch(name string) {
	w.mu.Lock()
	w.seq[name]++
	w.mu.Unlock()
	w.deb.touch(name)
}

func (w *Watcher) enqueue(name string) {
	w.mu.Lock()
	if w.queued[name] {
		w.mu.Unlock()
		return
	}
	w.queued[name] = true
	w.mu.Unlock()
	select {
	case w.work <- name:
	case <-w.done:
	}
}

// worker reloads bundles one at a time.
func (w *Watcher) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case name := <-w.work:
			w.mu.Lock()
			delete(w.queued, name)
			src := w.sources[name]
			seq := w.seq[name]
			w.mu.Unlock()
			err := w.reload(ctx, src, seq)
			if err := w.sync(src); err != nil {
				w.log.Warn("cannot watch bundle directories", "bundle", name, "error", err)
			}
			if w.reloads != nil {
				select {
				case w.reloads <- ReloadResult{Bundle: name, Err: err}:
				default:
				}
			}
		}
	}
}

// errSuperseded: a failed read was followed by newer events; their reload
// decides.
var errSuperseded = errors.New("superseded by a newer change")

func (w *Watcher) reload(ctx context.Context, src Source, seq uint64) error {
	b, err := Read(src)
	if err == nil {
		return w.loader.Apply(ctx, src, b, nil)
	}
	// A read that fails may have caught a file half written or a directory
	// being replaced: wait for the writer to settle before reporting it.
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(w.opts.Settle):
	}
	w.mu.Lock()
	newer := w.seq[src.Name] != seq
	w.mu.Unlock()
	if newer {
		return errSuperseded
	}
	return w.loader.Reload(ctx, src)
}

// sync (re)computes the directories watched for a bundle: the directory
// holding its location, and for a directory bundle every directory of its
// tree (the real paths, following symlinks and a ConfigMap's ..data), and
// drops the watches it no longer needs.
func (w *Watcher) sync(src Source) error {
	want := map[string]bool{}
	abs, err := filepath.Abs(src.Location)
	if err != nil {
		return err
	}
	parent, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return fmt.Errorf("bundle %s: the directory of %s: %w", src.Name, src.Location, err)
	}
	base := filepath.Base(abs)
	var tree []string
	if root, err := filepath.EvalSymlinks(abs); err == nil {
		if info, err := os.Stat(root); err == nil && info.IsDir() {
			tree = append(tree, walkDirs(root, true)...)
			if data, err := resolveBundleDir(abs); err == nil && data != root {
				tree = append(tree, walkDirs(data, false)...)
			}
		}
	}
	for _, d := range tree {
		want[d] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.parents[parent] == nil {
		w.parents[parent] = map[string]map[string]bool{}
	}
	if w.parents[parent][base] == nil {
		w.parents[parent][base] = map[string]bool{}
	}
	w.parents[parent][base][src.Name] = true
	if err := w.addLocked(parent); err != nil {
		return fmt.Errorf("bundle %s: watch %s: %w", src.Name, parent, err)
	}
	old := w.owned[src.Name]
	for d := range want {
		if w.dirs[d] == nil {
			w.dirs[d] = map[string]bool{}
		}
		if !w.dirs[d][src.Name] {
			if err := w.addLocked(d); err != nil {
				if !errors.Is(err, fs.ErrNotExist) {
					w.log.Warn("cannot watch a bundle directory", "bundle", src.Name, "dir", d, "error", err)
				}
				continue
			}
			w.dirs[d][src.Name] = true
		}
	}
	for d := range old {
		if want[d] {
			continue
		}
		delete(w.dirs[d], src.Name)
		if len(w.dirs[d]) == 0 {
			delete(w.dirs, d)
			if !w.isParentLocked(d) {
				w.fsw.Remove(d) // it may be gone already
			}
		}
	}
	w.owned[src.Name] = want
	return nil
}

func (w *Watcher) addLocked(dir string) error { return w.fsw.Add(dir) }

func (w *Watcher) isParentLocked(d string) bool { _, ok := w.parents[d]; return ok }

// walkDirs lists root and every directory below it. With skipK8s the hidden
// ..<timestamp> directories of a ConfigMap volume are left out (they are
// watched through ..data).
func walkDirs(root string, skipK8s bool) []string {
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		if p != root && skipK8s && strings.HasPrefix(d.Name(), "..") {
			return filepath.SkipDir
		}
		out = append(out, p)
		return nil
	})
	return out
}
