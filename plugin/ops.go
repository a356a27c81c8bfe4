package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/refrain-dev/refrain/plugin/store"
	"github.com/uptrace/bun"
)

// openDB opens the configured database for a one-off command.
func openDB(ctx context.Context, cfg Config) (*bun.DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, cfg.DatabaseURL, cfg.storeOptions())
	if err != nil {
		return nil, fmt.Errorf("open database (REFRAIN_DATABASE_URL): %w", err)
	}
	return db, nil
}

// openMigrated opens the database for a command and applies pending
// migrations when AutoMigrate is on, as serve would.
func openMigrated(ctx context.Context, cfg Config) (*bun.DB, error) {
	db, err := openDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if cfg.AutoMigrate {
		if _, err := migrateUp(ctx, db, cfg); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}

// Migrate runs `refrain migrate up|down|status` and reports to w.
func Migrate(ctx context.Context, cfg Config, action string, w io.Writer) error {
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	// Even status creates the migration tables: check before anything.
	if err := checkOwnSchema(ctx, db, cfg); err != nil {
		return err
	}
	m, err := store.NewMigrator(db)
	if err != nil {
		return err
	}
	switch action {
	case "up":
		applied, err := m.Up(ctx)
		if err != nil {
			return err
		}
		if len(applied) == 0 {
			fmt.Fprintln(w, "nothing to apply: the database is up to date")
		}
		for _, n := range applied {
			fmt.Fprintln(w, "applied", n)
		}
	case "down":
		rolled, err := m.Down(ctx)
		if err != nil {
			return err
		}
		if len(rolled) == 0 {
			fmt.Fprintln(w, "nothing to roll back")
		}
		for _, n := range rolled {
			fmt.Fprintln(w, "rolled back", n)
		}
	case "status":
		st, err := m.Status(ctx)
		if err != nil {
			return err
		}
		for _, s := range st {
			state := "pending"
			if s.Applied {
				state = "applied " + s.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
			}
			fmt.Fprintf(w, "%s_%s\t%s\n", s.Name, s.Comment, state)
		}
	default:
		return fmt.Errorf("unknown migrate action %q: use up, down or status", action)
	}
	return nil
}

// storeOptions returns how the configured database is opened.
func (c Config) storeOptions() *store.Options {
	return &store.Options{MaxOpenConns: c.DatabaseMaxConns, Schema: c.DatabaseSchema}
}

// checkOwnSchema refuses a schema that holds tables of another application
// unless REFRAIN_DATABASE_SHARED_SCHEMA allows it, and says how to go on.
func checkOwnSchema(ctx context.Context, db *bun.DB, cfg Config) error {
	if cfg.DatabaseSharedSchema {
		return nil
	}
	if err := store.CheckOwnSchema(ctx, db); err != nil {
		if errors.Is(err, store.ErrSharedSchema) {
			return fmt.Errorf("%w: refusing to create Refrain's tables beside them. Give Refrain a schema of its own "+
				"(REFRAIN_DATABASE_SCHEMA=refrain) or a database of its own, or set REFRAIN_DATABASE_SHARED_SCHEMA=true to share this one", err)
		}
		return err
	}
	return nil
}

// migrateUp applies pending migrations after checking that the schema is
// Refrain's, and returns the names applied.
func migrateUp(ctx context.Context, db *bun.DB, cfg Config) ([]string, error) {
	if err := checkOwnSchema(ctx, db, cfg); err != nil {
		return nil, err
	}
	m, err := store.NewMigrator(db)
	if err != nil {
		return nil, err
	}
	return m.Up(ctx)
}
