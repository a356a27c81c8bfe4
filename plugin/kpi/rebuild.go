package kpi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/refrain-dev/refrain/plugin/commerce"
	"github.com/refrain-dev/refrain/plugin/mail"
)

// RebuildProgress reports what Rebuild did: a line per step.
type RebuildProgress func(format string, args ...any)

// Backfill attributes the orders stored before attribution existed
// (attribution still empty), one transaction each as if they had just
// arrived, and decides the goal of orders attributed before the goal was
// kept (attributed_goal empty). It returns how many orders it attributed.
func (a *Attributor) Backfill(ctx context.Context, db *bun.DB, now time.Time, progress RebuildProgress) (int, error) {
	n, last := 0, int64(0)
	for {
		var orders []*commerce.Order
		if err := db.NewSelect().Model(&orders).Where("attribution IS NULL AND id > ?", last).Order("id").Limit(500).Scan(ctx); err != nil {
			return n, fmt.Errorf("read unattributed orders: %w", err)
		}
		if len(orders) == 0 {
			break
		}
		for _, o := range orders {
			if err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				_, err := a.Attribute(ctx, tx, now, o)
				return err
			}); err != nil {
				return n, err
			}
			last = o.PK
			n++
		}
		progress("attributed %d orders", n)
	}
	last = 0
	goals := 0
	for {
		var orders []*commerce.Order
		if err := db.NewSelect().Model(&orders).Where("attributed_message_id IS NOT NULL AND attributed_goal IS NULL AND id > ?", last).
			Order("id").Limit(500).Scan(ctx); err != nil {
			return n, fmt.Errorf("read attributed orders without a goal decision: %w", err)
		}
		if len(orders) == 0 {
			break
		}
		for _, o := range orders {
			last = o.PK
			goal := false
			var scenario sql.NullString
			if err := db.NewRaw("SELECT m.scenario FROM messages m JOIN orders o ON o.attributed_message_id = m.id WHERE o.id = ?", o.PK).
				Scan(ctx, &scenario); err != nil && !errors.Is(err, sql.ErrNoRows) {
				return n, fmt.Errorf("read the message of order %d: %w", o.PK, err)
			}
			if scenario.Valid && scenario.String != "" && a.GoalMatches != nil {
				ok, err := a.GoalMatches(ctx, db, scenario.String, o)
				if err != nil {
					return n, fmt.Errorf("order %d: goal of scenario %q: %w", o.PK, scenario.String, err)
				}
				goal = ok
			}
			if _, err := db.NewRaw("UPDATE orders SET attributed_goal = ? WHERE id = ?", goal, o.PK).Exec(ctx); err != nil {
				return n, fmt.Errorf("keep the goal decision of order %d: %w", o.PK, err)
			}
			goals++
		}
		progress("decided the goal of %d orders attributed before", goals)
	}
	return n, nil
}

// Bounds returns the UTC days [from, to) that hold every message cohort,
// and false when there is no message.
func Bounds(ctx context.Context, db bun.IDB) (time.Time, time.Time, bool, error) {
	var row struct {
		Min *time.Time `bun:"lo"`
		Max *time.Time `bun:"hi"`
	}
	if err := db.NewRaw("SELECT MIN(COALESCE(sent_at, created_at)) AS lo, MAX(COALESCE(sent_at, created_at)) AS hi FROM messages").
		Scan(ctx, &row); err != nil {
		return time.Time{}, time.Time{}, false, fmt.Errorf("read the first and last message: %w", err)
	}
	if row.Min == nil || row.Max == nil {
		return time.Time{}, time.Time{}, false, nil
	}
	return Day(*row.Min), Day(*row.Max).Add(24 * time.Hour), true, nil
}

