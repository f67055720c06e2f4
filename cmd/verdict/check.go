package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/verdict-authz/verdict/loader"
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
			if _, err := loader.Assemble(cmd.Context(), bundles); err != nil {
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

// printProblems prints each joined error on its own lines.
func printProblems(cmd *cobra.Command, err error) {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			fmt.Fprintln(cmd.ErrOrStderr(), "error:", e)
		}
		return
	}
	fmt.Fprintln(cmd.ErrOrStderr(), "error:", err)
}
