package forecast

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// custRow is a customer id with a time zone and, for some reads, a time.
type custRow struct {
	pk   int64
	zone *string
	at   int64
}

// cond is an audience condition on customers AS c, empty for all.
type cond struct {
	w    string
	args []any
}

// flagRow is a customer with their dates and a bit per condition met.
type flagRow struct {
	pk                  int64
	zone                *string
	firstOrder, created int64
	flags               uint64
}

// scanFlags reads the rows of a customers read with n flags.
func scanFlags(ctx context.Context, q *bun.SelectQuery, n int, out *[]flagRow) error {
	rows, err := q.Rows(ctx)
	if err != nil {
		return err
	}
	defer rows.Close()
	names := zoneNames{}
	var zone sql.NullString
	var fo, ca nsTime
	flags := make([]int64, n)
	dest := []any{nil, &zone, &fo, &ca}
	for i := range flags {
		dest = append(dest, &flags[i])
	}
	for rows.Next() {
		var r flagRow
		dest[0] = &r.pk
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		r.zone, r.firstOrder, r.created = names.get(zone), int64(fo), int64(ca)
		for i, f := range flags {
			if f != 0 {
				r.flags |= 1 << i
			}
		}
		*out = append(*out, r)
	}
	return rows.Err()
}

type enrollRow struct {
	eid, pk  int64
	scenario string
	version  int
	step     string
	next     int64
}

// nsTime scans a time column of either database into Unix nanoseconds, 0
// for NULL.
type nsTime int64

func (t *nsTime) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*t = 0
		return nil
	case time.Time:
		*t = nsTime(v.UnixNano())
		return nil
	case string:
		return t.parse(v)
	case []byte:
		return t.parse(string(v))
	}
	return fmt.Errorf("time column: unexpected %T", v)
}

func (t *nsTime) parse(s string) error {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"} {
		if v, err := time.Parse(layout, s); err == nil {
			*t = nsTime(v.UnixNano())
			return nil
		}
	}
	return fmt.Errorf("time column: cannot parse %q", s)
}

// zones interns the time zone names a read meets.
type zoneNames map[string]*string

func (z zoneNames) get(ns sql.NullString) *string {
	if !ns.Valid || ns.String == "" {
		return nil
	}
	if p, ok := z[ns.String]; ok {
		return p
	}
	p := &ns.String
	z[ns.String] = p
	return p
}

// scanCustomers reads the id, time zone and, withAt, a time of each row of q.
func scanCustomers(ctx context.Context, q *bun.SelectQuery, out *[]custRow, withAt bool) error {
	rows, err := q.Rows(ctx)
	if err != nil {
		return err
	}
	defer rows.Close()
	names := zoneNames{}
	var zone sql.NullString
	for rows.Next() {
		var r custRow
		var at nsTime
		dest := []any{&r.pk, &zone}
		if withAt {
			dest = append(dest, &at)
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		r.zone, r.at = names.get(zone), int64(at)
		*out = append(*out, r)
	}
	return rows.Err()
}

func scanEnrollments(ctx context.Context, q *bun.SelectQuery, out *[]enrollRow) error {
	rows, err := q.Rows(ctx)
	if err != nil {
		return err
	}
	defer rows.Close()
	interned := map[string]string{}
	intern := func(b []byte) string {
		if s, ok := interned[string(b)]; ok {
			return s
		}
		s := string(b)
		interned[s] = s
		return s
	}
	var scenario, step sql.RawBytes
	for rows.Next() {
		var r enrollRow
		var next nsTime
		if err := rows.Scan(&r.eid, &r.pk, &scenario, &r.version, &step, &next); err != nil {
			return err
		}
		r.scenario, r.step, r.next = intern(scenario), intern(step), int64(next)
		*out = append(*out, r)
	}
	return rows.Err()
}
