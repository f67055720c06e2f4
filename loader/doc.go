// Package loader reads bundles (directories, .tar.gz files and the embedded
// demo) with OPA's bundle package, parses and validates the verdict data in
// them, and builds the next decision generation: the store update and the
// compiled Rego, installed together with one pointer swap.
package loader
