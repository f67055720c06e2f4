package loader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/loader/store"
)

// The default processors of bundle changes, by order:
//
//	100 bundle-unchanged  closes a change whose bundles are byte-for-byte the served ones
//	200 bundle-assemble   fits the new versions with the other served bundles and compiles the Rego
//	300 bundle-lint       runs the bundles' data.verdict.lint.deny rules on the new versions
//	400 bundle-store      replaces the changed bundles' rows (and only theirs) in the store
//	NOTIFY 100 status     records the outcome for GET /v1/status and /health/ready
//	NOTIFY 200 log        logs every change with its outcome and duration
const (
	orderUnchanged = 100
	orderAssemble  = 200
	orderLint      = 300
	orderStore     = 400
	orderStatus    = 100
	orderLog       = 200
)

// closeUnchangedBundles (processor bundle-unchanged) closes a change that would install exactly what is
// served: an editor that saves without changes, a touch, a re-download.
func closeUnchangedBundles(_ context.Context, ev *Event, _ *store.WriteTxn) error {
	c := ev.Bundle
	if c == nil || ev.Kind == KindDelete || len(c.Next) == 0 {
		return nil
	}
	for name, b := range c.Next {
		old := c.Installed[name]
		if old == nil || old.Digest == "" || old.Digest != b.Digest {
			return nil
		}
	}
	ev.Close()
	return nil
}

// assembleBundles (processor bundle-assemble) builds the next generation's assembly: the served
// bundles with the change applied, checked to fit together, their Rego
// compiled (policy spans bundles) and every reference resolved.
func assembleBundles(ctx context.Context, ev *Event, txn *store.WriteTxn) error {
	c := ev.Bundle
	if c == nil {
		return nil
	}
	registered, err := registeredServices(txn.Reader())
	if err != nil {
		return err
	}
	changed := map[string]bool{}
	for _, s := range c.Sources {
		changed[s.Name] = true
	}
	var bundles []*Bundle
	for name, b := range c.Installed {
		if !changed[name] {
			bundles = append(bundles, b)
		}
	}
	for _, b := range c.Next {
		bundles = append(bundles, b)
	}
	asm, err := assemble(ctx, bundles, registered, func(name string) bool { return c.Next[name] != nil })
	if err != nil {
		return err
	}
	c.Assembly = asm
	return nil
}

// registeredServices lists the services registered at run time, which
// bundles may refer to.
func registeredServices(r *store.Reader) ([]*acl.Service, error) {
	regs, err := r.Registrations()
	if err != nil {
		return nil, err
	}
	out := make([]*acl.Service, len(regs))
	for i, r := range regs {
		out[i] = r.Service
	}
	return out, nil
}

// lintBundles (processor bundle-lint) runs data.verdict.lint.deny — policy-as-code checks that
// bundle authors write in Rego, such as "no statement may grant finmars:*
// outside the admin role" — on every new bundle version. Each element of the
// set rejects the change with its message. The rules see
//
//	input = {bundle, revision, operation, catalog, tenants,
//	         previous: {revision, catalog, tenants} | null}
//
// where catalog and tenants are the bundle's verdict.catalog and
// verdict.tenants as written. An element is a string or an object with
// message and optionally file and entry.
func lintBundles(ctx context.Context, ev *Event, _ *store.WriteTxn) error {
	c := ev.Bundle
	if c == nil || c.Assembly == nil || len(c.Next) == 0 {
		return nil
	}
	if !c.Assembly.Policy.HasRule("verdict.lint.deny") {
		return nil
	}
	names := make([]string, 0, len(c.Next))
	for name := range c.Next {
		names = append(names, name)
	}
	sort.Strings(names)
	var ps acl.Problems
	for _, name := range names {
		if err := lintBundle(ctx, c.Assembly, c.Next[name], c.Installed[name], ev.Kind, &ps); err != nil {
			return &BundleError{Bundle: name, Err: err}
		}
	}
	return ps.Err()
}

func lintBundle(ctx context.Context, asm *Assembly, b, prev *Bundle, kind Kind, ps *acl.Problems) error {
	data, err := b.ACLData()
	if err != nil {
		return err
	}
	input := map[string]any{
		"bundle":    b.Source.Name,
		"revision":  b.Revision,
		"operation": string(kind),
		"catalog":   data["catalog"],
		"tenants":   data["tenants"],
		"previous":  nil,
	}
	if prev != nil {
		prevData, err := prev.ACLData()
		if err != nil {
			return err
		}
		input["previous"] = map[string]any{"revision": prev.Revision, "catalog": prevData["catalog"], "tenants": prevData["tenants"]}
	}
	value, err := ast.InterfaceToValue(input)
	if err != nil {
		return fmt.Errorf("lint input: %w", err)
	}
	rs, err := rego.New(
		rego.Query(LintQuery),
		rego.Compiler(asm.Policy.Compiler()),
		rego.Store(asm.Policy.Store()),
		rego.ParsedInput(value),
	).Eval(ctx)
	if err != nil {
		return fmt.Errorf("evaluate %s: %w", LintQuery, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil
	}
	set, ok := rs[0].Expressions[0].Value.([]any)
	if !ok {
		return fmt.Errorf("%s is %T, not a set", LintQuery, rs[0].Expressions[0].Value)
	}
	var found []acl.Problem
	for _, v := range set {
		p := acl.Problem{}
		switch v := v.(type) {
		case string:
			p.Message = v
		case map[string]any:
			p.Message, _ = v["message"].(string)
			p.File, _ = v["file"].(string)
			p.Entry, _ = v["entry"].(string)
			if p.Message == "" {
				p.Message = fmt.Sprint(v)
			}
		default:
			p.Message = fmt.Sprint(v)
		}
		p.Message = "lint: " + p.Message
		found = append(found, p)
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Message < found[j].Message })
	for _, p := range found {
		ps.AddProblem(p)
	}
	return nil
}

