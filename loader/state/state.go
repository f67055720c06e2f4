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
// Names are percent-escaped (url.PathEscape, which also escapes ","); a name
// too long for a file system gets a name derived from its SHA-256. The files'
// contents, not their names, are authoritative.
package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
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

// Problem is a state file that could not be used. It is reported and the
// file is ignored; it never stops verdict.
type Problem struct {
	File    string `json:"file"`
	Message string `json:"message"`
}

func (p Problem) String() string { return p.File + ": " + p.Message }

// Contents is everything read from a state directory.
type Contents struct {
	Services    []*ServiceFile
	Delegations []*DelegationFile
	// Problems lists the files that were ignored, and why.
	Problems []Problem
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
		if err := mkdirDurable(filepath.Join(abs, sub)); err != nil {
			return nil, fmt.Errorf("state directory %s: %w", abs, err)
		}
	}
	return d, nil
}

// Path is the directory's absolute path.
func (d *Dir) Path() string { return d.path }

// mkdirDurable creates dir (and its parents) and fsyncs the parent of each
// directory it created, so that the directory entry survives a crash.
func mkdirDurable(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirDurable(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

// maxNameBytes keeps file names well below the usual 255-byte limit.
const maxNameBytes = 200

// fileName is the file name for the key parts.
func fileName(parts ...string) string {
	esc := make([]string, len(parts))
	for i, p := range parts {
		esc[i] = url.PathEscape(p)
	}
	name := strings.Join(esc, ",")
	if len(name) > maxNameBytes || name == "" || name == "." || name == ".." {
		sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
		name = "sha256-" + hex.EncodeToString(sum[:])
	}
	return name + ".json"
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
	if f.Name == "" {
		return errors.New("write service: the name is empty")
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
	if f.Tenant == "" || f.Application == "" || f.Group == "" {
		return errors.New("write delegation: tenant, application and group are required")
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

// Load reads every entry. A file that cannot be read or parsed is listed
// in Problems and left out; leftover temporary files of an interrupted
// write are removed. Entries are returned sorted by their key.
func (d *Dir) Load() *Contents {
	return d.load(true)
}

// Read reads the state directory at path the way Load does, for a checker
// (`verdict check --state-dir`): it never creates, writes or removes
// anything, so it leaves temporary files of an interrupted write alone
// (they are not entries). A missing subdirectory holds no entries; a path
// that does not exist or is not a directory is an error.
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
	return (&Dir{path: abs}).load(false), nil
}

// load reads every entry; with cleanup it removes leftover temporary files.
func (d *Dir) load(cleanup bool) *Contents {
	c := &Contents{}
	c.Services = loadEntries[ServiceFile](d, ServicesDir, c, cleanup)
	c.Delegations = loadEntries[DelegationFile](d, DelegationsDir, c, cleanup)
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
	return c
}

// entries lists the *.json files of a subdirectory and, with cleanup,
// removes temporary files left by an interrupted write.
func (d *Dir) entries(sub string, c *Contents, cleanup bool) []string {
	dir := filepath.Join(d.path, sub)
	des, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			c.Problems = append(c.Problems, Problem{File: dir, Message: err.Error()})
		}
		return nil
	}
	var out []string
	for _, de := range des {
		name := de.Name()
		switch {
		case de.IsDir():
		case strings.HasPrefix(name, ".") && strings.Contains(name, ".json.tmp"):
			if cleanup {
				os.Remove(filepath.Join(dir, name))
			}
		case strings.HasSuffix(name, ".json"):
			out = append(out, name)
		}
	}
	return out
}

// loadEntries reads and checks every entry of the subdirectory; one that
// cannot be read, parsed or checked is listed in c.Problems and left out.
func loadEntries[T any, P interface {
	*T
	check() error
}](d *Dir, sub string, c *Contents, cleanup bool) []P {
	var out []P
	for _, name := range d.entries(sub, c, cleanup) {
		path := filepath.Join(d.path, sub, name)
		f := P(new(T))
		err := readJSON(path, f)
		if err == nil {
			err = f.check()
		}
		if err != nil {
			c.Problems = append(c.Problems, Problem{File: path, Message: err.Error()})
			continue
		}
		out = append(out, f)
	}
	return out
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

func (f *ServiceFile) check() error {
	if err := checkVersion(f.Version); err != nil {
		return err
	}
	if f.Name == "" {
		return errors.New("name is missing")
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
	if f.Tenant == "" || f.Application == "" || f.Group == "" {
		return errors.New("tenant, application and group are required")
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
