package segment

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/store"
)

// Where returns the rule as an SQL condition over the customers table
// aliased c, for dialect d at now, with its arguments for bun's ?
// placeholders. Columns come from a whitelist; every value from the rule
// is an argument.
func (r *Rule) Where(d store.Dialect, now time.Time) (string, []any) {
	b := &sqlb{pg: d == store.Postgres, now: now.UTC()}
	s := b.cond(r.root)
	return s, b.args
}

// Query returns a select of matching customers, aliased c, with no columns
// chosen yet.
func (r *Rule) Query(db bun.IDB, now time.Time) *bun.SelectQuery {
	cond, args := r.Where(store.DialectOf(db), now)
	return db.NewSelect().TableExpr("customers AS c").Where(cond, args...)
}

// IDs returns the primary keys of the customers matching r at now, in order.
func (r *Rule) IDs(ctx context.Context, db bun.IDB, now time.Time) ([]int64, error) {
	var ids []int64
	err := r.Query(db, now).Column("c.id").OrderExpr("c.id").Scan(ctx, &ids)
	if err != nil {
		return nil, fmt.Errorf("segment %q: %w", r.src, err)
	}
	return ids, nil
}

// Count counts the customers matching r at now.
func (r *Rule) Count(ctx context.Context, db bun.IDB, now time.Time) (int, error) {
	n, err := r.Query(db, now).Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("segment %q: %w", r.src, err)
	}
	return int(n), nil
}

type sqlb struct {
	pg   bool
	now  time.Time
	args []any
	// definite asks conditions that are never NULL: under NOT, and inside
	// comparisons. Elsewhere (AND and OR up to WHERE) NULL works as FALSE,
	// so plain comparisons, which can use indexes, are enough.
	definite bool
}

func (b *sqlb) arg(v any) string {
	b.args = append(b.args, v)
	return "?"
}

// cond renders a boolean node as a condition that is never NULL.
func (b *sqlb) cond(n node) string {
	if v, ok := constant(n); ok {
		if v.(bool) {
			return "TRUE"
		}
		return "FALSE"
	}
	switch n := n.(type) {
	case *logicNode:
		op := " AND "
		if n.op == "||" {
			op = " OR "
		}
		l := b.cond(n.l)
		return "(" + l + op + b.cond(n.r) + ")"
	case *notNode:
		saved := b.definite
		b.definite = true
		x := b.cond(n.x)
		b.definite = saved
		return "(NOT " + x + ")"
	case *hasNode:
		return b.has(n)
	case *cmpNode:
		return b.compare(n)
	}
	panic(fmt.Sprintf("segment: %T is not a condition", n))
}

func (b *sqlb) compare(n *cmpNode) string {
	if n.on == tNull {
		other := n.l
		if isNull(n.l) {
			other = n.r
		}
		not := ""
		if n.op == "!=" {
			not = "NOT "
		}
		if isNull(other) {
			if n.op == "==" {
				return "TRUE"
			}
			return "FALSE"
		}
		if j, ok := other.(*jsonNode); ok && j.as == tJSON {
			if b.pg {
				return "(" + not + "COALESCE(jsonb_typeof(" + sqlColumns[j.column] + "->" + b.arg(j.key) + "::text), 'null') = 'null')"
			}
			return "(" + not + "COALESCE(json_type(" + sqlColumns[j.column] + ", " + b.arg(path(j.key)) + "), 'null') = 'null')"
		}
		return "(" + b.value(other, false) + " IS " + not + "NULL)"
	}
	julian := false
	if n.on == tTime && !b.pg {
		julian = hasOffset(n.l) || hasOffset(n.r)
	}
	l := b.value(n.l, julian)
	if n.on == tStr && b.pg && n.op != "==" && n.op != "!=" {
		l += ` COLLATE "C"`
	}
	r := b.value(n.r, julian)
	if !b.definite && (isConstArg(n.l) || isConstArg(n.r)) && n.op == "==" {
		// A NULL side gives NULL, which WHERE takes as false, as memory does.
		return "(" + l + " = " + r + ")"
	}
	switch n.op {
	case "==":
		if b.pg {
			return "(" + l + " IS NOT DISTINCT FROM " + r + ")"
		}
		return "(" + l + " IS " + r + ")"
	case "!=":
		if b.pg {
			return "(" + l + " IS DISTINCT FROM " + r + ")"
		}
		return "(" + l + " IS NOT " + r + ")"
	}
	if !b.definite {
		return "(" + l + " " + n.op + " " + r + ")"
	}
	return "COALESCE(" + l + " " + n.op + " " + r + ", FALSE)"
}

// isConstArg reports a constant, never NULL, value.
func isConstArg(n node) bool {
	if _, ok := n.(*nowNode); ok {
		return true
	}
	if a, ok := n.(*arithNode); ok && a.t == tTime {
		_, isNow := base(a).(*nowNode)
		return isNow
	}
	v, ok := constant(n)
	return ok && v != nil
}

func isNull(n node) bool {
	l, ok := n.(*litNode)
	return ok && l.t == tNull
}

