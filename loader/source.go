package loader

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/open-policy-agent/opa/bundle"
)

// k8sDataDir is the entry through which a Kubernetes ConfigMap or Secret
// volume publishes its current contents: a symlink to a timestamped
// directory, swapped atomically by renaming a new symlink over it.
const k8sDataDir = "..data"

// resolveBundleDir returns the real path to read a bundle location from:
// symlinks are resolved (a bundle directory may be a symlink swapped with
// `ln -sfn`), and a directory in the Kubernetes ConfigMap volume layout is
// read through its ..data entry, so the hidden timestamped directories are
// not read twice and a swap is seen whole.
func resolveBundleDir(loc string) (string, error) {
	real, err := filepath.EvalSymlinks(loc)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", loc, err)
	}
	info, err := os.Stat(real)
	if err != nil {
		return "", err
	}
	if !info.IsDir() {
		return real, nil
	}
	if data, err := filepath.EvalSymlinks(filepath.Join(real, k8sDataDir)); err == nil {
		if info, err := os.Stat(data); err == nil && info.IsDir() {
			return data, nil
		}
	}
	return real, nil
}

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
