package main

import (
	"fmt"
	"runtime/debug"
	"strings"

	"golang.org/x/mod/module"

	"github.com/refrain-dev/refrain/plugin"
)

// versionString describes this build from its build information: the
// module version (set by go install module@version) and the commit (set by
// go build in a git checkout), or plugin.Version when the release process
// sets it with -ldflags.
func versionString() string {
	bi, _ := debug.ReadBuildInfo()
	return formatVersion(plugin.Version, bi)
}

// formatVersion renders "refrain VERSION (commit C[, modified], GO)".
func formatVersion(ldflagsVersion string, bi *debug.BuildInfo) string {
	version := ldflagsVersion
	if bi == nil {
		return "refrain " + version
	}
	if version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		version = bi.Main.Version
	}
	var commit, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		}
	}
	var details []string
	switch {
	case commit != "":
		details = append(details, "commit "+shortCommit(commit)+modified)
	case module.IsPseudoVersion(version):
		// go install module@commit: the pseudo-version ends with the commit.
		rev, _ := module.PseudoVersionRev(version)
		details = append(details, "commit "+rev)
	default:
		details = append(details, "commit unknown")
	}
	details = append(details, bi.GoVersion)
	return fmt.Sprintf("refrain %s (%s)", version, strings.Join(details, ", "))
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}
