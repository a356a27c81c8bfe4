package store

import (
	"context"
	"fmt"
	"time"

	"github.com/refrain-dev/refrain/migrations"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

// migrationLockKey is the PostgreSQL advisory lock that serialises migrations
// across replicas starting at the same time ("refrain" in ASCII, as an int64).
const migrationLockKey = 0x7265667261696e

// MigrationStatus describes one migration and whether it is applied.
type MigrationStatus struct {
	Name      string
	Comment   string
	Applied   bool
	AppliedAt time.Time
}

// Migrator applies the embedded migrations of the database's dialect.
type Migrator struct {
	db *bun.DB
	m  *migrate.Migrator
}

// NewMigrator prepares a migrator for db.
func NewMigrator(db *bun.DB) (*Migrator, error) {
	fsys, err := migrations.FS(string(DialectOf(db)))
	if err != nil {
		return nil, err
	}
	ms := migrate.NewMigrations()
	if err := ms.Discover(fsys); err != nil {
		return nil, fmt.Errorf("discover migrations: %w", err)
	}
	return &Migrator{db: db, m: migrate.NewMigrator(db, ms, migrate.WithMarkAppliedOnSuccess(true))}, nil
}

// withLock runs fn while holding the migration lock. On PostgreSQL that is a
// session advisory lock, so a second replica waits until the first is done
// and then finds nothing left to apply. SQLite has one writer and runs in one
// process, so its transactions are lock enough.
func (m *Migrator) withLock(ctx context.Context, fn func(ctx context.Context) error) error {
	if DialectOf(m.db) != Postgres {
		if err := m.m.Init(ctx); err != nil {
			return fmt.Errorf("create migration tables: %w", err)
		}
		return fn(ctx)
	}
	conn, err := m.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("take a connection for the migration lock: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(?)", migrationLockKey); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	defer func() {
		// A fresh context: the lock must be released even if ctx is done.
		_, _ = conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock(?)", migrationLockKey)
	}()
	if err := m.m.Init(ctx); err != nil {
		return fmt.Errorf("create migration tables: %w", err)
	}
	return fn(ctx)
}

// Up applies every migration not yet applied and returns their names.
func (m *Migrator) Up(ctx context.Context) ([]string, error) {
	var applied []string
	err := m.withLock(ctx, func(ctx context.Context) error {
		group, err := m.m.Migrate(ctx)
		if group != nil {
			for _, mg := range group.Migrations {
				applied = append(applied, mg.Name+"_"+mg.Comment)
			}
		}
		if err != nil {
			return fmt.Errorf("migrate up: %w", err)
		}
		return nil
	})
	return applied, err
}

// Down rolls back the last group of migrations applied together and returns their names.
func (m *Migrator) Down(ctx context.Context) ([]string, error) {
	var rolled []string
	err := m.withLock(ctx, func(ctx context.Context) error {
		group, err := m.m.Rollback(ctx)
		if group != nil {
			for _, mg := range group.Migrations {
				rolled = append(rolled, mg.Name+"_"+mg.Comment)
			}
		}
		if err != nil {
			return fmt.Errorf("migrate down: %w", err)
		}
		return nil
	})
	return rolled, err
}

// Reset rolls back every applied migration, newest first.
func (m *Migrator) Reset(ctx context.Context) error {
	for {
		rolled, err := m.Down(ctx)
		if err != nil {
			return err
		}
		if len(rolled) == 0 {
			return nil
		}
	}
}

// Status lists every embedded migration and whether it is applied.
func (m *Migrator) Status(ctx context.Context) ([]MigrationStatus, error) {
	var out []MigrationStatus
	err := m.withLock(ctx, func(ctx context.Context) error {
		ms, err := m.m.MigrationsWithStatus(ctx)
		if err != nil {
			return fmt.Errorf("read migration status: %w", err)
		}
		for _, mg := range ms {
			out = append(out, MigrationStatus{Name: mg.Name, Comment: mg.Comment, Applied: mg.IsApplied(), AppliedAt: mg.MigratedAt})
		}
		return nil
	})
	return out, err
}

// Pending reports how many embedded migrations are not applied. It takes no
// lock, so readiness probes can call it cheaply.
func (m *Migrator) Pending(ctx context.Context) (int, error) {
	ms, err := m.m.MigrationsWithStatus(ctx)
	if err != nil {
		return 0, fmt.Errorf("read migration status: %w", err)
	}
	return len(ms.Unapplied()), nil
}
