package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

// verdict version shows the commit and its time from Go's build
// information, and says so when the build has none (-buildvcs=false, as
// .ci/run builds).
func TestBuildVersion(t *testing.T) {
	opa := debug.Module{Path: "github.com/open-policy-agent/opa", Version: "v1.22.2"}
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "7321bafaec552a253f0b2afea1bdf85a649e5034"},
			{Key: "vcs.time", Value: "2026-12-07T07:30:30Z"}, {Key: "vcs.modified", Value: modified}}
	}
	tests := []struct {
		name string
		info *debug.BuildInfo
		want []string
		not  []string
	}{
		{"a clean checkout", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Deps: []*debug.Module{&opa}, Settings: vcs("false")},
			[]string{"verdict dev\n", "commit 7321bafaec552a253f0b2afea1bdf85a649e5034\n", "commit time 2026-12-07T07:30:30Z\n", "opa v1.22.2\n", "go go1."},
			[]string{"uncommitted"}},
		{"uncommitted changes", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("true")},
			[]string{"commit 7321bafaec552a253f0b2afea1bdf85a649e5034 (with uncommitted changes)\n"}, nil},
		{"-buildvcs=false", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Deps: []*debug.Module{&opa}},
			[]string{"verdict dev\n", "commit unknown (built without VCS information", "opa v1.22.2\n"}, []string{"commit time"}},
		{"go install …@v1.4.0", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}},
			[]string{"verdict v1.4.0\n", "opa unknown\n"}, nil},
		{"no build information", nil, []string{"verdict dev\n", "commit unknown"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readBuildVersion(tt.info).String()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("lacks %q:\n%s", w, got)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("has %q:\n%s", n, got)
				}
			}
		})
	}
	// --version and the version command print the same.
	flag, _, code, err := runVerdict(t, "--version")
	cmd, _, _, _ := runVerdict(t, "version")
	if err != nil || code != 0 || flag != cmd || !strings.HasPrefix(flag, "verdict ") {
		t.Errorf("verdict --version (exit %d, %v):\n%s\nverdict version:\n%s", code, err, flag, cmd)
	}
}