func hasOffset(n node) bool {
	a, ok := n.(*arithNode)
	if !ok || a.t != tTime {
		return false
	}
	if _, ok := constant(a.r); !ok {
		return true
	}
	_, isNow := base(a).(*nowNode)
	return !isNow
}

// base returns the time a chain of time +/- duration starts from, and
// offset the sum of its durations.
func base(n node) node {
	if a, ok := n.(*arithNode); ok && a.t == tTime {
		return base(a.l)
	}
	return n
}

func offset(n node) time.Duration {
	a, ok := n.(*arithNode)
	if !ok || a.t != tTime {
		return 0
	}
	v, _ := constant(a.r)
	d := v.(time.Duration)
	if a.op == "-" {
		d = -d
	}
	return offset(a.l) + d
}

func path(key string) string { return `$."` + key + `"` }

// value renders a non-boolean node (or a boolean one inside a comparison).
// julian asks SQLite times as Julian day numbers.
func (b *sqlb) value(n node, julian bool) string {
	switch n.typ() {
	case tBool:
		if j, ok := n.(*jsonNode); ok {
			return b.json(j)
		}
		saved := b.definite
		b.definite = true
		x := b.cond(n)
		b.definite = saved
		return x
	case tTime:
		bn, off := base(n), offset(n)
		if t, ok := b.instant(bn); ok {
			t = t.Add(off)
			if julian {
				return "julianday(" + b.arg(t) + ")"
			}
			return b.arg(t)
		}
		col := sqlColumns[bn.(*colNode).name]
		switch {
		case b.pg && off != 0:
			return "(" + col + " + make_interval(secs => " + b.arg(off.Seconds()) + "))"
		case b.pg:
			return col
		case julian && off != 0:
			return "julianday(" + col + ", " + b.arg(fmt.Sprintf("%+.3f seconds", off.Seconds())) + ")"
		case julian:
			return "julianday(" + col + ")"
		}
		return col
	}
	if v, ok := constant(n); ok {
		return b.arg(v)
	}
	switch n := n.(type) {
	case *colNode:
		return sqlColumns[n.name]
	case *jsonNode:
		return b.json(n)
	case *negNode:
		return "(-" + b.value(n.x, julian) + ")"
	case *arithNode:
		l := b.value(n.l, julian)
		return "(" + l + " " + n.op + " " + b.value(n.r, julian) + ")"
	case *countNode:
		return b.count(n)
	case *localNode:
		return b.local(n)
	}
	panic(fmt.Sprintf("segment: %T has no SQL value", n))
}

// instant returns the time of now or of a date literal.
func (b *sqlb) instant(n node) (time.Time, bool) {
	switch n := n.(type) {
	case *nowNode:
		return b.now, true
	case *litNode:
		if t, ok := n.v.(time.Time); ok {
			return t, true
		}
	}
	return time.Time{}, false
}

// local renders a local part of a time: EXTRACT in PostgreSQL, with the
// customer zone checked against pg_timezone_names (an unknown name would
// fail the query; it reads as UTC, as in memory), and refrain_local (a Go
// function registered by package store) in SQLite.
func (b *sqlb) local(n *localNode) string {
	t := b.value(n.t, false)
	if b.pg {
		zone := "(CASE WHEN c.time_zone IN (SELECT z.name FROM pg_timezone_names AS z) THEN c.time_zone ELSE 'UTC' END)"
		if n.zone != "" {
			zone = "CAST(" + b.arg(n.zone) + " AS text)"
		}
		return "CAST(EXTRACT(" + store.LocalParts[n.part] + " FROM (CAST(" + t + " AS timestamptz) AT TIME ZONE " + zone + ")) AS float8)"
	}
	zone := "c.time_zone"
	if n.zone != "" {
		zone = b.arg(n.zone)
	}
	s := "refrain_local(" + t + ", " + zone + ", " + b.arg(n.part)
	// now and dates come with their offset added; a column comes alone
	// (value leaves SQLite offsets to julianday) and its offset follows.
	if _, isCol := base(n.t).(*colNode); isCol && offset(n.t) != 0 {
		s += ", " + b.arg(offset(n.t).Seconds())
	}
	return s + ")"
}

func (b *sqlb) json(j *jsonNode) string {
	col := sqlColumns[j.column]
	if b.pg {
		switch j.as {
		case tStr:
			return "(CASE WHEN jsonb_typeof(" + col + "->" + b.arg(j.key) + "::text) = 'string' THEN " + col + "->>" + b.arg(j.key) + "::text END)"
		case tNum:
			return "(CASE WHEN jsonb_typeof(" + col + "->" + b.arg(j.key) + "::text) = 'number' THEN (" + col + "->>" + b.arg(j.key) + "::text)::float8 END)"
		case tBool:
			return "(CASE WHEN jsonb_typeof(" + col + "->" + b.arg(j.key) + "::text) = 'boolean' THEN (" + col + "->>" + b.arg(j.key) + "::text)::boolean END)"
		}
		return "(" + col + "->" + b.arg(j.key) + "::text)"
	}
	p := path(j.key)
	switch j.as {
	case tStr:
		return "(CASE WHEN json_type(" + col + ", " + b.arg(p) + ") = 'text' THEN json_extract(" + col + ", " + b.arg(p) + ") END)"
	case tNum:
		return "(CASE WHEN json_type(" + col + ", " + b.arg(p) + ") IN ('integer', 'real') THEN json_extract(" + col + ", " + b.arg(p) + ") END)"
	case tBool:
		return "(CASE json_type(" + col + ", " + b.arg(p) + ") WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)"
	}
	return "json_extract(" + col + ", " + b.arg(p) + ")"
}

