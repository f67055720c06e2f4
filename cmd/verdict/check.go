package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/loader/state"
)

func newCheckCommand() *cobra.Command {
	var stateDir string
	cmd := &cobra.Command{
		Use:   "check PATH...",
		Short: "Validate bundles together, listing every problem with its file and entry",
		Long: "check reads the bundles (directories or .tar.gz, as PATH or NAME=PATH) the way\n" +
			"`verdict run` would load them together, and prints every problem it finds.\n" +
			"It exits 1 when there is any.\n\n" +
			"With --state-dir DIR the bundles are checked with the services registered at run\n" +
			"time that `verdict run --state-dir DIR` restores before loading them (bundles may\n" +
			"refer to those services and their permittable groups; a registration overrides\n" +
			"the bundles' service of the same name). DIR is only read: it must exist, and a\n" +
			"state file verdict run would refuse to start with is an error.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			sources, err := bundleSources(args)
			if err != nil {
				return err
			}
			var rs *runtimeState
			if stateDir != "" {
				quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
				ld, err := loader.New(decision.NewEngine(quiet), quiet)
				if err != nil {
					return err
				}
				defer ld.Close()
				if rs, err = readRuntimeState(ctx, ld, stateDir); err != nil {
					return err
				}
			}
			bundles, readErr := loader.ReadAll(sources)
			for _, b := range bundles {
				for _, w := range b.Warnings {
					fmt.Fprintf(out, "warning: bundle %s: %s\n", b.Source.Name, w)
				}
			}
			if readErr != nil {
				printProblems(cmd, readErr)
				return &exitError{code: 1}
			}
			if err := requireVerdictData(bundles); err != nil {
				printProblems(cmd, err)
				return &exitError{code: 1}
			}
			asm, err := loader.AssembleWith(ctx, bundles, rs.registered())
			if err != nil {
				printProblems(cmd, err)
				return &exitError{code: 1}
			}
			for _, b := range asm.Bundles {
				for _, w := range asm.Warnings[b.Source.Name] {
					fmt.Fprintf(out, "warning: bundle %s: %s\n", b.Source.Name, w)
				}
			}
			if err := loader.Lint(ctx, asm); err != nil {
				printProblems(cmd, err)
				return &exitError{code: 1}
			}
			tenants, members, policies, services := 0, 0, 0, 0
			for _, b := range bundles {
				services += len(b.Doc.Catalog.Services)
				for _, t := range b.Doc.Tenants {
					tenants++
					members += len(t.Members)
					policies += len(t.Policies)
				}
			}
			registered := ""
			if rs != nil {
				registered = fmt.Sprintf(", %d registered service(s)", len(rs.services))
			}
			fmt.Fprintf(out, "ok: %d bundle(s), %d service(s)%s, %d tenant(s), %d member(s), %s\n",
				len(bundles), services, registered, tenants, members, plural(policies, "access policy", "access policies"))
			return nil
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "check with the services registered at run time kept in `DIR`, a verdict run --state-dir (read only; must exist)")
	return cmd
}

// runtimeState is what `verdict run --state-dir DIR` restores before it
// loads the bundles, read without writing to DIR.
type runtimeState struct {
	// services are the registered services that restored.
	services []*acl.Service
}

// readRuntimeState reads the state directory dir (never creating or
// changing it) and restores it into ld, which has no state directory, the
// way verdict run restores it at start: registrations, delegation requests
// and consents. An entry verdict run would refuse to start with is an
// error, as it is for verdict run.
func readRuntimeState(ctx context.Context, ld *loader.Loader, dir string) (*runtimeState, error) {
	contents, err := state.Read(dir)
	if err != nil {
		return nil, fmt.Errorf("--state-dir: %w", err)
	}
	problems, err := ld.RestoreState(ctx, dir, contents)
	if err != nil {
		return nil, fmt.Errorf("--state-dir: %w", err)
	}
	if len(problems) > 0 {
		abs, _ := filepath.Abs(dir)
		return nil, fmt.Errorf("--state-dir: %w", &loader.UnusableStateError{Dir: abs, Problems: problems})
	}
	services, err := ld.Registered()
	if err != nil {
		return nil, err
	}
	return &runtimeState{services: services}, nil
}

// registered is the registered services; none without a state directory.
func (rs *runtimeState) registered() []*acl.Service {
	if rs == nil {
		return nil
	}
	return rs.services
}

// printProblems prints every problem on its own "error:" line.
func printProblems(cmd *cobra.Command, err error) {
	for _, line := range problemLines(err) {
		fmt.Fprintln(cmd.ErrOrStderr(), "error:", line)
	}
}

// problemLines flattens joined errors and validation errors into one line
// per problem, each prefixed with the bundle it belongs to.
func problemLines(err error) []string {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) && errors.Unwrap(err) == nil {
		var out []string
		for _, e := range joined.Unwrap() {
			out = append(out, problemLines(e)...)
		}
		return out
	}
	var verr *acl.ValidationError
	if errors.As(err, &verr) {
		prefix, _, _ := strings.Cut(err.Error(), verr.Error())
		out := make([]string, 0, len(verr.Problems))
		for _, p := range verr.Problems {
			out = append(out, prefix+p.String())
		}
		return out
	}
	return []string{err.Error()}
}

// plural writes n with the singular or plural noun.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// verdictDataPlaces says where in a bundle verdict reads its data.
const verdictDataPlaces = "verdict reads services and products from verdict/catalog/data.yaml (data path verdict.catalog) " +
	"and tenants from verdict/tenants/<code>/data.yaml (verdict.tenants) inside a bundle"

// requireVerdictData refuses bundles that hold no verdict data: checking them
// would say "ok" about nothing. Most often the path given is not the bundle's
// root (one level too deep: the verdict directory inside it), which a
// bundle with catalog or tenants data at its top gives away; the error then
// names the directory to give instead.
func requireVerdictData(bundles []*loader.Bundle) error {
	var errs []error
	found := false
	for _, b := range bundles {
		doc := b.Doc
		if len(doc.Catalog.Services)+len(doc.Catalog.Products)+len(doc.Tenants) > 0 {
			found = true
			continue
		}
		var misplaced []string
		for _, k := range []string{"catalog", "tenants"} {
			if _, ok := b.Data[k]; ok {
				misplaced = append(misplaced, k+"/")
			}
		}
		if len(misplaced) == 0 {
			continue
		}
		hint := "give the bundle's root directory, the one that holds verdict/"
		if b.Source.FS == nil && filepath.Base(filepath.Clean(b.Source.Location)) == "verdict" {
			hint = fmt.Sprintf("%s is one level too deep: give %s", b.Source.Location, filepath.Dir(filepath.Clean(b.Source.Location)))
		}
		errs = append(errs, fmt.Errorf("bundle %s (%s): no verdict data, but %s at the bundle's top; %s; %s",
			b.Source.Name, b.Source.Location, strings.Join(misplaced, " and "), verdictDataPlaces, hint))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if !found {
		where := make([]string, len(bundles))
		for i, b := range bundles {
			where[i] = b.Source.Location
		}
		return fmt.Errorf("no verdict data in %s: no service, product or tenant; %s. Is each path a bundle's root directory (or .tar.gz)?",
			strings.Join(where, ", "), verdictDataPlaces)
	}
	return nil
}
