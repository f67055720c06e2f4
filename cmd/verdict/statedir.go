package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// prepareStateDir creates --state-dir when missing and checks that verdict
// can write there before anything else starts, so that a directory owned by
// another user (a container volume created by root, with verdict running as
// nonroot) is one error naming the directory, the user and the fix, not a
// failed mkdir deep in the start.
func prepareStateDir(dir string) error {
	err := os.MkdirAll(dir, 0o700)
	if err == nil {
		var probe *os.File
		if probe, err = os.CreateTemp(dir, ".verdict-write-probe-*"); err == nil {
			probe.Close()
			err = os.Remove(probe.Name())
		}
	}
	if err == nil {
		return nil
	}
	if errors.Is(err, fs.ErrPermission) {
		abs, _ := filepath.Abs(dir)
		uid, gid := os.Getuid(), os.Getgid()
		return fmt.Errorf("--state-dir %s: verdict runs as uid %d (gid %d) and cannot write there (%w); "+
			"make the directory writable by that user (chown %d:%d %s; in Kubernetes, securityContext.fsGroup: %d), "+
			"or give --state-dir a directory it can write", abs, uid, gid, err, uid, gid, abs, gid)
	}
	return fmt.Errorf("--state-dir %s: %w", dir, err)
}
