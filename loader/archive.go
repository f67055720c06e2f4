package loader

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"

	"github.com/open-policy-agent/opa/v1/bundle"
)

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
