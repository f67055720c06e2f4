package main

import (
	"github.com/verdict-authz/verdict/bundles"
	"github.com/verdict-authz/verdict/loader"
)

// bundleSources turns --bundle arguments into sources; none means the
// embedded demo bundle.
func bundleSources(args []string) ([]loader.Source, error) {
	if len(args) == 0 {
		return []loader.Source{{Name: "demo", Location: "(embedded demo bundle)", FS: bundles.Demo()}}, nil
	}
	out := make([]loader.Source, 0, len(args))
	for _, a := range args {
		src, err := loader.ParseSource(a)
		if err != nil {
			return nil, err
		}
		out = append(out, src)
	}
	return out, nil
}
