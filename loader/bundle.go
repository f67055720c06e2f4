package loader

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/loader/filter"

	"github.com/verdict-authz/verdict/loader/acl"
)

// Source says where a bundle comes from.
type Source struct {
	// Name identifies the bundle in revisions, status and logs.
	Name string
	// Location is a directory or .tar.gz path (or a label for FS sources).
	Location string
	// FS, when set, is read instead of Location (the embedded demo bundle).
	FS fs.FS
	// Tarball, when set, is a downloaded .tar.gz read instead of Location
	// (a remote bundle: Location is its URL).
	Tarball []byte
	// ETag is the HTTP entity tag the Tarball was downloaded with.
	ETag string
	// Verification, when set, requires the bundle to carry a valid signature
	// in OPA's format (.signatures.json) made with one of its keys.
	Verification *bundle.VerificationConfig
}

// IsRemote reports whether the source is an http(s) URL, polled rather than
// read from disk.
func (s Source) IsRemote() bool {
	return s.FS == nil && (strings.HasPrefix(s.Location, "https://") || strings.HasPrefix(s.Location, "http://"))
}

// ParseSource reads a --bundle argument: PATH or NAME=PATH. Without a name
// the bundle is named after its file or directory.
func ParseSource(arg string) (Source, error) {
	name, loc, found := strings.Cut(arg, "=")
	if !found || !isBundleName(name) {
		name, loc = "", arg
	}
	if loc == "" {
		return Source{}, errors.New("bundle path is empty")
	}
	if name == "" {
		base := filepath.Base(filepath.Clean(loc))
		name = strings.TrimSuffix(strings.TrimSuffix(base, ".gz"), ".tar")
		name = strings.TrimSuffix(name, ".tgz")
	}
	return Source{Name: name, Location: loc}, nil
}

func isBundleName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// Bundle is a read, parsed and validated bundle.
type Bundle struct {
	Source   Source
	Revision string
	// Roots are the data paths the bundle owns ("" for everything).
	Roots []string
	// Doc is what the bundle's verdict.catalog and verdict.tenants declare.
	Doc *acl.Document
	// Data is the rest of the bundle's data, handed to Rego unchanged.
	Data map[string]any
	// Modules are the bundle's parsed Rego modules, by file name.
	Modules map[string]*ast.Module
	// Warnings are problems that do not reject the bundle.
	Warnings []acl.Problem
	// Digest is a SHA-256 over every file's path and content, as read: two
	// reads with the same digest hold the same bundle.
	Digest string
	// aclData is the bundle's verdict.catalog and verdict.tenants as
	// decoded (see ACLData), until the bundle is installed.
	aclData atomic.Pointer[map[string]any]
	// dataFiles are the bundle's data files as read, compressed, from
	// which ACLData decodes them again once aclData is dropped.
	dataFiles []*dataFile
	// files names the data file a data path comes from, for problems
	// found when bundles are assembled together.
	files acl.FileResolver
}

// dataFile is a data file of a bundle as read.
type dataFile struct {
	url, path string
	// deflated is the file's content compressed with DEFLATE: JSON shrinks
	// to a fifth, and it is only read again for lint rules.
	deflated []byte
	// problems are the file's duplicate keys.
	problems []acl.Problem
}

// deflate compresses content quickly.
func deflate(content []byte) []byte {
	var out bytes.Buffer
	w, err := flate.NewWriter(&out, flate.BestSpeed)
	if err != nil {
		panic(err) // only for an invalid level
	}
	w.Write(content) // writes to a bytes.Buffer do not fail
	w.Close()
	return bytes.Clone(out.Bytes())
}

// ACLData returns the bundle's verdict.catalog and verdict.tenants as
// written, {catalog, tenants} (nil when the bundle has no verdict object):
// the input of the bundle's lint rules. Once the bundle is installed the
// decoded data is dropped (the parsed model is what the store serves), and
// ACLData decodes the data files again.
func (b *Bundle) ACLData() (map[string]any, error) {
	if m := b.aclData.Load(); m != nil {
		return *m, nil
	}
	raw, err := bundle.NewCustomReader(&memoryLoader{files: b.dataFiles}).
		WithRegoVersion(ast.RegoV1).
		WithSkipBundleVerification(true).
		Read()
	if err != nil {
		return nil, bundleError(b.Source.Name, "decode data again: %w", err)
	}
	return aclData(raw.Data), nil
}

