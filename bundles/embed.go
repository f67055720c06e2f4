// Package bundles embeds the demo bundle that `verdict run` serves when no
// --bundle is given, so a fresh clone answers real questions at once.
package bundles

import (
	"embed"
	"io/fs"
)

//go:embed all:demo
var demo embed.FS

// Demo returns the demo bundle's files, rooted at the bundle directory.
func Demo() fs.FS {
	sub, err := fs.Sub(demo, "demo")
	if err != nil {
		panic(err) // the embedded tree always has demo/
	}
	return sub
}
