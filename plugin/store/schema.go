package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/uptrace/bun"
)

// migrationsTable is the table bun/migrate keeps the applied migrations in:
// a schema holding it was set up by Refrain.
const migrationsTable = "bun_migrations"

// ErrSharedSchema is returned by CheckOwnSchema when the schema (or SQLite
// file) holds tables of another application and no Refrain migration table.
var ErrSharedSchema = errors.New("the database holds tables Refrain did not create")

// CheckOwnSchema refuses to let migrations run in a schema that belongs to
// another application: one that holds tables but not Refrain's migration
// table. An empty schema, or one Refrain has migrated before, passes. It
// looks at the current schema on PostgreSQL (the first on the search path)
// and at the whole file on SQLite.
func CheckOwnSchema(ctx context.Context, db bun.IDB) error {
	var tables []string
	var schema string
	if DialectOf(db) == Postgres {
		if err := db.NewRaw("SELECT current_schema()").Scan(ctx, &schema); err != nil {
			return fmt.Errorf("read the current schema: %w", err)
		}
		if err := db.NewRaw("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name").
			Scan(ctx, &tables); err != nil {
			return fmt.Errorf("list the tables of schema %s: %w", schema, err)
		}
	} else {
		if err := db.NewRaw("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' ORDER BY name").
			Scan(ctx, &tables); err != nil {
			return fmt.Errorf("list the tables of the SQLite file: %w", err)
		}
	}
	if len(tables) == 0 || slices.Contains(tables, migrationsTable) {
		return nil
	}
	shown := tables
	if len(shown) > 5 {
		shown = append(shown[:5:5], "...")
	}
	where := "the SQLite file"
	if schema != "" {
		where = "schema " + schema
	}
	return fmt.Errorf("%w: %s holds %d tables (%s) and no Refrain migration table", ErrSharedSchema, where, len(tables), strings.Join(shown, ", "))
}
