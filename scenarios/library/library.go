// Package library holds the built-in program library: one scenario per
// file, embedded in the binary. Its templates are in the templates
// subpackage.
package library

import (
	"embed"
	"io/fs"
	"path"
	"sort"
)

// FS holds the built-in scenarios, one <id>.yaml each.
//
//go:embed *.yaml
var FS embed.FS

// File is one scenario file of the library.
type File struct {
	// Name is the file name ("welcome.yaml").
	Name string
	Data []byte
}

// Files returns every library file, sorted by name.
func Files() []File {
	names, _ := fs.Glob(FS, "*.yaml")
	sort.Strings(names)
	out := make([]File, 0, len(names))
	for _, n := range names {
		data, _ := FS.ReadFile(n)
		out = append(out, File{Name: path.Join("library", n), Data: data})
	}
	return out
}