// dropDecodedData lets the decoded verdict.catalog and verdict.tenants go
// once the bundle is installed; ACLData decodes them again when asked.
func (b *Bundle) dropDecodedData() { b.aclData.Store(nil) }

// aclData picks verdict.catalog and verdict.tenants out of a bundle's data.
func aclData(data map[string]any) map[string]any {
	verdict, ok := data["verdict"].(map[string]any)
	if !ok {
		return nil
	}
	return map[string]any{"catalog": verdict["catalog"], "tenants": verdict["tenants"]}
}

// memoryLoader hands OPA's bundle reader files kept in memory.
type memoryLoader struct {
	files []*dataFile
	next  int
}

func (l *memoryLoader) NextFile() (*bundle.Descriptor, error) {
	if l.next == len(l.files) {
		return nil, io.EOF
	}
	f := l.files[l.next]
	l.next++
	return bundle.NewDescriptor(f.url, f.path, flate.NewReader(bytes.NewReader(f.deflated))), nil
}

func (l *memoryLoader) WithFilter(filter.LoaderFilter) bundle.DirectoryLoader   { return l }
func (l *memoryLoader) WithPathFormat(bundle.PathFormat) bundle.DirectoryLoader { return l }
func (l *memoryLoader) WithSizeLimitBytes(int64) bundle.DirectoryLoader         { return l }
func (l *memoryLoader) WithFollowSymlinks(bool) bundle.DirectoryLoader          { return l }

// recordingLoader remembers the path of every file OPA's reader takes, so
// that problems can name the data file an entry came from, and checks data
// files for keys written twice and keeps them compressed — both on another
// goroutine while OPA's reader decodes: call wait before reading dataFiles.
// It also holds each file, and all of them together, to the bundle's size
// limits.
type recordingLoader struct {
	bundle.DirectoryLoader
	limits    sizeLimits
	total     int64
	files     []string
	dataFiles []*dataFile
	digest    hash.Hash
	pending   sync.WaitGroup
}

// wait waits for the data files' checks and compression, and returns the
// duplicate keys found, file by file.
func (l *recordingLoader) wait() []acl.Problem {
	l.pending.Wait()
	var out []acl.Problem
	for _, f := range l.dataFiles {
		out = append(out, f.problems...)
	}
	return out
}

func (l *recordingLoader) NextFile() (*bundle.Descriptor, error) {
	d, err := l.DirectoryLoader.NextFile()
	if err != nil || d == nil {
		return d, err
	}
	name := strings.TrimPrefix(filepath.ToSlash(d.Path()), "/")
	l.files = append(l.files, name)
	var buf bytes.Buffer
	n, err := d.Read(&buf, l.limits.file+1)
	d.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if n > l.limits.file {
		return nil, &sizeError{File: name, Limit: l.limits.file}
	}
	if l.total += n; l.total > l.limits.total {
		return nil, &sizeError{File: name, Limit: l.limits.total, Total: true}
	}
	content := buf.Bytes()
	fmt.Fprintf(l.digest, "%s\x00%d\x00", name, len(content))
	l.digest.Write(content)
	if isDataFile(name) {
		f := &dataFile{url: d.URL(), path: d.Path()}
		l.dataFiles = append(l.dataFiles, f)
		l.pending.Add(1)
		go func() { // content is only read, here and by OPA's reader
			defer l.pending.Done()
			f.problems = duplicateKeys(name, content)
			f.deflated = deflate(content)
		}()
	}
	return bundle.NewDescriptor(d.URL(), d.Path(), bytes.NewReader(content)), nil
}

// sizeLimits bound a bundle as read, decompressed: a .tar.gz of a few
// hundred bytes can claim a file of terabytes, and one of a few hundred
// kilobytes can hold gigabytes of zeros.
type sizeLimits struct {
	// file bounds one file.
	file int64
	// total bounds all the files of a bundle together; for a .tar.gz, the
	// whole archive decompressed (its tar headers too).
	total int64
}

// bundleLimits are the limits Read applies (tests lower them).
var bundleLimits = sizeLimits{file: 256 << 20, total: 512 << 20}

// sizeError is a bundle, or a file of it, larger than verdict reads.
type sizeError struct {
	// File is the file that is too large, or, for the total, the file
	// being read when it was reached ("" when it is not known).
	File string
	// Limit is the limit exceeded, in bytes.
	Limit int64
	// Total: the limit is the one for the whole bundle.
	Total bool
}

