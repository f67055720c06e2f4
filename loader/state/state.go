// Package state keeps verdict's run-time changes in a directory so that they
// survive a restart: services registered with PUT /v1/services/{name}
// (OpenLMIS) and delegation requests and consents (Fineract CN).
//
// Every entry is one small JSON file, written durably before the change is
// acknowledged: the bytes go to a temporary file in the same directory,
// which is fsynced, renamed over the entry's file, and then the directory
// itself is fsynced, so that after a crash (even kill -9 or a power cut) the
// file is either the old version or the new one, never half of either, and
// an acknowledged write is never lost.
//
// Layout under the state directory:
//
//	services/<name>.json                       one registered service
//	delegations/<tenant>,<application>,<group>.json
//	                                           one application's request for
//	                                           one permittable group, with the
//	                                           members' consents
//
// A key part is spelled with ASCII letters, digits, "-", "_", "~" and "."
// (not first), every other byte as %XX, and the parts are joined with ",";
// a name longer than 200 bytes is "+sha256-" and the SHA-256 of the
// spelled-out name. The encoding is injective, so two keys never share a
// file. The files' contents, not their names, are authoritative: Load
// renames a file written under an earlier verdict's name (which did not keep
// every key apart) to its name now, and reports two files holding the same
// entry.
//
// An entry that cannot be read or used is a Problem: the caller decides
// (verdict run refuses to start, since leaving out a withdrawal could give
// back access that was taken away). Quarantine moves such a file aside, to
// quarantine/<time>/, and never overwrites it.
package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Version is the format version of the files this package writes.
const Version = 1

// The subdirectories of the state directory.
const (
	ServicesDir    = "services"
	DelegationsDir = "delegations"
)

// ServiceFile is one registered service.
type ServiceFile struct {
	// Path is the file the entry was read from (not part of the file).
	Path         string    `json:"-"`
	Version      int       `json:"version"`
	Name         string    `json:"name"`
	RegisteredAt time.Time `json:"registered_at"`
	// Document is the service document as registered (routes and
	// permittable groups, the same shape as in a bundle's catalog).
	Document json.RawMessage `json:"document"`
}

// DelegationFile is what one application asked of one permittable group of
// one tenant at run time, and the members' consents.
type DelegationFile struct {
	// Path is the file the entry was read from (not part of the file).
	Path        string `json:"-"`
	Version     int    `json:"version"`
	Tenant      string `json:"tenant"`
	Application string `json:"application"`
	Group       string `json:"group"`
	// Request is the application's run-time request; nil when the request
	// was declared in the tenant's bundle and only consents were given at
	// run time.
	Request *Request `json:"request,omitempty"`
	// Consents maps a member to its latest consent or withdrawal.
	Consents map[string]Consent `json:"consents,omitempty"`
}

// Request is an application's request for operations on a group.
type Request struct {
	Operations []string  `json:"operations"`
	At         time.Time `json:"at"`
}

// Consent is a member's consent (Enabled) or withdrawal.
type Consent struct {
	Enabled bool      `json:"enabled"`
	At      time.Time `json:"at"`
}

// Problem is a state file that could not be read or used; File is its
// path when it is a file of the state directory.
type Problem struct {
	File    string `json:"file"`
	Message string `json:"message"`
}

func (p Problem) String() string { return p.File + ": " + p.Message }

// Contents is everything read from a state directory.
type Contents struct {
	Services    []*ServiceFile
	Delegations []*DelegationFile
	// Problems lists the files that could not be read or used, and why;
	// their entries are not in Services or Delegations.
	Problems []Problem
	// Renamed lists the files Load renamed from an earlier verdict's file
	// name to the name this verdict writes.
	Renamed []Rename
}

// Rename is a file moved from one name to another.
type Rename struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Dir is an open state directory.
type Dir struct {
	path string
}

