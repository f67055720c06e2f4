package loader

import (
	"context"

	"github.com/verdict-authz/verdict/loader/acl"
)

// Lint runs the loaded data.verdict.lint.deny rules on every bundle of the
// assembly, as the bundle-lint processor does on a reload, so that
// `verdict check` reports what a reload would reject.
func Lint(ctx context.Context, asm *Assembly) error {
	if !asm.Policy.HasRule("verdict.lint.deny") {
		return nil
	}
	for _, b := range asm.Bundles {
		var ps acl.Problems
		if err := lintBundle(ctx, asm, b, nil, KindCreate, &ps); err != nil {
			return &BundleError{Bundle: b.Source.Name, Err: err}
		}
		if err := ps.Err(); err != nil {
			return &BundleError{Bundle: b.Source.Name, Err: err}
		}
	}
	return nil
}
