package loader

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/loader/filter"
)

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

func (d *dirLoader) WithSizeLimitBytes(n int64) bundle.DirectoryLoader { d.limit = n; return d }

func (d *dirLoader) WithFollowSymlinks(bool) bundle.DirectoryLoader { return d }

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
