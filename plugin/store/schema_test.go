package store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/store"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

// emptyDB opens an empty database of dialect d: a new SQLite file, or a
// new PostgreSQL schema (dropped at the end) opened through Options.Schema,
// which must create it.
func emptyDB(t *testing.T, d store.Dialect) *bun.DB {
	t.Helper()
	ctx := context.Background()
	if d == store.SQLite {
		db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "empty.db"), nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
	url := os.Getenv(storetest.PostgresURLEnv)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "own_" + hex.EncodeToString(b[:])
	db, err := store.Open(ctx, url, &store.Options{Schema: schema, MaxOpenConns: 2})
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		_ = db.Close()
	})
	var current string
	require.NoError(t, db.NewRaw("SELECT current_schema()").Scan(ctx, &current))
	require.Equal(t, schema, current, "Options.Schema creates the schema and puts it first on the search path")
	return db
}

// TestCheckOwnSchema: an empty schema and a schema Refrain migrated pass; a
// schema holding another application's tables is refused, naming them.
func TestCheckOwnSchema(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			db := emptyDB(t, d)
			require.NoError(t, store.CheckOwnSchema(ctx, db), "an empty schema")

			_, err := db.ExecContext(ctx, "CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
			require.NoError(t, err)
			err = store.CheckOwnSchema(ctx, db)
			require.ErrorIs(t, err, store.ErrSharedSchema)
			require.ErrorContains(t, err, "holds 1 tables (accounts) and no Refrain migration table")

			m, err := store.NewMigrator(db)
			require.NoError(t, err)
			_, err = m.Up(ctx)
			require.NoError(t, err)
			require.NoError(t, store.CheckOwnSchema(ctx, db), "a schema Refrain migrated is its own")
		})
	}
}

// TestOpenSQLiteBadPath: the usual mistakes get a message that says what
// is wrong, not SQLite's "out of memory (14)".
func TestOpenSQLiteBadPath(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	_, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "missing", "r.db"), nil)
	require.ErrorContains(t, err, "the directory "+filepath.Join(dir, "missing")+" does not exist")
	require.NotContains(t, err.Error(), "out of memory")
	_, err = store.Open(ctx, "sqlite:"+dir, nil)
	require.ErrorContains(t, err, "it is a directory")
}