func (e *sizeError) Error() string {
	switch {
	case !e.Total:
		return fmt.Sprintf("read failed on %s: the file is larger than %s, the limit for one file of a bundle", e.File, formatBytes(e.Limit))
	case e.File != "":
		return fmt.Sprintf("the bundle's files exceed %s in all, the limit for one bundle (reached at %s)", formatBytes(e.Limit), e.File)
	default:
		return fmt.Sprintf("the archive decompresses to more than %s, the limit for one bundle", formatBytes(e.Limit))
	}
}

func formatBytes(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

func isDataFile(name string) bool {
	switch path.Base(name) {
	case "data.json", "data.yaml", "data.yml":
		return true
	}
	return false
}

// Read reads and validates one bundle. A *acl.ValidationError lists every
// problem with the file and entry it came from.
func Read(src Source) (*Bundle, error) {
	for attempt := 1; ; attempt++ {
		before := localDir(src)
		b, err := readOnce(src)
		after := localDir(src)
		if before == after {
			return b, err
		}
		// The location was re-pointed while it was read (a ConfigMap ..data
		// swap, ln -sfn): what was read may be an old version being deleted,
		// only partly there. Read the new target instead.
		if attempt == maxStableReads {
			return nil, bundleError(src.Name, "%s kept changing while it was read", src.Location)
		}
	}
}

// maxStableReads bounds how often Read starts over because the bundle's
// directory was swapped under it.
const maxStableReads = 5

// localDir is the directory a local directory source resolves to now, or ""
// for other sources (and for a location that cannot be resolved).
func localDir(src Source) string {
	if src.FS != nil || src.Tarball != nil || src.IsRemote() {
		return ""
	}
	dir, err := resolveBundleDir(src.Location)
	if err != nil {
		return ""
	}
	return dir
}

// readOnce reads and validates the bundle as its location resolves now.
func readOnce(src Source) (*Bundle, error) {
	limits := bundleLimits
	dl, closeFn, err := openSource(src, limits)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	rec := &recordingLoader{DirectoryLoader: dl, limits: limits, digest: sha256.New()}
	reader := bundle.NewCustomReader(rec).
		WithRegoVersion(ast.RegoV1).
		WithProcessAnnotations(true).
		WithSizeLimitBytes(limits.file)
	if src.Verification != nil {
		reader = reader.WithBundleVerificationConfig(src.Verification)
	} else {
		reader = reader.WithSkipBundleVerification(true)
	}
	raw, err := reader.Read()
	duplicates := rec.wait()
	if err != nil {
		if se := rec.dataSyntaxError(err); se != nil {
			err = se
		}
		return nil, &BundleError{Bundle: src.Name, Err: err}
	}
	b := &Bundle{Source: src, Revision: raw.Manifest.Revision, Roots: []string{""}, Data: raw.Data, Modules: map[string]*ast.Module{},
		Digest: hex.EncodeToString(rec.digest.Sum(nil)), dataFiles: rec.dataFiles}
	if raw.Manifest.Roots != nil {
		b.Roots = *raw.Manifest.Roots
	}
	if b.Data == nil {
		b.Data = map[string]any{}
	}
	for _, m := range raw.Modules {
		b.Modules[moduleName(src, m)] = m.Parsed
	}
	var ps acl.Problems
	for _, p := range duplicates {
		ps.AddProblem(p)
	}
	b.checkRoots(&ps)
	files := dataFileResolver(rec.files)
	b.files = files
	if v, ok := b.Data["verdict"]; ok {
		if verdict, ok := v.(map[string]any); ok {
			decoded := aclData(b.Data)
			b.aclData.Store(&decoded)
			b.Doc = acl.Parse(verdict, files, &ps)
			rest := make(map[string]any, len(verdict))
			for k, v := range verdict {
				if k != "catalog" && k != "tenants" {
					rest[k] = v
				}
			}
			if len(rest) > 0 {
				b.Data["verdict"] = rest
			} else {
				delete(b.Data, "verdict")
			}
		}
	}
	if b.Doc == nil {
		b.Doc = acl.NewDocument()
	}
	b.Warnings = ps.Warnings()
	if err := ps.Err(); err != nil {
		return nil, &BundleError{Bundle: src.Name, Err: err}
	}
	return b, nil
}

func moduleName(src Source, m bundle.ModuleFile) string {
	p := strings.TrimPrefix(filepath.ToSlash(m.Path), "/")
	return src.Name + "/" + p
}

// openSource opens the loader of the source's files, each held to
// limits.file (OPA's tarball loader checks the size a tar header gives
// before it allocates for the file).
func openSource(src Source, limits sizeLimits) (bundle.DirectoryLoader, func(), error) {
	if src.FS != nil {
		dl, err := bundle.NewFSLoader(src.FS)
		if err != nil {
			return nil, nil, &BundleError{Bundle: src.Name, Err: err}
		}
		return dl.WithSizeLimitBytes(limits.file), func() {}, nil
	}
	if src.Tarball != nil {
		archive, closeFn := boundArchive(bytes.NewReader(src.Tarball), limits.total)
		return bundle.NewTarballLoaderWithBaseURL(archive, src.Location).WithSizeLimitBytes(limits.file), closeFn, nil
	}
	if src.IsRemote() {
		return nil, nil, bundleError(src.Name, "%s has not been downloaded", src.Location)
	}
	dir, err := resolveBundleDir(src.Location)
	if err != nil {
		return nil, nil, &BundleError{Bundle: src.Name, Err: err}
	}
	info, err := os.Stat(dir)
	if err != nil {
		return nil, nil, &BundleError{Bundle: src.Name, Err: err}
	}
	if info.IsDir() {
		return newDirLoader(dir).WithFilter(skipEditorFiles).WithSizeLimitBytes(limits.file), func() {}, nil
	}
	f, err := os.Open(src.Location)
	if err != nil {
		return nil, nil, &BundleError{Bundle: src.Name, Err: err}
	}
	var magic [2]byte
	if n, _ := io.ReadFull(f, magic[:]); n < 2 || magic != [2]byte{0x1f, 0x8b} {
		f.Close()
		return nil, nil, bundleError(src.Name, "%s is neither a directory nor a .tar.gz (it has no gzip header): a bundle is a directory "+
			"(the one holding verdict/, e.g. verdict/tenants/<code>/data.yaml) or a .tar.gz of one; give the bundle's directory, not one of its files",
			src.Location)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, &BundleError{Bundle: src.Name, Err: err}
	}
	archive, closeArchive := boundArchive(f, limits.total)
	return bundle.NewTarballLoaderWithBaseURL(archive, src.Location).WithSizeLimitBytes(limits.file), func() {
		closeArchive()
		f.Close()
	}, nil
}

// boundArchive hands OPA's tarball loader the .tar.gz r with its
// decompressed size bounded: OPA's loader reads the whole archive before it
// returns the first file and bounds each file only, so r is decompressed
// here, at most limit bytes of it, and handed over gzipped again without
// compression (stored blocks, cheap to write and to read). Past the limit
// the loader reads a *sizeError. Call the function returned once the loader
// is done with the archive.
func boundArchive(r io.Reader, limit int64) (io.Reader, func()) {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(regzip(pw, r, limit))
	}()
	return pr, func() {
		pr.Close() // a write the loader will not read fails, and the goroutine ends
		<-done
	}
}

