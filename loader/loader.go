package loader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/loader/store"
)

// Loader owns the store and installs generations into the engine.
type Loader struct {
	engine *decision.Engine
	store  *store.Store
	log    *slog.Logger

	mu      sync.Mutex
	bundles map[string]*Bundle // the bundles of the installed generation
	number  uint64
}

// New returns a loader that installs into engine.
func New(engine *decision.Engine, log *slog.Logger) (*Loader, error) {
	st, err := store.New()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &Loader{engine: engine, store: st, log: log, bundles: map[string]*Bundle{}}, nil
}

// ReadAll reads every source; the error joins every bundle's problems.
func ReadAll(sources []Source) ([]*Bundle, error) {
	var errs []error
	bundles := make([]*Bundle, 0, len(sources))
	names := map[string]bool{}
	for _, src := range sources {
		if names[src.Name] {
			errs = append(errs, fmt.Errorf("bundle %s: two bundles have this name; name them with NAME=PATH", src.Name))
			continue
		}
		names[src.Name] = true
		b, err := Read(src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		bundles = append(bundles, b)
	}
	return bundles, errors.Join(errs...)
}

// Assembly is a consistent set of bundles with its compiled policy: what a
// generation is built from.
type Assembly struct {
	Bundles []*Bundle
	Policy  *decision.Policy
}

// Assemble checks that the bundles fit together (no overlapping roots, no
// tenant or service declared twice, every condition defined by some rule)
// and compiles their Rego with the engine's.
func Assemble(ctx context.Context, bundles []*Bundle) (*Assembly, error) {
	sorted := append([]*Bundle(nil), bundles...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Source.Name < sorted[j].Source.Name })
	var errs []error
	for i, a := range sorted {
		for _, b := range sorted[i+1:] {
			if x, y, overlap := rootsOverlap(a.Roots, b.Roots); overlap {
				errs = append(errs, fmt.Errorf("bundle %s: its root %q overlaps root %q of bundle %s; give each bundle a .manifest with distinct roots",
					b.Source.Name, showRoot(y), showRoot(x), a.Source.Name))
			}
		}
	}
	tenantOwner := map[string]string{}
	serviceOwner := map[string]string{}
	modules := map[string]*ast.Module{}
	data := map[string]any{}
	for _, b := range sorted {
		for code := range b.Doc.Tenants {
			if other, dup := tenantOwner[code]; dup {
				errs = append(errs, fmt.Errorf("bundle %s: tenant %q is also declared by bundle %s", b.Source.Name, code, other))
			}
			tenantOwner[code] = b.Source.Name
		}
		for name := range b.Doc.Catalog.Services {
			if other, dup := serviceOwner[name]; dup {
				errs = append(errs, fmt.Errorf("bundle %s: service %q is also declared by bundle %s", b.Source.Name, name, other))
			}
			serviceOwner[name] = b.Source.Name
		}
		for name, m := range b.Modules {
			modules[name] = m
		}
		if err := mergeData(data, b.Data); err != nil {
			errs = append(errs, fmt.Errorf("bundle %s: %w", b.Source.Name, err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	pol, err := decision.CompilePolicy(ctx, modules, data)
	if err != nil {
		return nil, err
	}
	services := map[string]bool{}
	packages := map[string]bool{}
	for _, b := range sorted {
		for name := range b.Doc.Catalog.Services {
			services[name] = true
		}
		for code := range b.Doc.Catalog.Packages {
			packages[code] = true
		}
	}
	keyOwner := map[string]string{}
	for _, b := range sorted {
		var ps acl.Problems
		for _, ref := range b.Doc.Refs {
			switch ref.Kind {
			case acl.RefCondition:
				if !pol.HasRule("verdict.conditions." + ref.Name) {
					ps.Add(ref.Loc, "condition %q has no rule data.verdict.conditions.%s in any loaded bundle", ref.Name, ref.Name)
				}
			case acl.RefPackage:
				if !packages[ref.Name] {
					ps.Add(ref.Loc, "unknown package %q", ref.Name)
				}
			case acl.RefService:
				if !services[ref.Name] {
					ps.Add(ref.Loc, "unknown service %q", ref.Name)
				}
			}
		}
		for _, code := range sortedKeys(b.Doc.Tenants) {
			t := b.Doc.Tenants[code]
			for _, app := range sortedKeys(t.Applications) {
				for _, k := range t.Applications[app].Keys {
					where := b.Source.Name + ": tenant " + code + ", application " + app
					if other, dup := keyOwner[k.Key]; dup && other != where {
						errs = append(errs, fmt.Errorf("bundle %s: key %s of tenant %s, application %s is also the key of %s; a key names one application",
							b.Source.Name, acl.ShortKey(k.Key), code, app, other))
					}
					keyOwner[k.Key] = where
				}
			}
		}
		if err := ps.Err(); err != nil {
			errs = append(errs, fmt.Errorf("bundle %s: %w", b.Source.Name, err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &Assembly{Bundles: sorted, Policy: pol}, nil
}

func showRoot(r string) string {
	if r == "" {
		return "(everything: the bundle has no manifest roots)"
	}
	return r
}

// mergeData deep-merges src into dst, refusing to overwrite a value.
func mergeData(dst, src map[string]any) error {
	for k, v := range src {
		existing, ok := dst[k]
		if !ok {
			dst[k] = v
			continue
		}
		a, aok := existing.(map[string]any)
		b, bok := v.(map[string]any)
		if !aok || !bok {
			return fmt.Errorf("data key %q is set by two bundles", k)
		}
		merged := make(map[string]any, len(a)+len(b))
		for kk, vv := range a {
			merged[kk] = vv
		}
		if err := mergeData(merged, b); err != nil {
			return fmt.Errorf("%s.%w", k, err)
		}
		dst[k] = merged
	}
	return nil
}

// Install writes the assembly into the store and installs the resulting
// generation. Bundles that are gone or changed are replaced in one write
// transaction.
func (l *Loader) Install(ctx context.Context, asm *Assembly) (*decision.Generation, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := time.Now()
	next := make(map[string]*Bundle, len(asm.Bundles))
	for _, b := range asm.Bundles {
		next[b.Source.Name] = b
	}
	snap, err := l.store.Update(func(w *store.WriteTxn) error {
		for name, old := range l.bundles {
			if next[name] != old {
				if err := w.DeleteBundle(name); err != nil {
					return err
				}
			}
		}
		for name, b := range next {
			if l.bundles[name] == b {
				continue
			}
			for _, code := range sortedKeys(b.Doc.Tenants) {
				if err := w.PutTenant(name, b.Doc.Tenants[code]); err != nil {
					return err
				}
			}
			for _, code := range sortedKeys(b.Doc.Catalog.Packages) {
				if err := w.PutPackage(name, b.Doc.Catalog.Packages[code]); err != nil {
					return err
				}
			}
			for _, svc := range sortedKeys(b.Doc.Catalog.Services) {
				if err := w.PutService(name, b.Doc.Catalog.Services[svc]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("update store: %w", err)
	}
	l.number++
	revisions := make(map[string]string, len(next))
	for name, b := range next {
		revisions[name] = b.Revision
	}
	gen := &decision.Generation{
		Number:    l.number,
		Facts:     snap,
		Policy:    asm.Policy,
		LoadedAt:  time.Now(),
		Revisions: revisions,
	}
	l.engine.Install(gen)
	l.bundles = next
	l.log.Info("generation installed", "generation", gen.Number, "bundles", len(next), "duration", time.Since(start))
	return gen, nil
}

// LoadAll reads, assembles and installs the sources.
func (l *Loader) LoadAll(ctx context.Context, sources []Source) (*decision.Generation, error) {
	bundles, err := ReadAll(sources)
	if err != nil {
		return nil, err
	}
	for _, b := range bundles {
		for _, w := range b.Warnings {
			l.log.Warn("bundle warning", "bundle", b.Source.Name, "problem", w.String())
		}
	}
	asm, err := Assemble(ctx, bundles)
	if err != nil {
		return nil, err
	}
	return l.Install(ctx, asm)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
