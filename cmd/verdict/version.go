package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print verdict's version, the OPA it embeds and the Go it was built with",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			opa, commit := "unknown", ""
			if info, ok := debug.ReadBuildInfo(); ok {
				for _, dep := range info.Deps {
					if dep.Path == "github.com/open-policy-agent/opa" {
						opa = dep.Version
					}
				}
				for _, s := range info.Settings {
					if s.Key == "vcs.revision" {
						commit = s.Value
					}
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "verdict %s\nopa %s\ngo %s %s/%s\n", version, opa, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			if commit != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "commit %s\n", commit)
			}
		},
	}
}