// regzip writes to w, gzipped without compression, what the .tar.gz r
// decompresses to, and fails past limit bytes.
func regzip(w io.Writer, r io.Reader, limit int64) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return err
	}
	zw, err := gzip.NewWriterLevel(w, gzip.NoCompression)
	if err != nil {
		return err
	}
	n, err := io.Copy(zw, io.LimitReader(zr, limit+1))
	if err != nil {
		return err
	}
	if n > limit {
		return &sizeError{Limit: limit, Total: true}
	}
	return zw.Close()
}

// dirLoader reads a bundle directory as OPA's directory loader does — files
// in lexical order, each path relative to the directory with a leading "/",
// the URL the directory joined with the path — except that
//   - a symlink to a directory is read as the directory (OPA's walk lists it
//     as a file and fails reading it); a symlink to a directory enclosing it
//     is an error;
//   - the size limit applies to the file a symlink points to (OPA's checks
//     the link);
//   - a fifo, socket or device is an error if OPA's reader would read a
//     file of its name (isBundleFile), and is left out otherwise (OPA's
//     loader would read it, and block or read without end); a symlink that
//     cannot be followed is an error (it may stand for a directory), unless
//     the filter leaves it out (an editor's lock: skipEditorFiles).
//
// Paths are always chrooted (WithPathFormat is ignored) and symlinks always
// followed (WithFollowSymlinks is ignored).
type dirLoader struct {
	root   string
	filter filter.LoaderFilter
	limit  int64
	listed bool
	files  []listedFile
	next   int
}

