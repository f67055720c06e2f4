package loader

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/loader/generation"
	"github.com/verdict-authz/verdict/loader/store"

	policy "github.com/verdict-authz/verdict/rego"
)

// LoadAll reads every source and installs them together as one change. Any
// source that cannot be read, or a set that does not fit together, fails the
// whole load: nothing is installed and the error names every problem. The
// status lists each source either way.
func (l *Loader) LoadAll(ctx context.Context, sources []Source) (*generation.Generation, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.loadSetLocked(ctx, sources, false)
}

// LoadAvailable is LoadAll for a server that watches its bundles: the
// sources that can be read are installed together even when others cannot;
// those are reported failed (the server is not ready) until they are fixed.
// The error names every problem.
func (l *Loader) LoadAvailable(ctx context.Context, sources []Source) (*generation.Generation, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.loadSetLocked(ctx, sources, true)
}

func (l *Loader) loadSetLocked(ctx context.Context, sources []Source, partial bool) (*generation.Generation, error) {
	started := time.Now()
	for _, src := range sources {
		l.sources[src.Name] = src
		l.status.Track(src)
	}
	bundles, readErr := ReadAll(sources)
	for _, b := range bundles {
		for _, w := range b.Warnings {
			l.log.Warn("bundle warning", "bundle", b.Source.Name, "problem", w.String())
		}
	}
	if readErr != nil {
		read := map[string]bool{}
		for _, b := range bundles {
			read[b.Source.Name] = true
		}
		for _, src := range sources {
			if !read[src.Name] {
				l.failed[src.Name] = true
				l.notify(&Event{Subject: bundleSubject(src.Name), Change: KindCreate, Started: started,
					Err: errorFor(src.Name, readErr), Bundle: &BundleChange{Sources: []Source{src}, Installed: l.installedCopy()}})
			}
		}
		if !partial || len(bundles) == 0 {
			return nil, readErr
		}
	}
	readable := make([]Source, len(bundles))
	for i, b := range bundles {
		readable[i] = b.Source
	}
	if partial {
		gen, err := l.applyAvailableLocked(ctx, readable, bundles, started)
		return gen, errors.Join(readErr, err)
	}
	gen, err := l.applyLocked(ctx, KindCreate, readable, bundles, started)
	return gen, errors.Join(readErr, err)
}

// applyAvailableLocked installs the bundles as one change, or as many of
// them as fit together: when the change is rejected, the bundles its errors
// name are left out, each rejected with its own problems, and the rest are
// tried again, until a set is accepted or none is left. A problem that names
// no bundle (a lint rule's verdict, say) rejects every bundle of the set it
// was found in, as LoadAll does.
func (l *Loader) applyAvailableLocked(ctx context.Context, sources []Source, next []*Bundle, started time.Time) (*generation.Generation, error) {
	var left []error // the problems of the bundles left out, in order
	for {
		ev, snap, err := l.processLocked(ctx, KindCreate, sources, next, started)
		if err == nil {
			return l.installLocked(ev, snap, next, started), errors.Join(left...)
		}
		own := blame(err, next)
		if len(own) == 0 {
			l.rejectLocked(ev, err, started)
			return nil, errors.Join(append(left, err)...)
		}
		var keepSources []Source
		var keep []*Bundle
		for i, b := range next {
			name := b.Source.Name
			if own[name] == nil {
				keepSources, keep = append(keepSources, sources[i]), append(keep, b)
				continue
			}
			l.failed[name] = true
			l.notify(&Event{Subject: bundleSubject(name), Change: KindCreate, Started: started, Err: own[name],
				Bundle: &BundleChange{Sources: []Source{sources[i]}, Next: map[string]*Bundle{name: b}, Installed: l.installedCopy()}})
			left = append(left, own[name])
		}
		if len(keep) == 0 {
			return nil, errors.Join(left...)
		}
		sources, next = keepSources, keep
	}
}

