package loader

import (
	"fmt"
	"os"
	"path/filepath"
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
