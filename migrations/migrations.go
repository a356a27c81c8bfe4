// Package migrations embeds Refrain's SQL migrations, one set per dialect:
// postgres/ for PostgreSQL and sqlite/ for SQLite. Files are named
// <version>_<name>.tx.up.sql and .tx.down.sql (bun migrate), each run in a
// transaction. Statements in one file are separated by --bun:split lines.
// SQL comments here must not contain apostrophes: pgdriver v1.2.18 mis-parses
// them as quotes.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// FS returns the migration files of a dialect ("postgres" or "sqlite").
func FS(dialect string) (fs.FS, error) {
	switch dialect {
	case "postgres", "sqlite":
		return fs.Sub(files, dialect)
	default:
		return nil, fmt.Errorf("no migrations for dialect %q", dialect)
	}
}