// blame splits an error of a change that loads bundles into each bundle's
// own problems, keeping the processor that found them: a *BundleError is
// its bundle's, a refused module or a Rego compile error is the bundle's
// whose module it is in (when one bundle has a module of that file name).
// It returns nil when some problem belongs to none of them, or to more than
// one: then the bundles cannot be told apart.
func blame(err error, bundles []*Bundle) map[string]error {
	var pe *ProcessorError
	inner := err
	if p, ok := err.(*ProcessorError); ok {
		pe, inner = p, p.Err
	}
	parts := []error{inner}
	if joined, ok := inner.(interface{ Unwrap() []error }); ok {
		parts = joined.Unwrap()
	}
	// The bundle each Rego file name belongs to ("" when several have it).
	fileOwner := map[string]string{}
	for _, b := range bundles {
		for _, m := range b.Modules {
			if m == nil || m.Package == nil || m.Package.Location == nil {
				continue
			}
			f := m.Package.Location.File
			if owner, dup := fileOwner[f]; dup && owner != b.Source.Name {
				fileOwner[f] = ""
			} else {
				fileOwner[f] = b.Source.Name
			}
		}
	}
	mine := map[string][]error{}
	for _, part := range parts {
		if name := namedBundle(part, bundles); name != "" {
			mine[name] = append(mine[name], part)
			continue
		}
		var astErrs ast.Errors
		if !errors.As(part, &astErrs) || len(astErrs) == 0 {
			return nil
		}
		byBundle := map[string]ast.Errors{}
		for _, e := range astErrs {
			if e.Location == nil || fileOwner[e.Location.File] == "" {
				return nil
			}
			owner := fileOwner[e.Location.File]
			byBundle[owner] = append(byBundle[owner], e)
		}
		for name, errs := range byBundle {
			mine[name] = append(mine[name], bundleError(name, "compile policy: %w", errs))
		}
	}
	out := make(map[string]error, len(mine))
	for name, errs := range mine {
		var e error = errors.Join(errs...)
		if len(errs) == 1 {
			e = errs[0]
		}
		if pe != nil {
			e = &ProcessorError{Processor: pe.Processor, Err: e}
		}
		out[name] = e
	}
	return out
}

// namedBundle returns the name of the bundle whose problem err is (a
// *BundleError, or a *policy.ModuleError about one of its modules), or
// "".
func namedBundle(err error, bundles []*Bundle) string {
	if be, ok := errors.AsType[*BundleError](err); ok {
		return be.Bundle
	}
	if me, ok := errors.AsType[*policy.ModuleError](err); ok {
		for _, b := range bundles {
			if _, ok := b.Modules[me.Module]; ok {
				return b.Source.Name
			}
		}
	}
	return ""
}

// errorFor picks the part of a joined error that is about one bundle.
func errorFor(name string, err error) error {
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return err
	}
	var mine []error
	for _, e := range joined.Unwrap() {
		if be, ok := errors.AsType[*BundleError](e); ok && be.Bundle == name {
			mine = append(mine, e)
		}
	}
	if len(mine) == 0 {
		return err
	}
	return errors.Join(mine...)
}

// Reload reads one source again and installs it if it changed: a new or
// changed bundle is validated, assembled with the other served bundles,
// linted and stored; a source that is gone is removed. A version that is
// rejected leaves the last good one serving. While nothing has been served
// yet, every known source is loaded together instead.
func (l *Loader) Reload(ctx context.Context, src Source) error {
	return l.reload(ctx, src, true)
}

func (l *Loader) reload(ctx context.Context, src Source, retry bool) error {
	started := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sources[src.Name] = src
	l.status.Track(src)
	if l.number == 0 && len(l.sources) > 1 {
		return l.loadEveryLocked(ctx)
	}
	b, err := Read(src)
	if err != nil && !src.IsRemote() && src.FS == nil && isNotExist(src.Location) {
		err = l.removeLocked(ctx, src, started)
	} else {
		err = l.applyOneLocked(ctx, src, b, err, started)
	}
	if err == nil && retry {
		l.retryFailedLocked(ctx, src.Name)
	}
	return err
}

// Apply installs a bundle that was read elsewhere (a download), or records
// why it could not be read.
func (l *Loader) Apply(ctx context.Context, src Source, b *Bundle, readErr error) error {
	started := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sources[src.Name] = src
	l.status.Track(src)
	if l.number == 0 && len(l.sources) > 1 {
		return l.loadEveryLocked(ctx)
	}
	err := l.applyOneLocked(ctx, src, b, readErr, started)
	if err == nil {
		l.retryFailedLocked(ctx, src.Name)
	}
	return err
}

