package loader

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"hash"
	"io"
	"path/filepath"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/loader/filter"

	"github.com/verdict-authz/verdict/loader/acl"
)

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

func (l *memoryLoader) WithFilter(filter.LoaderFilter) bundle.DirectoryLoader { return l }

func (l *memoryLoader) WithPathFormat(bundle.PathFormat) bundle.DirectoryLoader { return l }

func (l *memoryLoader) WithSizeLimitBytes(int64) bundle.DirectoryLoader { return l }

func (l *memoryLoader) WithFollowSymlinks(bool) bundle.DirectoryLoader { return l }

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
