package store

import (
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
	return column + " IN (?)", bun.In(values)
}