// storeBundles (processor bundle-store) writes the change into the store: each changed bundle's
// rows are deleted and its new ones put, inside the change's transaction.
// Rows of other bundles are not touched.
func storeBundles(_ context.Context, ev *Event, txn *store.WriteTxn) error {
	c := ev.Bundle
	if c == nil {
		return nil
	}
	if c.Assembly == nil {
		return errors.New("no assembly to store: the bundle-assemble processor did not run")
	}
	for _, src := range c.Sources {
		name := src.Name
		if c.Installed[name] != nil {
			if err := txn.DeleteBundle(name); err != nil {
				return err
			}
		}
		b := c.Next[name]
		if b == nil {
			continue
		}
		for _, code := range slices.Sorted(maps.Keys(b.Doc.Tenants)) {
			if err := txn.PutTenant(name, b.Doc.Tenants[code]); err != nil {
				return err
			}
		}
		for _, code := range slices.Sorted(maps.Keys(b.Doc.Catalog.Packages)) {
			if err := txn.PutPackage(name, b.Doc.Catalog.Packages[code]); err != nil {
				return err
			}
		}
		for _, svc := range slices.Sorted(maps.Keys(b.Doc.Catalog.Services)) {
			if err := txn.PutService(name, b.Doc.Catalog.Services[svc]); err != nil {
				return err
			}
		}
	}
	c.Stored = true
	return nil
}

// statusProcessor records each change's outcome on the status board.
type statusProcessor struct{ board *StatusBoard }

func (statusProcessor) Name() string   { return "status" }
func (statusProcessor) Order() int     { return orderStatus }
func (statusProcessor) Required() bool { return true }
func (statusProcessor) Description() string {
	return "records each bundle change's outcome for GET /v1/status and GET /health/ready"
}

func (p statusProcessor) Notify(_ context.Context, ev *Event) { p.board.record(ev) }

// logProcessor logs every change with its outcome and duration.
type logProcessor struct{ log *slog.Logger }

func (logProcessor) Name() string        { return "log" }
func (logProcessor) Order() int          { return orderLog }
func (logProcessor) Description() string { return "logs every change with its outcome and duration" }

// rejectedMessage says what a rejected change leaves serving: for a bundle,
// its last good version when one is served, or nothing of it (a bundle that
// fails at start has no last good version); any other change leaves
// everything as it was.
func rejectedMessage(ev *Event) string {
	c := ev.Bundle
	if c == nil {
		return "change rejected; nothing changed"
	}
	for _, s := range c.Sources {
		if c.Installed[s.Name] == nil {
			if len(c.Sources) == 1 {
				return "change rejected; the bundle has no good version to serve: nothing of it is served"
			}
			return "change rejected; bundles without a good version to serve are not served"
		}
	}
	return "change rejected; the last good version keeps serving"
}

func (p logProcessor) Notify(ctx context.Context, ev *Event) {
	attrs := []any{"subject", ev.Subject.String(), "change", string(ev.Change), "duration", ev.Duration}
	if c := ev.Delegation; c != nil && c.Consent {
		attrs = append(attrs, "member", c.Member, "enabled", c.Enabled)
	} else if c != nil {
		attrs = append(attrs, "operations", c.Operations)
	}
	if ev.Bundle != nil {
		for name, b := range ev.Bundle.Next {
			attrs = append(attrs, "revision."+name, b.Revision)
		}
	}
	switch {
	case ev.Err != nil:
		var dl *DownloadError
		level := slog.LevelError
		if errors.As(ev.Err, &dl) {
			level = slog.LevelWarn
		}
		p.log.Log(ctx, level, rejectedMessage(ev), append(attrs, "outcome", "rejected", "error", ev.Err.Error())...)
	case ev.ClosedBy != "":
		p.log.Info("change closed without a new generation", append(attrs, "outcome", "unchanged", "closed_by", ev.ClosedBy)...)
	default:
		p.log.Info("change applied", append(attrs, "outcome", "applied", "generation", ev.Generation)...)
	}
}

// LintQuery is the rule set the lint processor evaluates.
const LintQuery = "data.verdict.lint.deny"

// bundleSteps are the processors of bundle changes, one row each; the
// functions are above, in the same order.
var bundleSteps = []Step{
	{Name: "bundle-unchanged", Order: orderUnchanged, Process: closeUnchangedBundles,
		Description: "closes a bundle change whose files are byte-for-byte those being served"},
	{Name: "bundle-assemble", Order: orderAssemble, Required: true, Process: assembleBundles,
		Description: "fits the new bundle versions with the other served bundles, compiles every bundle's Rego and resolves references"},
	{Name: "bundle-lint", Order: orderLint, Process: lintBundles,
		Description: "rejects a bundle version that the loaded data.verdict.lint.deny rules find fault with, with their messages"},
	{Name: "bundle-store", Order: orderStore, Required: true, Process: storeBundles,
		Description: "replaces the changed bundles' tenants, packages and services in the store, leaving other bundles' rows untouched"},
}
