package store

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// JSONArrayContains returns a condition, with one ? placeholder for a
// string, that holds when the JSON array in column contains that string.
// column must be a fixed identifier from code, never user input.
func JSONArrayContains(db bun.IDB, column string) string {
	if DialectOf(db) == Postgres {
		return column + " @> jsonb_build_array(?::text)"
	}
	return "EXISTS (SELECT 1 FROM json_each(" + column + ") WHERE json_each.value = ?)"
}

// JSONMerge returns an expression that shallow-merges the JSON object in
// right over the one in left (keys of right win). Both are SQL expressions
// from code.
func JSONMerge(db bun.IDB, left, right string) string {
	if DialectOf(db) == Postgres {
		return "(" + left + " || " + right + ")"
	}
	return "json_patch(" + left + ", " + right + ")"
}

// In returns the condition "column is one of values" and its argument,
// for a Where: on PostgreSQL "column = ANY(?)" with values as one array,
// which the server parses as a single constant (a list of a thousand ids
// costs it more to parse and plan than to run); on SQLite "column IN
// (?)". values is a slice of ids or strings; column a fixed identifier
// from code.
func In[T int64 | string](db bun.IDB, column string, values []T) (string, any) {
	if DialectOf(db) == Postgres {
		return column + " = ANY(?)", pgdialect.Array(values)
	}
	return column + " IN (?)", bun.List(values)
}

// ForUpdate locks the rows q selects until the end of its transaction, on
// PostgreSQL. SQLite has no row locks and needs none: it runs one writing
// transaction at a time, so the rows cannot change under the reader.
func ForUpdate(q *bun.SelectQuery) *bun.SelectQuery {
	if DialectOf(q.DB()) == Postgres {
		return q.For("UPDATE")
	}
	return q
}

// SkipLocked makes q a claim: on PostgreSQL it locks the rows it selects
// and passes over those another transaction holds, so that workers on
// several replicas take disjoint batches. On SQLite, where one writer runs
// at a time, q is unchanged.
func SkipLocked(q *bun.SelectQuery) *bun.SelectQuery {
	if DialectOf(q.DB()) == Postgres {
		return q.For("UPDATE SKIP LOCKED")
	}
	return q
}

// SetLocal sets a PostgreSQL setting for the rest of the transaction tx
// ("jit = off", "synchronous_commit = off"): tuning that changes speed or
// durability, never results. SQLite has no such settings; there it does
// nothing. setting must be a fixed string from code.
func SetLocal(ctx context.Context, tx bun.IDB, setting string) error {
	if DialectOf(tx) != Postgres {
		return nil
	}
	if _, err := tx.ExecContext(ctx, "SET LOCAL "+setting); err != nil {
		return fmt.Errorf("set local %s: %w", setting, err)
	}
	return nil
}

// Analyze refreshes the planner statistics of table on PostgreSQL, after
// a bulk write that would otherwise leave the planner scanning a table it
// believes empty. SQLite plans these queries without statistics; there it
// does nothing. table must be a fixed identifier from code.
func Analyze(ctx context.Context, db bun.IDB, table string) error {
	if DialectOf(db) != Postgres {
		return nil
	}
	if _, err := db.ExecContext(ctx, "ANALYZE "+table); err != nil {
		return fmt.Errorf("analyze %s: %w", table, err)
	}
	return nil
}

// BytesContain returns a condition, with one ? placeholder for a string,
// that holds when the binary column (bytea on PostgreSQL, a blob on SQLite)
// contains that string as UTF-8 bytes. column must be a fixed identifier
// from code.
func BytesContain(db bun.IDB, column string) string {
	if DialectOf(db) == Postgres {
		return "position(convert_to(?, 'UTF8') in " + column + ") > 0"
	}
	return "instr(CAST(" + column + " AS TEXT), ?) > 0"
}

// Arrays reports whether db takes a whole array as one bound parameter
// (PostgreSQL: unnest, = ANY, ctid arrays). The few bulk paths written for
// it (inserting thousands of rows from column arrays, per-key lateral
// lookups, claiming rows by ctid) are a different algorithm from their
// SQLite form, not a different spelling, so they stay as two named
// functions chosen on Arrays.
func Arrays(db bun.IDB) bool { return DialectOf(db) == Postgres }

// ConcurrentWriters reports whether several connections may write to db at
// once. SQLite serialises writers, so a caller that would fan writes out
// over workers uses one.
func ConcurrentWriters(db bun.IDB) bool { return DialectOf(db) == Postgres }

// Copy reports whether db accepts COPY FROM STDIN for bulk loads
// (PostgreSQL). Bulk import uses it and falls back to multi-row inserts.
func Copy(db bun.IDB) bool { return DialectOf(db) == Postgres }
