// Package templates holds the message templates of the built-in program
// library, embedded in the binary. The layout of the files, the data
// templates see and the rules they follow are those of package
// github.com/refrain-dev/refrain/plugin/mail/template, which loads FS.
package templates

import "embed"

// FS holds the built-in templates: <name>/<locale>/{subject.txt,body.html,body.txt}
// and _layout/<locale>/{layout.html,layout.txt}.
//
//go:embed */*/*.html */*/*.txt
var FS embed.FS