// Open creates the directory and its subdirectories when missing (and
// makes their creation durable) and returns it.
func Open(path string) (*Dir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("state directory %s: %w", path, err)
	}
	d := &Dir{path: abs}
	for _, sub := range []string{"", ServicesDir, DelegationsDir} {
		if err := MkdirDurable(filepath.Join(abs, sub)); err != nil {
			return nil, fmt.Errorf("state directory %s: %w", abs, err)
		}
	}
	return d, nil
}

// Path is the directory's absolute path.
func (d *Dir) Path() string { return d.path }

// MkdirDurable creates dir (and its parents) and fsyncs the parent of each
// directory it created, so that the directory entry survives a crash.
func MkdirDurable(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := MkdirDurable(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

// ServicePath is the file of a registered service.
func (d *Dir) ServicePath(name string) string {
	return filepath.Join(d.path, ServicesDir, fileName(name))
}

// DelegationPath is the file of an application's entry for a group.
func (d *Dir) DelegationPath(tenant, application, group string) string {
	return filepath.Join(d.path, DelegationsDir, fileName(tenant, application, group))
}

// PutService writes a registered service durably.
func (d *Dir) PutService(f *ServiceFile) error {
	if err := checkKey(f.key(), serviceKeyNames...); err != nil {
		return fmt.Errorf("write service: %w", err)
	}
	f.Version = Version
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("write service %s: %w", f.Name, err)
	}
	if err := WriteFileAtomic(d.ServicePath(f.Name), append(data, '\n')); err != nil {
		return fmt.Errorf("write service %s: %w", f.Name, err)
	}
	return nil
}

// PutDelegation writes an application's entry for a group durably.
func (d *Dir) PutDelegation(f *DelegationFile) error {
	if err := checkKey(f.key(), delegationKeyNames...); err != nil {
		return fmt.Errorf("write delegation: %w", err)
	}
	f.Version = Version
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("write delegation %s/%s/%s: %w", f.Tenant, f.Application, f.Group, err)
	}
	if err := WriteFileAtomic(d.DelegationPath(f.Tenant, f.Application, f.Group), append(data, '\n')); err != nil {
		return fmt.Errorf("write delegation %s/%s/%s: %w", f.Tenant, f.Application, f.Group, err)
	}
	return nil
}

// WriteFileAtomic replaces path with data durably: it writes a temporary
// file in the same directory, fsyncs it, renames it over path and fsyncs
// the directory. A crash at any point leaves the old file or the new one.
func WriteFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir fsyncs a directory so that renames and creations in it are
// durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// Load reads every entry (see Contents) and tidies the directory: it
// removes temporary files left by an interrupted write, and renames a file
// stored under an earlier verdict's name for its entry to the name this
// verdict writes (durably). A file that cannot be read or used is listed in
// Problems and left where it is; an error is a subdirectory that cannot be
// listed or a file that cannot be renamed. Entries are sorted by their key.
func (d *Dir) Load() (*Contents, error) {
	return d.load(true)
}

// Read reads the state directory at path the way Load does, for a checker
// (`verdict check --state-dir`): it never creates, writes, renames or
// removes anything, so it leaves temporary files of an interrupted write
// alone (they are not entries). A missing subdirectory holds no entries; a
// path that does not exist or is not a directory is an error.
func Read(path string) (*Contents, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("state directory %s: %w", path, err)
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("state directory %s does not exist", abs)
	case err != nil:
		return nil, fmt.Errorf("state directory %s: %w", abs, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("state directory %s is not a directory", abs)
	}
	return (&Dir{path: abs}).load(false)
}

// load reads every entry; with tidy it removes leftover temporary files
// and renames files to their entries' names.
func (d *Dir) load(tidy bool) (*Contents, error) {
	c := &Contents{}
	var err error
	if c.Services, err = loadEntries[ServiceFile](d, ServicesDir, c, tidy); err != nil {
		return nil, err
	}
	if c.Delegations, err = loadEntries[DelegationFile](d, DelegationsDir, c, tidy); err != nil {
		return nil, err
	}
	sort.Slice(c.Services, func(i, j int) bool { return c.Services[i].Name < c.Services[j].Name })
	sort.Slice(c.Delegations, func(i, j int) bool {
		a, b := c.Delegations[i], c.Delegations[j]
		if a.Tenant != b.Tenant {
			return a.Tenant < b.Tenant
		}
		if a.Application != b.Application {
			return a.Application < b.Application
		}
		return a.Group < b.Group
	})
	return c, nil
}