// listedFile is a file of a bundle directory: its path on disk and its
// slash-separated path in the bundle.
type listedFile struct{ path, rel string }

func newDirLoader(root string) *dirLoader { return &dirLoader{root: root} }

func (d *dirLoader) WithFilter(f filter.LoaderFilter) bundle.DirectoryLoader { d.filter = f; return d }
func (d *dirLoader) WithPathFormat(bundle.PathFormat) bundle.DirectoryLoader { return d }
func (d *dirLoader) WithSizeLimitBytes(n int64) bundle.DirectoryLoader       { d.limit = n; return d }
func (d *dirLoader) WithFollowSymlinks(bool) bundle.DirectoryLoader          { return d }

func (d *dirLoader) NextFile() (*bundle.Descriptor, error) {
	if !d.listed {
		d.listed = true
		root, err := filepath.EvalSymlinks(d.root)
		if err == nil {
			err = d.walk(d.root, "", []string{root})
		}
		if err != nil {
			return nil, fmt.Errorf("failed to list files: %w", err)
		}
	}
	for d.next < len(d.files) {
		f := d.files[d.next]
		d.next++
		fh, err := os.Open(f.path)
		if errors.Is(err, fs.ErrNotExist) && !isBundleFile(f.rel) {
			continue // gone since it was listed: a swap file, say
		}
		if err != nil {
			return nil, fmt.Errorf("read failed on %s: %w", f.rel, err)
		}
		p := "/" + f.rel
		return bundle.NewDescriptor(filepath.Join(d.root, p), p, fh).WithCloser(fh), nil
	}
	return nil, io.EOF
}

// walk lists the files under dir, whose path in the bundle is rel ("" for
// the root). enclosing holds the real paths of dir and of the directories
// enclosing it.
func (d *dirLoader) walk(dir, rel string, enclosing []string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p, r := filepath.Join(dir, e.Name()), path.Join(rel, e.Name())
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since the directory was read
		}
		if err != nil {
			return err
		}
		if d.filter != nil && d.filter(filepath.ToSlash(p), info, strings.Count(r, "/")+1) {
			continue
		}
		realPath := filepath.Join(enclosing[len(enclosing)-1], e.Name())
		if info.Mode()&fs.ModeSymlink != 0 {
			target, err := os.Stat(p)
			if err != nil {
				// Not left out even when OPA's reader would not read a file
				// of this name: it may stand for a directory of data.
				if errors.Is(err, fs.ErrNotExist) {
					link, _ := os.Readlink(p)
					return fmt.Errorf("read failed on %s: a symlink to %s, which does not exist", r, link)
				}
				return fmt.Errorf("read failed on %s: %w", r, err)
			}
			if realPath, err = filepath.EvalSymlinks(p); err != nil {
				return fmt.Errorf("read failed on %s: %w", r, err)
			}
			info = target
		}
		switch {
		case info.IsDir():
			if slices.Contains(enclosing, realPath) {
				return fmt.Errorf("read failed on %s: a symlink to %s, a directory that encloses it", r, realPath)
			}
			// enclosing is not appended to again before the call returns.
			if err := d.walk(p, r, append(enclosing, realPath)); err != nil {
				return err
			}
		case !info.Mode().IsRegular():
			if isBundleFile(r) {
				return fmt.Errorf("read failed on %s: not a regular file (%s)", r, info.Mode().Type())
			}
		case d.limit > 0 && info.Size() > d.limit:
			return &sizeError{File: r, Limit: d.limit}
		default:
			d.files = append(d.files, listedFile{path: p, rel: r})
		}
	}
	return nil
}

// isBundleFile reports whether OPA's bundle reader reads a file of this name
// (every other file is only part of the bundle's digest and signatures).
func isBundleFile(name string) bool {
	base := path.Base(name)
	switch base {
	case "data.json", "data.yaml", "data.yml", "patch.json", ".signatures.json", "policy.wasm", "plan.json", "plan.pb":
		return true
	}
	return strings.HasSuffix(base, ".rego") || strings.HasSuffix(base, ".manifest") || strings.HasSuffix(base, ".manifest.pb")
}

// skipEditorFiles is the filter of a bundle directory: it leaves out the
// files editors write beside the ones they edit.
func skipEditorFiles(_ string, info fs.FileInfo, _ int) bool {
	return !info.IsDir() && isEditorFile(info.Name())
}

