package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=..."; without
// it, a `go install …@vX` build shows its module version.
var version = "dev"

// buildVersion is what `verdict version` and `verdict --version` print:
// verdict's version, the commit and time it was built from (Go's build
// information, stamped by go build in a git checkout), the OPA it embeds and
// the Go it was built with.
type buildVersion struct {
	Version  string
	Revision string // empty: the build carries no VCS information
	Time     string
	Modified bool
	OPA      string
	Go       string
}

// readBuildVersion reads the version of this binary from info (nil when
// the binary carries no build information).
func readBuildVersion(info *debug.BuildInfo) buildVersion {
	v := buildVersion{Version: version, OPA: "unknown", Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}
	if info == nil {
		return v
	}
	if v.Version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v.Version = info.Main.Version
	}
	for _, dep := range info.Deps {
		if dep.Path == "github.com/open-policy-agent/opa" {
			v.OPA = dep.Version
		}
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func (v buildVersion) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "verdict %s\n", v.Version)
	switch {
	case v.Revision == "":
		b.WriteString("commit unknown (built without VCS information: outside a git checkout, or with -buildvcs=false)\n")
	case v.Modified:
		fmt.Fprintf(&b, "commit %s (with uncommitted changes)\n", v.Revision)
	default:
		fmt.Fprintf(&b, "commit %s\n", v.Revision)
	}
	if v.Time != "" {
		fmt.Fprintf(&b, "commit time %s\n", v.Time)
	}
	fmt.Fprintf(&b, "opa %s\ngo %s\n", v.OPA, v.Go)
	return b.String()
}

// currentVersion is this binary's version.
func currentVersion() buildVersion {
	info, _ := debug.ReadBuildInfo()
	return readBuildVersion(info)
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print verdict's version and commit, the OPA it embeds and the Go it was built with (also verdict --version)",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprint(cmd.OutOrStdout(), currentVersion())
		},
	}
}