// isTemporary reports whether a file name is a temporary file of
// WriteFileAtomic: "." + the target's name + ".tmp" + digits. An entry's
// file always ends in ".json", a temporary file never does.
func isTemporary(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, ".json.tmp") && !strings.HasSuffix(name, ".json")
}

// entries lists the *.json files of a subdirectory and, with tidy, removes
// temporary files left by an interrupted write. A subdirectory that does
// not exist holds no entries.
func (d *Dir) entries(sub string, tidy bool) ([]string, error) {
	dir := filepath.Join(d.path, sub)
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	var out []string
	for _, de := range des {
		name := de.Name()
		switch {
		case de.IsDir():
		case strings.HasSuffix(name, ".json"):
			out = append(out, name)
		case isTemporary(name):
			if tidy {
				os.Remove(filepath.Join(dir, name))
			}
		}
	}
	return out, nil
}

// entry is what loadEntries needs of a file type.
type entry[T any] interface {
	*T
	check() error
	key() []string
	filePath() string
	setPath(string)
}

// loadEntries reads and checks every entry of the subdirectory; one that
// cannot be read, parsed or checked is listed in c.Problems and left out,
// and so are files that hold the same entry as the file under the entry's
// name. With tidy, a file under another name than its entry's is renamed
// to it (unless a file is there already).
func loadEntries[T any, P entry[T]](d *Dir, sub string, c *Contents, tidy bool) ([]P, error) {
	names, err := d.entries(sub, tidy)
	if err != nil {
		return nil, err
	}
	present := make(map[string]bool, len(names))
	for _, name := range names {
		present[name] = true
	}
	dir := filepath.Join(d.path, sub)
	// The entries read, by the name of their file in this version.
	byName := map[string][]P{}
	var order []string
	for _, name := range names {
		path := filepath.Join(dir, name)
		f := P(new(T))
		err := readJSON(path, f)
		if err == nil {
			err = f.check()
		}
		if err != nil {
			c.Problems = append(c.Problems, Problem{File: path, Message: err.Error()})
			continue
		}
		f.setPath(path)
		want := fileName(f.key()...)
		if byName[want] == nil {
			order = append(order, want)
		}
		byName[want] = append(byName[want], f)
	}
	var out []P
	for _, want := range order {
		files := byName[want]
		wantPath := filepath.Join(dir, want)
		if len(files) > 1 {
			// Keep the file under the entry's name, if one is; report the
			// others (and all of them when none is).
			var kept P
			for _, f := range files {
				if f.filePath() == wantPath {
					kept = f
				}
			}
			for _, f := range files {
				if f != kept {
					c.Problems = append(c.Problems, Problem{File: f.filePath(),
						Message: fmt.Sprintf("holds the same entry as another file (%s is this entry's file name)", want)})
				}
			}
			if kept != nil {
				out = append(out, kept)
			}
			continue
		}
		f := files[0]
		if from := f.filePath(); tidy && from != wantPath {
			if present[want] {
				// The entry's file exists but could not be read: it is a
				// problem already, and is never overwritten.
				c.Problems = append(c.Problems, Problem{File: from,
					Message: fmt.Sprintf("cannot be renamed to its entry's file name %s, which is taken by a file that cannot be read", want)})
				continue
			}
			if err := renameDurable(from, wantPath); err != nil {
				return nil, fmt.Errorf("state directory: rename %s to its entry's file name: %w", from, err)
			}
			c.Renamed = append(c.Renamed, Rename{From: from, To: wantPath})
			f.setPath(wantPath)
		}
		out = append(out, f)
	}
	return out, nil
}

// renameDurable renames a file within a directory and fsyncs the directory.
func renameDurable(from, to string) error {
	if err := os.Rename(from, to); err != nil {
		return err
	}
	return syncDir(filepath.Dir(to))
}

