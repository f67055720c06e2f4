// Command verdict is the authorization sidecar: `verdict run` serves
// decisions over localhost, `verdict check` validates bundles, `verdict eval`
// makes one decision from the command line and `verdict version` says which
// build this is.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		var exit *exitError
		if errors.As(err, &exit) {
			os.Exit(exit.code)
		}
		fmt.Fprintln(os.Stderr, "verdict:", err)
		os.Exit(1)
	}
}

// exitError ends the process with a code after the command has printed
// what it had to say.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "verdict",
		Short:         "verdict is a localhost authorization sidecar: tenant ACLs in, allow or deny with reasons out",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.Version = currentVersion().Version
	root.SetVersionTemplate("{{with .Annotations}}{{.build}}{{end}}")
	root.Annotations = map[string]string{"build": currentVersion().String()}
	root.AddCommand(newRunCommand(), newCheckCommand(), newEvalCommand(), newVersionCommand(), newHealthcheckCommand(), newTestCommand(), newAccessCommand(), newDiffCommand(), newStateCommand(), newConfigCommand())
	return root
}
