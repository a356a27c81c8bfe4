package store

import (
	"github.com/uptrace/bun"
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