// QuarantineDir is the subdirectory Quarantine moves files to.
const QuarantineDir = "quarantine"

// Quarantine moves a file of the state directory that cannot be used out
// of the way, to quarantine/<at, UTC>/<its subdirectory>/<its name>, and
// returns where it went. The move is durable; it never replaces a file.
func (d *Dir) Quarantine(path string, at time.Time) (string, error) {
	rel, err := filepath.Rel(d.path, path)
	if err != nil || rel == "." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || rel == ".." {
		return "", fmt.Errorf("quarantine %s: not a file of the state directory %s", path, d.path)
	}
	to := filepath.Join(d.path, QuarantineDir, at.UTC().Format("20060102T150405.000000000Z"), rel)
	if err := MkdirDurable(filepath.Dir(to)); err != nil {
		return "", fmt.Errorf("quarantine %s: %w", path, err)
	}
	if _, err := os.Lstat(to); err == nil {
		return "", fmt.Errorf("quarantine %s: %s exists already", path, to)
	}
	if err := os.Rename(path, to); err != nil {
		return "", fmt.Errorf("quarantine %s: %w", path, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return "", fmt.Errorf("quarantine %s: %w", path, err)
	}
	if err := syncDir(filepath.Dir(to)); err != nil {
		return "", fmt.Errorf("quarantine %s: %w", path, err)
	}
	return to, nil
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("not a valid state file: %w", err)
	}
	if dec.More() {
		return errors.New("not a valid state file: more than one JSON value")
	}
	return nil
}

func checkVersion(v int) error {
	if v != Version {
		return fmt.Errorf("format version %d is not supported (this verdict writes version %d)", v, Version)
	}
	return nil
}

// checkKey checks the parts of an entry's key: each is a non-empty string
// of valid UTF-8 (JSON cannot keep anything else: it would come back
// changed from the file).
func checkKey(parts []string, names ...string) error {
	for i, p := range parts {
		switch {
		case p == "":
			return fmt.Errorf("%s is missing", names[i])
		case !utf8.ValidString(p):
			return fmt.Errorf("%s %q is not valid UTF-8", names[i], p)
		}
	}
	return nil
}

func (f *ServiceFile) key() []string       { return []string{f.Name} }
func (f *ServiceFile) filePath() string    { return f.Path }
func (f *ServiceFile) setPath(path string) { f.Path = path }

func (f *DelegationFile) key() []string       { return []string{f.Tenant, f.Application, f.Group} }
func (f *DelegationFile) filePath() string    { return f.Path }
func (f *DelegationFile) setPath(path string) { f.Path = path }

var (
	serviceKeyNames    = []string{"name"}
	delegationKeyNames = []string{"tenant", "application", "group"}
)

func (f *ServiceFile) check() error {
	if err := checkVersion(f.Version); err != nil {
		return err
	}
	if err := checkKey(f.key(), serviceKeyNames...); err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal(f.Document, &doc); err != nil || doc == nil {
		return errors.New("document is not a JSON object")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, f.Document); err != nil {
		return fmt.Errorf("document: %w", err)
	}
	f.Document = compact.Bytes()
	return nil
}

// DocumentMap decodes the service document into the object a bundle's
// catalog service is parsed from (acl.ParseService), numbers kept as
// json.Number, the way a registration's body is decoded.
func (f *ServiceFile) DocumentMap() (map[string]any, error) {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(f.Document))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	if doc == nil {
		return nil, errors.New("document is not a JSON object")
	}
	return doc, nil
}

func (f *DelegationFile) check() error {
	if err := checkVersion(f.Version); err != nil {
		return err
	}
	if err := checkKey(f.key(), delegationKeyNames...); err != nil {
		return err
	}
	if f.Request != nil && len(f.Request.Operations) == 0 {
		return errors.New("request.operations is empty")
	}
	for m := range f.Consents {
		if m == "" {
			return errors.New("a consent names no member")
		}
	}
	if f.Request == nil && len(f.Consents) == 0 {
		return errors.New("the entry holds neither a request nor a consent")
	}
	return nil
}
