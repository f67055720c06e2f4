package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/loader/acl"
)

func newCheckCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "check PATH...",
		Short: "Validate bundles together, listing every problem with its file and entry",
		Long: "check reads the bundles (directories or .tar.gz, as PATH or NAME=PATH) the way\n" +
			"`verdict run` would load them together, and prints every problem it finds.\n" +
			"It exits 1 when there is any.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			sources, err := bundleSources(args)
			if err != nil {
				return err
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
			asm, err := loader.Assemble(cmd.Context(), bundles)
			if err != nil {
				printProblems(cmd, err)
				return &exitError{code: 1}
			}
			if err := loader.Lint(cmd.Context(), asm); err != nil {
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
			fmt.Fprintf(out, "ok: %d bundle(s), %d service(s), %d tenant(s), %d member(s), %d access polic(ies)\n",
				len(bundles), services, tenants, members, policies)
			return nil
		},
	}
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