func (b *sqlb) has(n *hasNode) string {
	if c, ok := n.list.(*colNode); ok {
		col := sqlColumns[c.name]
		if b.pg {
			return "(" + col + " @> jsonb_build_array(" + b.arg(n.val) + "::text))"
		}
		return "EXISTS (SELECT 1 FROM json_each(" + col + ") AS t WHERE t.type = 'text' AND t.value = " + b.arg(n.val) + ")"
	}
	j := n.list.(*jsonNode)
	col := sqlColumns[j.column]
	if j.key == "" {
		if b.pg {
			return "jsonb_exists(" + col + ", " + b.arg(n.val) + "::text)"
		}
		return "(json_type(" + col + ", " + b.arg(path(n.val)) + ") IS NOT NULL)"
	}
	if b.pg {
		k := b.arg(j.key)
		s := "(CASE jsonb_typeof(" + col + "->" + k + "::text) WHEN 'array' THEN (" + col + "->" + b.arg(j.key) + "::text) @> jsonb_build_array(" + b.arg(n.val) + "::text)"
		return s + " WHEN 'object' THEN jsonb_exists(" + col + "->" + b.arg(j.key) + "::text, " + b.arg(n.val) + "::text) ELSE FALSE END)"
	}
	p := path(j.key)
	s := "EXISTS (SELECT 1 FROM json_each(" + col + ", " + b.arg(p) + ") AS t WHERE CASE json_type(" + col + ", " + b.arg(p) + ")"
	return s + " WHEN 'array' THEN t.type = 'text' AND t.value = " + b.arg(n.val) + " WHEN 'object' THEN t.key = " + b.arg(n.val) + " ELSE FALSE END)"
}

func (b *sqlb) count(n *countNode) string {
	var s string
	switch n.kind {
	case "events":
		s = "(SELECT COUNT(*) FROM customer_events AS e WHERE e.customer_id = c.id AND e.type = " + b.arg(n.event)
	case "opens":
		s = "(SELECT COUNT(*) FROM message_events AS e WHERE e.customer_id = c.id AND e.kind = 'opened' AND e.machine_open = FALSE"
	default:
		s = "(SELECT COUNT(*) FROM message_events AS e WHERE e.customer_id = c.id AND e.kind = 'clicked'"
	}
	if n.window > 0 {
		s += " AND e.occurred_at >= " + b.arg(b.now.Add(-n.window))
	}
	if n.product != "" {
		if b.pg {
			s += " AND EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(e.properties->'products') = 'array' THEN e.properties->'products' ELSE '[]'::jsonb END) AS p(v)" +
				" WHERE jsonb_typeof(p.v->'title') = 'string' AND strpos(lower(p.v->>'title'), " + b.arg(n.product) + ") > 0)"
		} else {
			s += " AND EXISTS (SELECT 1 FROM json_each(CASE WHEN json_type(e.properties, '$.products') = 'array' THEN json_extract(e.properties, '$.products') ELSE '[]' END) AS p" +
				" WHERE CASE WHEN p.type = 'object' THEN (CASE WHEN json_type(p.value, '$.title') = 'text' THEN instr(lower(json_extract(p.value, '$.title')), " + b.arg(n.product) + ") > 0 ELSE FALSE END) ELSE FALSE END)"
		}
	}
	return s + ")"
}

// Preview counts the customers matching rule at now and returns up to
// sample of them (10 when sample is nil, at most 100), by id.
func Preview(ctx context.Context, db bun.IDB, now time.Time, rule string, sample *int) (int, []*customer.Customer, error) {
	r, err := Parse(rule)
	if err != nil {
		return 0, nil, err
	}
	n := 10
	if sample != nil {
		n = min(max(*sample, 0), 100)
	}
	count, err := r.Count(ctx, db, now)
	if err != nil {
		return 0, nil, err
	}
	out := []*customer.Customer{}
	if n == 0 {
		return count, out, nil
	}
	var ids []int64
	if err := r.Query(db, now).Column("c.id").OrderExpr("c.id").Limit(int64(n)).Scan(ctx, &ids); err != nil {
		return 0, nil, fmt.Errorf("sample segment %q: %w", r.src, err)
	}
	if len(ids) > 0 {
		cond, arg := store.In(db, "id", ids)
		if err := db.NewSelect().Model(&out).Where(cond, arg).Order("id").Scan(ctx); err != nil {
			return 0, nil, fmt.Errorf("load segment sample: %w", err)
		}
	}
	return count, out, nil
}
