package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Backticks in a flag's usage name its value in --help: "kept in this
// `verdict run --state-dir`" showed as "--state-dir verdict run
// --state-dir". Every flag's value name must be one word.
func TestFlagValueNamesAreOneWord(t *testing.T) {
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			if name, _ := pflag.UnquoteUsage(f); strings.ContainsAny(name, " -") {
				t.Errorf("verdict %s --%s: its value shows as %q in --help", cmd.Name(), f.Name, name)
			}
		})
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(newRootCommand())
	out, _, _, _ := runVerdict(t, "check", "--help")
	if !strings.Contains(out, "--state-dir DIR") {
		t.Errorf("verdict check --help:\n%s", out)
	}
}