// loadEveryLocked loads every known source together: while nothing is
// served, one bundle alone may not fit (its references live in another).
func (l *Loader) loadEveryLocked(ctx context.Context) error {
	all := make([]Source, 0, len(l.sources))
	for _, s := range l.sources {
		all = append(all, s)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	_, err := l.loadSetLocked(ctx, all, true)
	return err
}

// ReportDownloadError records that a remote source could not be fetched;
// the last good copy keeps serving.
func (l *Loader) ReportDownloadError(src Source, err error) {
	l.mu.Lock()
	installed := l.installedCopy()
	l.mu.Unlock()
	l.notify(&Event{Subject: bundleSubject(src.Name), Change: KindUpdate, Started: time.Now(),
		Err: &DownloadError{Err: err}, Bundle: &BundleChange{Sources: []Source{src}, Installed: installed}})
}

// DownloadError is a failure to fetch a remote bundle.
type DownloadError struct{ Err error }

func (e *DownloadError) Error() string { return "download: " + e.Err.Error() }
func (e *DownloadError) Unwrap() error { return e.Err }

// retryFailedLocked reloads, once each, the bundles whose newest version
// was rejected: a change to one bundle (a package added to the catalog) or a
// run-time registration (a service or permittable group) can make another
// bundle's rejected version fit. A local bundle is read again from disk; a
// remote one from the copy downloaded last (it is not downloaded again: its
// server answers 304 to the ETag of that copy), and its Remote is told when
// that copy is accepted.
func (l *Loader) retryFailedLocked(ctx context.Context, except string) {
	var names []string
	for name := range l.failed {
		if name != except {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		src, ok := l.sources[name]
		if !ok {
			continue
		}
		b, err := Read(src)
		if err != nil {
			continue // still unreadable (or never downloaded): its status already says why
		}
		if err := l.applyOneLocked(ctx, src, b, nil, time.Now()); err == nil {
			l.log.Info("rejected bundle accepted after another change", "bundle", name)
		}
	}
}

// acceptedLocked tells the Remote of a remote source that src, a version
// of it, is now served.
func (l *Loader) acceptedLocked(src Source) {
	if !src.IsRemote() {
		return
	}
	r := l.remotes[src.Name]
	if r == nil {
		return
	}
	if err := r.Accepted(src); err != nil {
		l.log.Warn("cannot persist the remote bundle", "bundle", src.Name, "error", err)
	}
}

func isNotExist(loc string) bool {
	_, err := os.Lstat(loc)
	return errors.Is(err, fs.ErrNotExist)
}

func bundleSubject(name string) Subject { return Subject{Type: SubjectBundle, Name: name} }

func (l *Loader) applyOneLocked(ctx context.Context, src Source, b *Bundle, readErr error, started time.Time) error {
	kind := KindUpdate
	if l.bundles[src.Name] == nil {
		kind = KindCreate
	}
	if readErr != nil {
		l.failed[src.Name] = true
		l.notify(&Event{Subject: bundleSubject(src.Name), Change: kind, Started: started, Err: readErr,
			Bundle: &BundleChange{Sources: []Source{src}, Installed: l.installedCopy()}})
		return readErr
	}
	for _, w := range b.Warnings {
		l.log.Warn("bundle warning", "bundle", src.Name, "problem", w.String())
	}
	_, err := l.applyLocked(ctx, kind, []Source{src}, []*Bundle{b}, started)
	return err
}

func (l *Loader) removeLocked(ctx context.Context, src Source, started time.Time) error {
	if l.bundles[src.Name] == nil {
		// Never served (or already removed): nothing to take out.
		delete(l.failed, src.Name)
		l.notify(&Event{Subject: bundleSubject(src.Name), Change: KindDelete, Started: started,
			Bundle: &BundleChange{Sources: []Source{src}, Installed: l.installedCopy()}})
		return nil
	}
	_, err := l.applyLocked(ctx, KindDelete, []Source{src}, nil, started)
	return err
}

func (l *Loader) installedCopy() map[string]*Bundle {
	out := make(map[string]*Bundle, len(l.bundles))
	for k, v := range l.bundles {
		out[k] = v
	}
	return out
}

// applyLocked runs one change through the pipeline and, when it stored
// something, installs the next generation.
func (l *Loader) applyLocked(ctx context.Context, kind Kind, sources []Source, next []*Bundle, started time.Time) (*generation.Generation, error) {
	ev, snap, err := l.processLocked(ctx, kind, sources, next, started)
	if err != nil {
		l.rejectLocked(ev, err, started)
		return nil, err
	}
	return l.installLocked(ev, snap, next, started), nil
}

// processLocked runs one change through the pipeline; a change that is
// rejected leaves nothing behind (see rejectLocked).
func (l *Loader) processLocked(ctx context.Context, kind Kind, sources []Source, next []*Bundle, started time.Time) (*Event, *store.Snapshot, error) {
	names := make([]string, len(sources))
	for i, s := range sources {
		names[i] = s.Name
	}
	change := &BundleChange{Sources: sources, Next: map[string]*Bundle{}, Installed: l.installedCopy()}
	for _, b := range next {
		change.Next[b.Source.Name] = b
	}
	ev := &Event{Kind: kind, Subject: bundleSubject(strings.Join(names, ",")), Bundle: change, Started: started}
	snap, err := l.pipeline.Process(ctx, ev)
	ev.Change = kind
	return ev, snap, err
}

// rejectLocked records that a change was rejected: every bundle of it failed.
func (l *Loader) rejectLocked(ev *Event, err error, started time.Time) {
	for _, s := range ev.Bundle.Sources {
		l.failed[s.Name] = true
	}
	ev.Err = err
	ev.Duration = time.Since(started)
	l.notify(ev)
}

// installGenerationLocked installs the next generation into the engine:
// facts and policy as given, the fleet state l holds, numbered after the
// last. Every change that installs (bundles, run-time changes, the fleet's
// state) goes through here. l.mu must be held.
func (l *Loader) installGenerationLocked(facts *store.Snapshot, pol *policy.Policy, revisions map[string]string, loadedAt time.Time) *generation.Generation {
	l.number++
	gen := &generation.Generation{
		Number:    l.number,
		Facts:     facts,
		Policy:    pol,
		LoadedAt:  loadedAt,
		Revisions: revisions,
		State:     l.genState,
	}
	l.engine.Install(gen)
	l.installed.Store(gen)
	l.status.setGeneration(gen.Number)
	return gen
}

// installLocked installs what a change that was accepted stored.
func (l *Loader) installLocked(ev *Event, snap *store.Snapshot, next []*Bundle, started time.Time) *generation.Generation {
	change := ev.Bundle
	for _, s := range change.Sources {
		delete(l.failed, s.Name)
	}
	var gen *generation.Generation
	if change.Stored {
		installed := change.Assembly.Bundles
		bundles := make(map[string]*Bundle, len(installed))
		revisions := make(map[string]string, len(installed))
		for _, b := range installed {
			bundles[b.Source.Name] = b
			revisions[b.Source.Name] = b.Revision
		}
		gen = l.installGenerationLocked(snap, change.Assembly.Policy, revisions, time.Now())
		l.bundles = bundles
		l.publishWarningsLocked()
		stored := snap.Read()
		for _, b := range next {
			b.dropDecodedData()
			b.shareStoredTenants(stored)
		}
		ev.Generation = gen.Number
	} else {
		gen = l.installed.Load()
	}
	ev.Duration = time.Since(started)
	for _, b := range next {
		l.acceptedLocked(b.Source)
	}
	l.notify(ev)
	return gen
}

// publishWarningsLocked shows every served bundle's warnings in the status:
// what reading it found (unknown fields) and its statements whose actions
// match no action of the services served now, registrations included. It
// runs after every installed change, so a registration that brings an
// action in clears a warning and one that takes an action away raises one
// (a registration never fails because of a bundle's statements). A
// vocabulary warning is logged when it first appears.
func (l *Loader) publishWarningsLocked() {
	registered, err := l.Registered()
	if err != nil {
		l.log.Warn("cannot list the registered services to check statements' actions", "error", err)
		return
	}
	installed := make([]*Bundle, 0, len(l.bundles))
	for _, name := range slices.Sorted(maps.Keys(l.bundles)) {
		installed = append(installed, l.bundles[name])
	}
	_, vocab := vocabularyProblems(installed, effectiveServices(installed, registered), func(string) bool { return false })
	all := make(map[string][]acl.Problem, len(installed))
	warned := map[string]bool{}
	for _, b := range installed {
		name := b.Source.Name
		all[name] = append(append([]acl.Problem(nil), b.Warnings...), vocab[name]...)
		for _, w := range vocab[name] {
			key := name + "\x00" + w.String()
			if !l.warned[key] {
				l.log.Warn("bundle warning", "bundle", name, "problem", w.String())
			}
			warned[key] = true
		}
	}
	l.warned = warned
	l.status.setWarnings(all)
}

func (l *Loader) notify(ev *Event) {
	if ev.Duration == 0 {
		ev.Duration = time.Since(ev.Started)
	}
	l.pipeline.Notify(ev)
}

// String describes a change for logs.
func (c *BundleChange) String() string {
	names := make([]string, len(c.Sources))
	for i, s := range c.Sources {
		names[i] = s.Name
	}
	return fmt.Sprintf("bundles %s", strings.Join(names, ","))
}
