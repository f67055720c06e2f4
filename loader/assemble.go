package loader

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/verdict-authz/verdict/loader/acl"

	policy "github.com/verdict-authz/verdict/rego"
)

// ReadAll reads every source; the error joins every bundle's problems.
func ReadAll(sources []Source) ([]*Bundle, error) {
	var errs []error
	bundles := make([]*Bundle, 0, len(sources))
	names := map[string]bool{}
	for _, src := range sources {
		if names[src.Name] {
			errs = append(errs, bundleError(src.Name, "two bundles have this name; name them with NAME=PATH"))
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
	Policy  *policy.Policy
	// Warnings are, by bundle name, the statements that name no known
	// action (or, for a bundle accepted earlier, a Deny that no longer
	// does): see vocabularyProblems.
	Warnings map[string][]acl.Problem
}

// BundleError is a problem of one bundle: "bundle NAME: …".
type BundleError struct {
	Bundle string
	Err    error
}

func (e *BundleError) Error() string { return "bundle " + e.Bundle + ": " + e.Err.Error() }

func (e *BundleError) Unwrap() error { return e.Err }

// bundleError makes a *BundleError of a formatted message.
func bundleError(name, format string, args ...any) error {
	return &BundleError{Bundle: name, Err: fmt.Errorf(format, args...)}
}

// Assemble checks that the bundles fit together (no overlapping roots, no
// tenant or service declared twice, every condition defined by some rule)
// and compiles their Rego with the engine's.
func Assemble(ctx context.Context, bundles []*Bundle) (*Assembly, error) {
	return AssembleWith(ctx, bundles, nil)
}

// AssembleWith is Assemble with the services registered at run time: they
// override the bundles' services of the same name when references to
// services and permittable groups are resolved.
//
// Every bundle is checked as new: a Deny whose action matches no action of
// the services' routes rejects it (see vocabularyProblems).
func AssembleWith(ctx context.Context, bundles []*Bundle, registered []*acl.Service) (*Assembly, error) {
	return assemble(ctx, bundles, registered, func(string) bool { return true })
}

// assemble is AssembleWith where only the bundles isNew names (the new
// versions of a change) are rejected for a Deny that matches no known
// action; for the others, accepted earlier, it is a warning, so a change
// never fails because of another bundle's statements.
func assemble(ctx context.Context, bundles []*Bundle, registered []*acl.Service, isNew func(name string) bool) (*Assembly, error) {
	sorted := append([]*Bundle(nil), bundles...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Source.Name < sorted[j].Source.Name })
	var errs []error
	for i, a := range sorted {
		for _, b := range sorted[i+1:] {
			if x, y, overlap := rootsOverlap(a.Roots, b.Roots); overlap {
				errs = append(errs, bundleError(b.Source.Name, "its root %q overlaps root %q of bundle %s; give each bundle a .manifest with distinct roots",
					showRoot(y), showRoot(x), a.Source.Name))
			}
		}
	}
	tenantOwner := map[string]string{}
	serviceOwner := map[string]string{}
	modules := map[string]*ast.Module{}
	data := map[string]any{}
	for _, b := range sorted {
		var ps acl.Problems
		for _, code := range slices.Sorted(maps.Keys(b.Doc.Tenants)) {
			if other, dup := tenantOwner[code]; dup {
				ps.Add(acl.NewLoc(b.files, "verdict", "tenants", code), "tenant %q is also declared by bundle %s", code, other)
			}
			tenantOwner[code] = b.Source.Name
		}
		for _, name := range slices.Sorted(maps.Keys(b.Doc.Catalog.Services)) {
			if other, dup := serviceOwner[name]; dup {
				ps.Add(acl.NewLoc(b.files, "verdict", "catalog", "services", name), "service %q is also declared by bundle %s", name, other)
			}
			serviceOwner[name] = b.Source.Name
		}
		if err := ps.Err(); err != nil {
			errs = append(errs, &BundleError{Bundle: b.Source.Name, Err: err})
		}
		for name, m := range b.Modules {
			modules[name] = m
		}
		if err := mergeData(data, b.Data); err != nil {
			errs = append(errs, &BundleError{Bundle: b.Source.Name, Err: err})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	pol, err := policy.CompilePolicy(ctx, modules, data)
	if err != nil {
		return nil, err
	}
	services := map[string]bool{}
	packages := map[string]bool{}
	effective := effectiveServices(sorted, registered)
	for name := range effective {
		services[name] = true
	}
	for _, b := range sorted {
		for code := range b.Doc.Catalog.Packages {
			packages[code] = true
		}
	}
	groups := map[string]bool{}
	for _, svc := range effective {
		for g := range svc.PermittableGroups {
			groups[g] = true
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
			case acl.RefPermittableGroup:
				if !groups[ref.Name] {
					ps.Add(ref.Loc, "unknown permittable group %q: no catalog service declares it", ref.Name)
				}
			}
		}
		for _, code := range slices.Sorted(maps.Keys(b.Doc.Tenants)) {
			t := b.Doc.Tenants[code]
			for _, app := range slices.Sorted(maps.Keys(t.Applications)) {
				for i, k := range t.Applications[app].Keys {
					where := b.Source.Name + ": tenant " + code + ", application " + app
					if other, dup := keyOwner[k.Key]; dup && other != where {
						loc := acl.NewLoc(b.files, "verdict", "tenants", code, "applications", app, "keys").Index(i).Key("key")
						ps.Add(loc, "key %s is also the key of %s; a key names one application", acl.ShortKey(k.Key), other)
					}
					keyOwner[k.Key] = where
				}
			}
		}
		if err := ps.Err(); err != nil {
			errs = append(errs, &BundleError{Bundle: b.Source.Name, Err: err})
		}
	}
	vocabErrs, warnings := vocabularyProblems(sorted, effective, isNew)
	errs = append(errs, vocabErrs...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &Assembly{Bundles: sorted, Policy: pol, Warnings: warnings}, nil
}

// effectiveServices is every service decisions route by: the bundles'
// catalog services, each overridden by a run-time registration of the same
// name.
func effectiveServices(bundles []*Bundle, registered []*acl.Service) map[string]*acl.Service {
	effective := map[string]*acl.Service{}
	for _, b := range bundles {
		for name, svc := range b.Doc.Catalog.Services {
			effective[name] = svc
		}
	}
	for _, svc := range registered {
		effective[svc.Name] = svc
	}
	return effective
}

// vocabularyProblems checks every statement's action patterns against the
// actions the effective services' routes give (acl.CheckActions): a Deny
// that matches none rejects its bundle when isNew says the bundle is being
// loaded, and is a warning for a bundle accepted earlier; an Allow that
// matches none is a warning. Without any service (tenant bundles checked
// without their catalog) nothing is checked: the vocabulary is unknown.
func vocabularyProblems(bundles []*Bundle, effective map[string]*acl.Service, isNew func(name string) bool) ([]error, map[string][]acl.Problem) {
	services := make([]*acl.Service, 0, len(effective))
	for _, svc := range effective {
		services = append(services, svc)
	}
	vocab := acl.NewVocabulary(services...)
	var errs []error
	warnings := map[string][]acl.Problem{}
	for _, b := range bundles {
		var ps acl.Problems
		acl.CheckActions(b.Doc, b.files, vocab, isNew(b.Source.Name), &ps)
		if err := ps.Err(); err != nil {
			errs = append(errs, &BundleError{Bundle: b.Source.Name, Err: err})
		}
		if w := ps.Warnings(); len(w) > 0 {
			warnings[b.Source.Name] = w
		}
	}
	return errs, warnings
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
