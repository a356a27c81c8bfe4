package kpi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// ErrUnknownSegment is returned for a segment filter naming no segment.
var ErrUnknownSegment = errors.New("no segment of that name")

// computeSegment answers q for the messages of the current members of
// segment q.Segment. Rollups carry no customer, so it reads the members'
// message rows, which keep what the rollups count once per message
// (sent_at, first_open_at, first_click_at and the kpi_flags bits), and
// the orders attributed to them (conversions, goal conversions, revenue),
// in the same cohort (the hour the message was sent). Three statements
// (the segment, counters, orders) whatever the number of groups; the
// numbers equal what the rollups hold for the same messages.
func computeSegment(ctx context.Context, db bun.IDB, q Query) ([]*Series, error) {
	var segPK int64
	err := db.NewRaw("SELECT id FROM segments WHERE name = ?", *q.Segment).Scan(ctx, &segPK)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %q", ErrUnknownSegment, *q.Segment)
	}
	if err != nil {
		return nil, fmt.Errorf("find segment %q: %w", *q.Segment, err)
	}
	cohort := "COALESCE(m.sent_at, m.created_at)"
	hour := "NULL"
	if q.Interval != IntervalNone {
		if db.Dialect().Name() == dialect.PG {
			hour = "date_trunc('hour', " + cohort + " AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
		} else {
			// SQLite keeps times as UTC text, 2006-01-02 15:04:05+00:00.
			hour = "substr(" + cohort + ", 1, 13) || ':00:00+00:00'"
		}
	}
	group := "''"
	if len(q.GroupBy) > 0 {
		parts := make([]string, len(q.GroupBy))
		for i, d := range q.GroupBy {
			parts[i] = "COALESCE(m." + string(d) + ", '')"
		}
		group = strings.Join(parts, " || '"+KeySep+"' || ")
	}
	conds := []string{cohort + " >= ?", cohort + " < ?"}
	args := []any{segPK, q.From.UTC(), q.To.UTC()}
	for _, f := range []struct {
		col string
		v   *string
	}{{"program", q.Program}, {"scenario", q.Scenario}, {"step", q.Step}, {"variant", q.Variant}, {"campaign", q.Campaign}} {
		if f.v != nil {
			conds = append(conds, "COALESCE(m."+f.col+", '') = ?")
			args = append(args, *f.v)
		}
	}
	from := " FROM messages m JOIN segment_members sm ON sm.customer_id = m.customer_id AND sm.segment_id = ?"
	where := " WHERE " + strings.Join(conds, " AND ")
	flag := func(bit int, name string) string {
		return fmt.Sprintf("SUM(CASE WHEN (m.kpi_flags & %d) <> 0 THEN 1 ELSE 0 END) AS %s", bit, name)
	}
	var rows []hourRow
	if err := db.NewRaw("SELECT "+hour+" AS hour, "+group+" AS grp, COUNT(m.sent_at) AS sent, "+
		flag(flagDelivered, "delivered")+", "+flag(flagHardBounce, "hard_bounces")+", "+flag(flagSoftBounce, "soft_bounces")+", "+
		"COUNT(m.first_open_at) AS unique_opens, "+flag(flagMachineOpen, "machine_opens")+", COUNT(m.first_click_at) AS unique_clicks, "+
		flag(flagUnsubscribe, "unsubscribes")+", "+flag(flagComplaint, "complaints")+", 0 AS conversions, 0 AS goal_conversions"+
		from+where+" GROUP BY 1, 2", args...).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("read the messages of segment %q: %w", *q.Segment, err)
	}
	var orders []struct {
		Hour     *time.Time `bun:"hour"`
		Group    string     `bun:"grp"`
		Currency string     `bun:"currency"`
		N        int64      `bun:"n"`
		Goals    int64      `bun:"goals"`
		Minor    int64      `bun:"revenue_minor"`
	}
	if err := db.NewRaw("SELECT "+hour+" AS hour, "+group+" AS grp, UPPER(COALESCE(o.currency, '')) AS currency, COUNT(*) AS n, "+
		"SUM(CASE WHEN o.attributed_goal THEN 1 ELSE 0 END) AS goals, SUM(o.total_minor) AS revenue_minor"+
		from+" JOIN orders o ON o.attributed_message_id = m.id"+where+" GROUP BY 1, 2, 3", args...).Scan(ctx, &orders); err != nil {
		return nil, fmt.Errorf("read the orders attributed to segment %q: %w", *q.Segment, err)
	}
	var revs []revenueRow
	for _, o := range orders {
		r := hourRow{Hour: o.Hour, Group: o.Group, Counters: Counters{Conversions: o.N, GoalConversions: o.Goals}}
		rows = append(rows, r)
		if o.Minor != 0 {
			revs = append(revs, revenueRow{Hour: r.Hour, Group: o.Group, Currency: o.Currency, Minor: o.Minor})
		}
	}
	return q.assemble(rows, revs), nil
}
