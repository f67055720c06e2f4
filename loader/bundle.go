package loader

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/hex"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/loader/store"
)

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

// shareStoredTenants replaces an installed bundle's parsed tenants by the
// store's copies (store.TenantRecord.Tenant: without members, resource
// groups compacted), so that the parsed ones can go: the store has indexed
// them, and nothing reads a served bundle's members from its document (a
// bundle is parsed again when it changes).
func (b *Bundle) shareStoredTenants(r *store.Reader) {
	doc := *b.Doc
	doc.Tenants = make(map[string]*acl.Tenant, len(b.Doc.Tenants))
	for code, t := range b.Doc.Tenants {
		if rec, err := r.Tenant(code); err == nil && rec != nil && rec.Bundle == b.Source.Name {
			doc.Tenants[code] = rec.Tenant
		} else {
			doc.Tenants[code] = t.WithoutMembers()
		}
	}
	b.Doc = &doc
}

// aclData picks verdict.catalog and verdict.tenants out of a bundle's data.
func aclData(data map[string]any) map[string]any {
	verdict, ok := data["verdict"].(map[string]any)
	if !ok {
		return nil
	}
	return map[string]any{"catalog": verdict["catalog"], "tenants": verdict["tenants"]}
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
