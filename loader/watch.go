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

// resyncInterval is how often the watcher checks that every directory of
// the watched bundles is watched (see Run).
const resyncInterval = 2 * time.Second

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
// ones created later and those a symlink in the bundle points to, and the
// directory holding each bundle location, so that a bundle replaced whole
// (rename, `ln -sfn`, a Kubernetes ConfigMap's ..data swap) or deleted is
// seen too. A directory replaced by another at its path (renamed away and
// another renamed in, or removed and recreated) is watched again. Each
// bundle's events are debounced and its reloads run one at a time, newest
// wins.
type Watcher struct {
	loader *Loader
	opts   WatchOptions
	log    *slog.Logger
	fsw    *fsnotify.Watcher
	deb    *debouncer

	// syncMu serializes sync, so that one that listed the directories
	// before a change cannot record its stale list after one that listed
	// them since.
	syncMu sync.Mutex

	mu      sync.Mutex
	sources map[string]Source
	// dirs maps a directory (real path) of a bundle's tree to the bundles
	// whose tree it belongs to.
	dirs map[string]map[string]bool
	// live maps a directory of dirs that fsnotify watches to the directory
	// it was when its watch was added. An inotify watch belongs to a
	// directory, not to its path: a directory renamed away takes it along,
	// one deleted loses it. So a directory renamed or removed is dropped
	// from live with those below it (forget), and sync watches whatever is
	// at those paths then; sync also watches again a path whose directory
	// is not the one in live (replaced, its removal not handled yet).
	live map[string]os.FileInfo
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
		live:    map[string]os.FileInfo{},
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
		if _, err := w.sync(src); err != nil {
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
	// Events can be lost in races the kernel and fsnotify leave open (a
	// directory replaced while its old watch's events are still queued):
	// look at the trees now and then, and reload a bundle whose directory
	// had to be watched again.
	check := time.NewTicker(resyncInterval)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-check.C:
			for _, src := range w.sources {
				w.resync(src)
			}
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return nil
			}
			// An overflowed queue loses events, a replaced directory's
			// among them: watch everything again and reload everything.
			w.log.Warn("bundle watcher error; reloading every watched bundle", "error", err)
			w.forget("")
			for _, src := range w.sources {
				if _, err := w.sync(src); err != nil {
					w.log.Warn("cannot watch bundle directories", "bundle", src.Name, "error", err)
				}
				w.touch(src.Name)
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
	_, wasDir := w.dirs[ev.Name]
	location := len(w.parents[dir][base]) > 0
	w.mu.Unlock()
	resync := false
	switch {
	case ev.Has(fsnotify.Create):
		info, err := os.Stat(ev.Name)
		resync = err == nil && info.IsDir() || base == k8sDataDir
	case ev.Has(fsnotify.Rename) || ev.Has(fsnotify.Remove):
		resync = wasDir || location || base == k8sDataDir
		// The watches of a directory renamed away or deleted, and of the
		// ones below it, are gone or follow the old directories: forget
		// them before sync looks at what is at their paths now (it may be
		// a new directory already, or come later with a Create).
		for name := range w.forget(ev.Name) {
			affected[name] = true
			resync = true
		}
	}
	if len(affected) == 0 {
		return
	}
	for name := range affected {
		if resync {
			// A new directory (or a bundle root that came back) is watched
			// right away, so files written into it from now on are seen;
			// whatever was written before is read by the reload below.
			w.mu.Lock()
			src := w.sources[name]
			w.mu.Unlock()
			if _, err := w.sync(src); err != nil {
				w.log.Warn("cannot watch bundle directories", "bundle", name, "error", err)
			}
		}
		w.touch(name)
	}
}

// resync syncs a bundle's watches and, when that began to watch a
// directory it was not watching, reloads the bundle: changes made there
// before the watch were not seen.
func (w *Watcher) resync(src Source) {
	rewatched, err := w.sync(src)
	if err != nil {
		w.log.Warn("cannot watch bundle directories", "bundle", src.Name, "error", err)
		return
	}
	if rewatched {
		w.log.Info("bundle directory watched again; reloading", "bundle", src.Name)
		w.touch(src.Name)
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
			w.resync(src)
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

// forget drops the watches of path and of the directories below it (of
// every directory when path is empty) and returns the bundles they served,
// and those located below path, which must be synced to watch what is
// there now.
func (w *Watcher) forget(path string) map[string]bool {
	below := func(d string) bool {
		return path == "" || d == path || strings.HasPrefix(d, path+string(filepath.Separator))
	}
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	affected := map[string]bool{}
	for d := range w.live {
		if !below(d) {
			continue
		}
		delete(w.live, d)
		w.fsw.Remove(d) // it may be gone already
		for name := range w.dirs[d] {
			affected[name] = true
		}
	}
	for p, bases := range w.parents {
		if !below(p) {
			continue
		}
		// A bundle's parent directory: sync adds it again.
		w.fsw.Remove(p)
		for _, names := range bases {
			for name := range names {
				affected[name] = true
			}
		}
	}
	return affected
}

// sync (re)computes the directories watched for a bundle: the directory
// holding its location, and for a directory bundle every directory of its
// tree (the real paths, following symlinks and a ConfigMap's ..data), and
// drops the watches it no longer needs. A directory found at a watched path
// that is not the one watched (replaced, and the removal not handled yet) is
// watched again. It reports whether it began to watch a directory of the
// tree that it was not watching — new, replaced, or whose watch was lost
// with events still in flight: what changed there before was not seen.
func (w *Watcher) sync(src Source) (rewatched bool, err error) {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	watching := map[string]bool{}
	for _, p := range w.fsw.WatchList() {
		watching[p] = true
	}
	want := map[string]os.FileInfo{}
	abs, err := filepath.Abs(src.Location)
	if err != nil {
		return false, err
	}
	parent, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return false, bundleError(src.Name, "the directory of %s: %w", src.Location, err)
	}
	base := filepath.Base(abs)
	var tree []walkedDir
	if root, err := filepath.EvalSymlinks(abs); err == nil {
		if info, err := os.Stat(root); err == nil && info.IsDir() {
			tree = append(tree, walkDirs(root, true)...)
			if data, err := resolveBundleDir(abs); err == nil && data != root {
				tree = append(tree, walkDirs(data, false)...)
			}
		}
	}
	for _, d := range tree {
		want[d.path] = d.info
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
		return false, bundleError(src.Name, "watch %s: %w", parent, err)
	}
	old := w.owned[src.Name]
	// Watches are dropped before any is added: a directory renamed within
	// the tree keeps its inotify watch, which fsnotify knows by its old
	// path and would lend to the new path.
	for d := range old {
		if _, ok := want[d]; ok {
			continue
		}
		delete(w.dirs[d], src.Name)
		if len(w.dirs[d]) == 0 {
			delete(w.dirs, d)
			delete(w.live, d)
			if !w.isParentLocked(d) {
				w.fsw.Remove(d) // it may be gone already
			}
		}
	}
	for d, info := range want {
		if watched, ok := w.live[d]; ok && !os.SameFile(watched, info) {
			delete(w.live, d)
			w.fsw.Remove(d)
		}
	}
	owned := map[string]bool{}
	for d, info := range want {
		owned[d] = true
		// Added again even when it is watched: inotify answers the same
		// watch for the same directory and a new one for a directory
		// recreated at the path, which the identity check above cannot
		// tell from the old one when the file system hands the removed
		// directory's inode number straight back (ext4 does).
		_, live := w.live[d]
		if err := w.addLocked(d); err != nil {
			delete(w.live, d)
			if !errors.Is(err, fs.ErrNotExist) {
				w.log.Warn("cannot watch a bundle directory", "bundle", src.Name, "dir", d, "error", err)
			}
			continue
		}
		if !live || !watching[d] {
			rewatched = true
		}
		w.live[d] = info
		if w.dirs[d] == nil {
			w.dirs[d] = map[string]bool{}
		}
		w.dirs[d][src.Name] = true
	}
	w.owned[src.Name] = owned
	return rewatched, nil
}

func (w *Watcher) addLocked(dir string) error { return w.fsw.Add(dir) }

func (w *Watcher) isParentLocked(d string) bool { _, ok := w.parents[d]; return ok }

// walkedDir is a directory found by walkDirs and what it was then.
type walkedDir struct {
	path string
	info os.FileInfo
}

// walkDirs lists root (a real path) and every directory below it, by their
// real paths: a symlink to a directory is followed, as the bundle reader
// reads it as the directory, and a directory reached twice (a symlink to an
// enclosing one, say) is listed once. With skipK8s the hidden ..<timestamp>
// directories and the ..data symlink of a ConfigMap volume are left out
// (they are watched through ..data).
func walkDirs(root string, skipK8s bool) []walkedDir {
	var out []walkedDir
	seen := map[string]bool{}
	var walk func(dir string)
	walk = func(dir string) {
		if seen[dir] {
			return
		}
		seen[dir] = true
		info, err := os.Stat(dir)
		if err != nil || !info.IsDir() {
			return
		}
		// Pin the directory's identity now: on Windows os.SameFile reads it
		// lazily, by path, and would compare a replacement with itself.
		os.SameFile(info, info)
		out = append(out, walkedDir{dir, info})
		entries, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range entries {
			if skipK8s && strings.HasPrefix(e.Name(), "..") {
				continue
			}
			p := filepath.Join(dir, e.Name())
			switch {
			case e.IsDir():
				walk(p)
			case e.Type()&fs.ModeSymlink != 0:
				if real, err := filepath.EvalSymlinks(p); err == nil {
					walk(real) // nothing if it is not a directory
				}
			}
		}
	}
	walk(root)
	return out
}