// isEditorFile reports whether a file name is an editor's lock, swap, backup
// or auto-save file, or write probe. Emacs's lock, .#data.yaml, is a
// dangling symlink, and .#conditions.rego would be read as a module.
func isEditorFile(name string) bool {
	n := len(name)
	switch {
	case strings.HasPrefix(name, ".#"): // Emacs: lock
	case n > 1 && name[0] == '#' && name[n-1] == '#': // Emacs: auto-save
	case strings.HasSuffix(name, "~"): // Emacs, Vim and others: backup
	case name == "4913": // Vim: can it write in the directory?
	case strings.HasSuffix(name, ".swp"): // Vim: swap
	case n > 5 && name[0] == '.' && name[n-4:n-1] == ".sw" && name[n-1] >= 'a' && name[n-1] <= 'p': // Vim: .swo, .swn…
	case strings.HasSuffix(name, "___jb_tmp___"), strings.HasSuffix(name, "___jb_old___"): // JetBrains: safe write
	default:
		return false
	}
	return true
}

// dataFileResolver maps a data path to the deepest data file whose
// directory holds it.
func dataFileResolver(files []string) acl.FileResolver {
	type dataFile struct {
		dir  []string
		path string
	}
	var data []dataFile
	for _, f := range files {
		if !isDataFile(f) {
			continue
		}
		dir := path.Dir(f)
		var segs []string
		if dir != "." && dir != "/" {
			segs = strings.Split(strings.Trim(dir, "/"), "/")
		}
		data = append(data, dataFile{dir: segs, path: f})
	}
	sort.Slice(data, func(i, j int) bool { return len(data[i].dir) > len(data[j].dir) })
	return func(dataPath []string) (string, int) {
		for _, d := range data {
			if len(d.dir) <= len(dataPath) && slices.Equal(d.dir, dataPath[:len(d.dir)]) {
				return d.path, len(d.dir)
			}
		}
		return "", 0
	}
}

// checkRoots reports data and packages outside the manifest's roots.
func (b *Bundle) checkRoots(ps *acl.Problems) {
	for _, r := range b.Roots {
		if r == "" {
			return
		}
	}
	for name, m := range b.Modules {
		p := packagePath(m)
		if !underAnyRoot(p, b.Roots) {
			ps.AddProblem(acl.Problem{File: strings.TrimPrefix(name, b.Source.Name+"/"), Message: fmt.Sprintf("package %s is outside the bundle's roots %v", strings.ReplaceAll(p, "/", "."), b.Roots)})
		}
	}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if underAnyRoot(prefix, b.Roots) {
			return
		}
		obj, ok := v.(map[string]any)
		if !ok || !isRootAncestor(prefix, b.Roots) {
			ps.AddProblem(acl.Problem{Message: fmt.Sprintf("data at %s is outside the bundle's roots %v", strings.ReplaceAll(prefix, "/", "."), b.Roots)})
			return
		}
		for k, child := range obj {
			walk(strings.TrimPrefix(prefix+"/"+k, "/"), child)
		}
	}
	for k, v := range b.Data {
		walk(k, v)
	}
}

func packagePath(m *ast.Module) string {
	parts := make([]string, 0, len(m.Package.Path))
	for _, t := range m.Package.Path[1:] {
		s, ok := t.Value.(ast.String)
		if !ok {
			break
		}
		parts = append(parts, string(s))
	}
	return strings.Join(parts, "/")
}

// underAnyRoot reports whether p (slash-separated) lies at or below a root.
func underAnyRoot(p string, roots []string) bool {
	for _, r := range roots {
		r = strings.Trim(r, "/")
		if r == "" || p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

// isRootAncestor reports whether some root lies below p.
func isRootAncestor(p string, roots []string) bool {
	for _, r := range roots {
		if strings.HasPrefix(strings.Trim(r, "/")+"/", p+"/") {
			return true
		}
	}
	return false
}

// rootsOverlap reports whether two bundles' roots overlap.
func rootsOverlap(a, b []string) (string, string, bool) {
	for _, x := range a {
		for _, y := range b {
			x, y := strings.Trim(x, "/"), strings.Trim(y, "/")
			if x == "" || y == "" || x == y || strings.HasPrefix(x, y+"/") || strings.HasPrefix(y, x+"/") {
				return x, y, true
			}
		}
	}
	return "", "", false
}
