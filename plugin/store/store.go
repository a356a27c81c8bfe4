// Package store opens Refrain's database (PostgreSQL or the embedded SQLite
// default), applies its migrations under a lock, and holds the few helpers
// where the two dialects must differ. Domain packages take a bun.IDB and never
// branch on the dialect themselves.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/pgdriver"
)

// ErrNotFound is returned by store functions when the row asked for does not exist.
var ErrNotFound = errors.New("not found")

// Dialect names the SQL dialect of an open database.
type Dialect string

// The supported dialects.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// Options tunes how a database is opened. The zero value is the default.
type Options struct {
	// MaxOpenConns caps the PostgreSQL pool. Default 20. SQLite always uses one
	// connection: SQLite allows one writer, and a single connection turns lock
	// contention into queueing instead of SQLITE_BUSY errors.
	MaxOpenConns int
	// SearchPath sets the PostgreSQL schema search path (tests use a schema per test).
	SearchPath string
	// Schema, on PostgreSQL, is a schema of Refrain's own: created if
	// missing and put first on the search path. It overrides SearchPath.
	Schema string
	// Timeout bounds each PostgreSQL read and write. Default 10s; bulk loads
	// (benchmarks) raise it.
	Timeout time.Duration
}

// DialectOf reports the dialect of a bun database or transaction.
func DialectOf(db bun.IDB) Dialect {
	if db.Dialect().Name() == dialect.PG {
		return Postgres
	}
	return SQLite
}

// ParseURL tells which dialect a database URL selects and returns the
// driver-level address: a postgres:// or postgresql:// URL for PostgreSQL; a
// sqlite: or file: URL, or a bare path, for SQLite.
func ParseURL(raw string) (Dialect, string, error) {
	switch {
	case raw == "":
		return "", "", errors.New("empty database URL")
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		if _, err := url.Parse(raw); err != nil {
			return "", "", fmt.Errorf("parse database URL: %w", err)
		}
		return Postgres, raw, nil
	case strings.HasPrefix(raw, "sqlite://"):
		return SQLite, strings.TrimPrefix(raw, "sqlite://"), nil
	case strings.HasPrefix(raw, "sqlite:"):
		return SQLite, strings.TrimPrefix(raw, "sqlite:"), nil
	case strings.HasPrefix(raw, "file:"):
		return SQLite, strings.TrimPrefix(raw, "file:"), nil
	case strings.Contains(raw, "://"):
		return "", "", fmt.Errorf("unsupported database URL scheme in %q: use postgres://, sqlite: or a file path", redact(raw))
	default:
		return SQLite, raw, nil
	}
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable)"
	}
	return u.Redacted()
}

// Open opens the database a URL names. It does not migrate it.
func Open(ctx context.Context, rawURL string, opts *Options) (*bun.DB, error) {
	if opts == nil {
		opts = &Options{}
	}
	d, addr, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	var db *bun.DB
	switch d {
	case Postgres:
		timeout := opts.Timeout
		if timeout <= 0 {
			timeout = 10 * time.Second
		}
		connOpts := []pgdriver.Option{pgdriver.WithDSN(addr), pgdriver.WithTimeout(timeout)}
		searchPath := opts.SearchPath
		if opts.Schema != "" {
			searchPath = opts.Schema
		}
		if searchPath != "" {
			connOpts = append(connOpts, pgdriver.WithConnParams(map[string]any{"search_path": searchPath}))
		}
		sqldb := sql.OpenDB(pgdriver.NewConnector(connOpts...))
		n := opts.MaxOpenConns
		if n <= 0 {
			n = 20
		}
		sqldb.SetMaxOpenConns(n)
		sqldb.SetMaxIdleConns(n)
		sqldb.SetConnMaxIdleTime(5 * time.Minute)
		db = bun.NewDB(sqldb, pgdialect.New())
	case SQLite:
		if err := checkSQLitePath(addr); err != nil {
			return nil, err
		}
		dsn := sqliteDSN(addr)
		// modernc.org/sqlite under its own name: the functions registered
		// in localtime.go live on that driver (sqliteshim makes another).
		sqldb, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("open sqlite %q: %w", addr, err)
		}
		sqldb.SetMaxOpenConns(1)
		sqldb.SetMaxIdleConns(1)
		sqldb.SetConnMaxLifetime(0)
		sqldb.SetConnMaxIdleTime(0)
		db = bun.NewDB(sqldb, sqlitedialect.New())
	}
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		_ = db.Close()
		if d == SQLite {
			// SQLite reports a file it cannot open as "out of memory (14)"
			// (SQLITE_CANTOPEN): say what to check instead.
			return nil, fmt.Errorf("open SQLite file %s: cannot open or create it: check that its directory is writable (%w)", addr, err)
		}
		return nil, fmt.Errorf("connect to %s database: %w", d, err)
	}
	if d == Postgres && opts.Schema != "" {
		if _, err := db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS ?", bun.Ident(opts.Schema)); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("create schema %s: %w", opts.Schema, err)
		}
	}
	return db, nil
}

// checkSQLitePath explains the usual reasons SQLite cannot open a file
// before SQLite does, since its own message for each is "out of memory".
func checkSQLitePath(addr string) error {
	path, _, _ := strings.Cut(addr, "?")
	if path == "" || path == ":memory:" {
		return nil
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("open SQLite file %s: it is a directory: give a file path such as sqlite:%s", path, filepath.Join(path, "refrain.db"))
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("open SQLite file %s: the directory %s does not exist: create it first", path, dir)
	case err != nil:
		return fmt.Errorf("open SQLite file %s: %w", path, err)
	case !fi.IsDir():
		return fmt.Errorf("open SQLite file %s: %s is not a directory", path, dir)
	}
	return nil
}

// sqliteDSN adds the connection settings every SQLite connection needs: WAL
// so readers proceed while the one writer writes, a busy timeout for other
// processes (the CLI next to a running server), foreign keys, and immediate
// transactions so a read-then-write transaction never fails to upgrade its lock.
func sqliteDSN(path string) string {
	const params = "_txlock=immediate&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)" +
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	if path == ":memory:" {
		return "file::memory:?" + params
	}
	if strings.Contains(path, "?") {
		return "file:" + path + "&" + params
	}
	return "file:" + path + "?" + params
}
