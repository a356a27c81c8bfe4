// Package storetest hands tests fresh, migrated databases: always an SQLite
// file in a temporary directory, and a PostgreSQL schema of its own when
// REFRAIN_TEST_POSTGRES_URL is set (CI always sets it). Each database is
// dropped when the test ends, so tests run in parallel without sharing rows.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/refrain-dev/refrain/plugin/store"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
)

// PostgresURLEnv names the variable that holds the PostgreSQL test server URL.
const PostgresURLEnv = "REFRAIN_TEST_POSTGRES_URL"

// DB is one test database.
type DB struct {
	*bun.DB
	// URL opens the same database again (another replica, a CLI command).
	URL string
	// SearchPath is the PostgreSQL schema of this database, empty on SQLite.
	SearchPath string
}

// Reopen opens a second, independent connection pool on the same database,
// as a second replica would. It is closed when the test ends.
func (d *DB) Reopen(t testing.TB) *bun.DB {
	t.Helper()
	db, err := store.Open(context.Background(), d.URL, &store.Options{SearchPath: d.SearchPath})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// Each runs fn as a subtest on every available database: "sqlite" always,
// "postgres" when REFRAIN_TEST_POSTGRES_URL is set. Each gets a fresh,
// migrated database.
func Each(t *testing.T, fn func(t *testing.T, db *DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	if os.Getenv(PostgresURLEnv) != "" {
		t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
	}
}

// Dialects lists the dialects Each would run on.
func Dialects() []store.Dialect {
	if os.Getenv(PostgresURLEnv) != "" {
		return []store.Dialect{store.SQLite, store.Postgres}
	}
	return []store.Dialect{store.SQLite}
}

// Open returns a fresh migrated database of the given dialect, skipping the
// test when PostgreSQL is asked for and not configured.
func Open(t testing.TB, d store.Dialect) *DB {
	t.Helper()
	if d == store.Postgres {
		return Postgres(t)
	}
	return SQLite(t)
}

// SQLite returns a fresh migrated SQLite database in a temporary directory.
func SQLite(t testing.TB) *DB {
	t.Helper()
	d := &DB{URL: "sqlite:" + filepath.Join(t.TempDir(), "refrain-test.db")}
	d.DB = openMigrated(t, d.URL, "")
	return d
}

// Postgres returns a fresh migrated PostgreSQL schema, or skips the test when
// REFRAIN_TEST_POSTGRES_URL is not set.
func Postgres(t testing.TB) *DB {
	t.Helper()
	url := os.Getenv(PostgresURLEnv)
	if url == "" {
		t.Skip(PostgresURLEnv + " is not set")
	}
	ctx := context.Background()
	admin, err := store.Open(ctx, url, &store.Options{MaxOpenConns: 2})
	require.NoError(t, err, "connect to "+PostgresURLEnv)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	_, err = admin.ExecContext(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		_ = admin.Close()
	})
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	// The schema rides in the URL (pgdriver passes unknown parameters to the
	// server), so anything opening d.URL lands in this test's schema.
	d := &DB{URL: url + sep + "search_path=" + schema, SearchPath: schema}
	d.DB = openMigrated(t, d.URL, schema)
	return d
}

func openMigrated(t testing.TB, url, searchPath string) *bun.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, url, &store.Options{SearchPath: searchPath, MaxOpenConns: 8})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	m, err := store.NewMigrator(db)
	require.NoError(t, err)
	_, err = m.Up(ctx)
	require.NoError(t, err)
	return db
}

// QueryCounter counts the SQL statements a database runs while it is on.
type QueryCounter struct {
	on    atomic.Bool
	count atomic.Int64
}

// CountQueries installs a counter on db. Call Start, do the work, then Stop.
func CountQueries(db *bun.DB) *QueryCounter {
	c := &QueryCounter{}
	db.AddQueryHook(c)
	return c
}

// Start resets the count and starts counting.
func (c *QueryCounter) Start() { c.count.Store(0); c.on.Store(true) }

// Stop stops counting and returns the number of statements run since Start.
func (c *QueryCounter) Stop() int64 { c.on.Store(false); return c.count.Load() }

// BeforeQuery implements bun.QueryHook.
func (c *QueryCounter) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	if c.on.Load() {
		c.count.Add(1)
	}
	return ctx
}

// AfterQuery implements bun.QueryHook.
func (c *QueryCounter) AfterQuery(context.Context, *bun.QueryEvent) {}
