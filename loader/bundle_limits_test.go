package loader

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/verdict-authz/verdict/internal/testfiles"
)

// setBundleLimits lowers the size limits for one test (not in parallel).
func setBundleLimits(t *testing.T, file, total int64) {
	t.Helper()
	saved := bundleLimits
	bundleLimits = sizeLimits{file: file, total: total}
	t.Cleanup(func() { bundleLimits = saved })
}

// tarEntry is a file of a test archive: its header, and the bytes written
// after it (fewer than the header's size for an archive that lies).
type tarEntry struct {
	hdr  tar.Header
	body []byte
}

// tarGz writes a .tar.gz of the entries, without the end-of-archive
// marker when the last entry's body is short.
func tarGz(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	short := false
	for _, e := range entries {
		h := e.hdr
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Size == 0 {
			h.Size = int64(len(e.body))
		}
		h.Mode = 0o644
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
		short = int64(len(e.body)) < h.Size
	}
	if !short {
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readWithin reads src, failing the test if that takes longer than d.
func readWithin(t *testing.T, src Source, d time.Duration) (*Bundle, error) {
	t.Helper()
	type result struct {
		b   *Bundle
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := Read(src)
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		return r.b, r.err
	case <-time.After(d):
		t.Fatalf("reading bundle %s took more than %v", src.Name, d)
		return nil, nil
	}
}

// tarballSources are a remote source (downloaded bytes) and a local
// .tar.gz file holding archive.
func tarballSources(t *testing.T, name string, archive []byte) []Source {
	t.Helper()
	file := filepath.Join(t.TempDir(), name+".tar.gz")
	if err := os.WriteFile(file, archive, 0o644); err != nil {
		t.Fatal(err)
	}
	return []Source{
		{Name: name, Location: "https://bundles.example/" + name + ".tar.gz", Tarball: archive},
		{Name: name, Location: file},
	}
}

// TestTarballClaimingAHugeFileIsRefused: a .tar.gz of a few hundred bytes
// whose tar header claims a 64 TiB file is refused before anything is
// allocated for it, from a download as from a file (it used to end the
// process: "fatal error: runtime: out of memory").
func TestTarballClaimingAHugeFileIsRefused(t *testing.T) {
	for _, format := range []tar.Format{tar.FormatGNU, tar.FormatPAX} {
		archive := tarGz(t,
			tarEntry{hdr: tar.Header{Name: ".manifest"}, body: []byte(`{"revision": "r1"}`)},
			tarEntry{hdr: tar.Header{Name: "verdict/data.json", Size: 64 << 40, Format: format}, body: []byte(`{"a": 1}`)})
		if len(archive) > 512 {
			t.Fatalf("the archive has %d bytes; the point is a small one", len(archive))
		}
		for _, src := range tarballSources(t, "bomb", archive) {
			before := runtime.NumGoroutine()
			for range 20 {
				_, err := readWithin(t, src, 10*time.Second)
				if err == nil || !strings.Contains(err.Error(), "verdict/data.json") || !strings.Contains(err.Error(), "size_limit_bytes") {
					t.Fatalf("%v, %s: err = %v", format, src.Location, err)
				}
			}
			// The goroutine that decompresses the archive ends with the read.
			if after := runtime.NumGoroutine(); after > before+2 {
				t.Errorf("%d goroutines before 20 reads, %d after", before, after)
			}
		}
	}
}

// TestTarballBombIsStoppedAtTheTotalLimit: files within the per-file limit
// whose sum decompresses past the bundle's limit stop the read there, with
// an error saying so, whatever their names.
func TestTarballBombIsStoppedAtTheTotalLimit(t *testing.T) {
	setBundleLimits(t, 1<<20, 4<<20)
	zeros := make([]byte, 1<<20)
	var entries []tarEntry
	for i := range 64 {
		entries = append(entries, tarEntry{hdr: tar.Header{Name: fmt.Sprintf("blobs/%02d.bin", i)}, body: zeros})
	}
	archive := tarGz(t, entries...)
	if len(archive) > 256<<10 {
		t.Fatalf("the archive has %d bytes; the point is a small one", len(archive))
	}
	for _, src := range tarballSources(t, "zeros", archive) {
		_, err := readWithin(t, src, 10*time.Second)
		var se *sizeError
		if !errors.As(err, &se) || !se.Total || !strings.Contains(err.Error(), "bundle zeros: ") ||
			!strings.Contains(err.Error(), "decompresses to more than 4 MiB, the limit for one bundle") {
			t.Errorf("%s: err = %v", src.Location, err)
		}
	}
	// Within the limits the same kind of archive reads.
	archive = tarGz(t,
		tarEntry{hdr: tar.Header{Name: ".manifest"}, body: []byte(`{"revision": "r2", "roots": ["blobs"]}`)},
		tarEntry{hdr: tar.Header{Name: "blobs/a.bin"}, body: zeros},
		tarEntry{hdr: tar.Header{Name: "blobs/data.json"}, body: []byte(`{"x": 1}`)})
	for _, src := range tarballSources(t, "ok", archive) {
		b, err := readWithin(t, src, 10*time.Second)
		if err != nil || b.Revision != "r2" || b.Data["blobs"] == nil {
			t.Errorf("%s: %v", src.Location, err)
		}
	}
}

// TestDirectoryBundleSizeLimits: a directory's files are held to the same
// limits, the size of a symlinked file being that of its target.
func TestDirectoryBundleSizeLimits(t *testing.T) {
	setBundleLimits(t, 1<<20, 3<<20)
	big := make([]byte, 1<<20)

	dir := t.TempDir()
	testfiles.Write(t, dir, tenantBundle("bank", "r1", "  alice: {}\n"))
	for i := range 4 {
		testfiles.Write(t, dir, map[string]string{fmt.Sprintf("blobs/%d.bin", i): string(big[1:])})
	}
	_, err := Read(Source{Name: "many", Location: dir})
	var se *sizeError
	if !errors.As(err, &se) || !se.Total || !strings.Contains(err.Error(), "the bundle's files exceed 3 MiB in all, the limit for one bundle") {
		t.Errorf("files over the total: %v", err)
	}

	dir = t.TempDir()
	testfiles.Write(t, dir, tenantBundle("bank", "r1", "  alice: {}\n"))
	testfiles.Write(t, dir, map[string]string{"notes/big.txt": string(big) + "!"})
	_, err = Read(Source{Name: "onebig", Location: dir})
	if !errors.As(err, &se) || se.Total || se.File != "notes/big.txt" ||
		!strings.Contains(err.Error(), "read failed on notes/big.txt: the file is larger than 1 MiB, the limit for one file of a bundle") {
		t.Errorf("a file over the limit: %v", err)
	}

	dir = t.TempDir()
	testfiles.Write(t, dir, tenantBundle("bank", "r1", "  alice: {}\n"))
	outside := filepath.Join(t.TempDir(), "big.json")
	if err := os.WriteFile(outside, append(big, '!'), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "verdict", "data.json")); err != nil {
		t.Fatal(err)
	}
	_, err = Read(Source{Name: "link", Location: dir})
	if !errors.As(err, &se) || se.File != "verdict/data.json" {
		t.Errorf("a symlink to a file over the limit: %v", err)
	}

	_, err = Read(Source{Name: "fs", Location: "(test)", FS: fstest.MapFS{"notes/big.txt": {Data: append(big, '!')}}})
	if err == nil || !strings.Contains(err.Error(), "notes/big.txt") || !strings.Contains(err.Error(), "exceeds limit") {
		t.Errorf("an FS file over the limit: %v", err)
	}
}