// Rebuild recomputes the rollups of the messages sent in the UTC days
// [from, to) from the messages themselves, one day per transaction: it
// first completes what each message remembers from its recorded events
// (first open and click, kpi_flags; never removing what is there), then
// replaces the hourly and daily rows of the day by the sums of its
// messages and of the orders attributed to them. It is idempotent, and
// gives what the live counters give for the same messages, events and
// orders. On PostgreSQL each day locks the rollup tables (EXCLUSIVE: reads
// go on, counting waits) so that events recorded meanwhile are counted
// exactly once. It returns the number of messages it read.
func Rebuild(ctx context.Context, db *bun.DB, from, to time.Time, progress RebuildProgress) (int64, error) {
	if !Day(to).Equal(to.UTC()) {
		to = Day(to).Add(24 * time.Hour)
	}
	from, to = Day(from), Day(to)
	if !to.After(from) {
		return 0, fmt.Errorf("to (%s) must be after from (%s)", to.Format(time.DateOnly), from.Format(time.DateOnly))
	}
	pg := db.Dialect().Name() == dialect.PG
	cohort := "COALESCE(m.sent_at, m.created_at)"
	hour := "substr(" + cohort + ", 1, 13) || ':00:00+00:00'"
	day := "substr(hour, 1, 10) || ' 00:00:00+00:00'"
	if pg {
		hour = "date_trunc('hour', " + cohort + " AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
		day = "date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
	}
	dims := "COALESCE(m.program, ''), COALESCE(m.scenario, ''), COALESCE(m.step, ''), COALESCE(m.variant, ''), COALESCE(m.campaign, '')"
	ev := func(cond string) string {
		return "EXISTS (SELECT 1 FROM message_events e WHERE e.message_id = messages.id AND " + cond + ")"
	}
	first := func(cond string) string {
		return "(SELECT MIN(e.occurred_at) FROM message_events e WHERE e.message_id = messages.id AND " + cond + ")"
	}
	bit := func(b int, cond string) string {
		return fmt.Sprintf("CASE WHEN %s THEN %d ELSE 0 END", ev(cond), b)
	}
	open := fmt.Sprintf("((e.kind = '%s' AND e.machine_open = ?) OR e.kind = '%s')", mail.EventOpened, mail.EventClicked)
	facts := "UPDATE messages SET first_open_at = COALESCE(first_open_at, " + first(open) + "), " +
		"first_click_at = COALESCE(first_click_at, " + first(fmt.Sprintf("e.kind = '%s'", mail.EventClicked)) + "), " +
		"kpi_flags = kpi_flags | " + bit(flagDelivered, fmt.Sprintf("e.kind = '%s'", mail.EventDelivered)) +
		" | " + bit(flagMachineOpen, fmt.Sprintf("e.kind = '%s' AND e.machine_open = ?", mail.EventOpened)) +
		" | " + bit(flagHardBounce, fmt.Sprintf("e.kind = '%s' AND e.severity = '%s'", mail.EventFailed, mail.SeverityPermanent)) +
		" | " + bit(flagSoftBounce, fmt.Sprintf("e.kind = '%s' AND (e.severity IS NULL OR e.severity <> '%s')", mail.EventFailed, mail.SeverityPermanent)) +
		" | " + bit(flagUnsubscribe, fmt.Sprintf("e.kind = '%s'", mail.EventUnsubscribed)) +
		" | " + bit(flagComplaint, fmt.Sprintf("e.kind = '%s'", mail.EventComplained)) +
		" WHERE COALESCE(sent_at, created_at) >= ? AND COALESCE(sent_at, created_at) < ?"
	flag := func(b int) string { return fmt.Sprintf("SUM(CASE WHEN (m.kpi_flags & %d) <> 0 THEN 1 ELSE 0 END)", b) }
	counters := "INSERT INTO kpi_hourly (hour, program, scenario, step, variant, campaign, sent, delivered, hard_bounces, soft_bounces, " +
		"unique_opens, machine_opens, unique_clicks, unsubscribes, complaints, conversions, goal_conversions) " +
		"SELECT " + hour + ", " + dims + ", COUNT(m.sent_at), " + flag(flagDelivered) + ", " + flag(flagHardBounce) + ", " +
		flag(flagSoftBounce) + ", COUNT(m.first_open_at), " + flag(flagMachineOpen) + ", COUNT(m.first_click_at), " +
		flag(flagUnsubscribe) + ", " + flag(flagComplaint) + ", " +
		"COALESCE(SUM((SELECT COUNT(*) FROM orders o WHERE o.attributed_message_id = m.id)), 0), " +
		"COALESCE(SUM((SELECT COUNT(*) FROM orders o WHERE o.attributed_message_id = m.id AND o.attributed_goal)), 0) " +
		"FROM messages m WHERE " + cohort + " >= ? AND " + cohort + " < ? GROUP BY 1, 2, 3, 4, 5, 6 " +
		"HAVING COUNT(m.sent_at) + SUM(m.kpi_flags) + COUNT(m.first_open_at) + COUNT(m.first_click_at) > 0"
	revenue := "INSERT INTO kpi_hourly_revenue (hour, program, scenario, step, variant, campaign, currency, revenue_minor) " +
		"SELECT " + hour + ", " + dims + ", UPPER(COALESCE(o.currency, '')), SUM(o.total_minor) " +
		"FROM orders o JOIN messages m ON m.id = o.attributed_message_id WHERE o.total_minor <> 0 AND " + cohort + " >= ? AND " +
		cohort + " < ? GROUP BY 1, 2, 3, 4, 5, 6, 7"
	sums := ""
	for _, c := range counterColumns {
		sums += ", SUM(" + c + ")"
	}
	daily := "INSERT INTO kpi_daily (day, program, scenario, step, variant, campaign, sent, delivered, hard_bounces, soft_bounces, " +
		"unique_opens, machine_opens, unique_clicks, unsubscribes, complaints, conversions, goal_conversions) " +
		"SELECT " + day + ", program, scenario, step, variant, campaign" + sums + " FROM kpi_hourly WHERE hour >= ? AND hour < ? GROUP BY 1, 2, 3, 4, 5, 6"
	dailyRevenue := "INSERT INTO kpi_daily_revenue (day, program, scenario, step, variant, campaign, currency, revenue_minor) " +
		"SELECT " + day + ", program, scenario, step, variant, campaign, currency, SUM(revenue_minor) FROM kpi_hourly_revenue " +
		"WHERE hour >= ? AND hour < ? GROUP BY 1, 2, 3, 4, 5, 6, 7"
	var total int64
	for d := from; d.Before(to); d = d.Add(24 * time.Hour) {
		end := d.Add(24 * time.Hour)
		var n int64
		err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if pg {
				if _, err := tx.ExecContext(ctx, "LOCK TABLE kpi_hourly, kpi_hourly_revenue, kpi_daily, kpi_daily_revenue IN EXCLUSIVE MODE"); err != nil {
					return fmt.Errorf("lock the rollups: %w", err)
				}
			}
			steps := []struct {
				what string
				sql  string
				args []any
			}{
				{"complete the message facts", facts, []any{false, true, d, end}},
				{"clear hourly counters", "DELETE FROM kpi_hourly WHERE hour >= ? AND hour < ?", []any{d, end}},
				{"clear hourly revenue", "DELETE FROM kpi_hourly_revenue WHERE hour >= ? AND hour < ?", []any{d, end}},
				{"clear daily counters", "DELETE FROM kpi_daily WHERE day = ?", []any{d}},
				{"clear daily revenue", "DELETE FROM kpi_daily_revenue WHERE day = ?", []any{d}},
				{"count hourly counters", counters, []any{d, end}},
				{"count hourly revenue", revenue, []any{d, end}},
				{"sum daily counters", daily, []any{d, end}},
				{"sum daily revenue", dailyRevenue, []any{d, end}},
			}
			for _, s := range steps {
				if _, err := tx.NewRaw(s.sql, s.args...).Exec(ctx); err != nil {
					return fmt.Errorf("%s: %w", s.what, err)
				}
			}
			return tx.NewRaw("SELECT COUNT(*) FROM messages m WHERE "+cohort+" >= ? AND "+cohort+" < ?", d, end).Scan(ctx, &n)
		})
		if err != nil {
			return total, fmt.Errorf("rebuild the rollups of %s: %w", d.Format(time.DateOnly), err)
		}
		total += n
		if n > 0 {
			progress("%s: %d messages", d.Format(time.DateOnly), n)
		}
	}
	return total, nil
}
