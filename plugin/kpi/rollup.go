// Package kpi keeps the engagement counters of Refrain's messages and
// answers KPI queries from them. Counters are rollups keyed by (hour,
// program, scenario, step, variant, campaign) and by (UTC day, same
// dimensions), both incremented in the transaction that records what they
// count: the send (outbox), each provider event (tracking) and each
// attributed order (Attribute). A query never reads raw events; it sums
// the daily rows when its period and intervals fall on UTC midnights, the
// hourly rows otherwise, and groups them into days, weeks or months in the
// asked time zone. The segment filter is the exception: rollups carry no
// customer, so it reads the messages of the segment's current members
// (see computeSegment).
//
// Every count is bucketed by the hour its message was sent (the message's
// cohort), so a rate over a period compares events with the messages they
// belong to and never exceeds one.
package kpi

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/mail"
)

// Dims are the dimensions of a message that its counts roll up to. An
// empty string is a missing dimension.
type Dims struct {
	Program, Scenario, Step, Variant, Campaign string
}

// Counters are the additive counts of a set of messages.
type Counters struct {
	Sent            int64 `bun:"sent"`
	Delivered       int64 `bun:"delivered"`
	HardBounces     int64 `bun:"hard_bounces"`
	SoftBounces     int64 `bun:"soft_bounces"`
	UniqueOpens     int64 `bun:"unique_opens"`
	MachineOpens    int64 `bun:"machine_opens"`
	UniqueClicks    int64 `bun:"unique_clicks"`
	Unsubscribes    int64 `bun:"unsubscribes"`
	Complaints      int64 `bun:"complaints"`
	Conversions     int64 `bun:"conversions"`
	GoalConversions int64 `bun:"goal_conversions"`
}

// counterColumns are the kpi_hourly counter columns, in Counters order.
var counterColumns = []string{"sent", "delivered", "hard_bounces", "soft_bounces", "unique_opens", "machine_opens",
	"unique_clicks", "unsubscribes", "complaints", "conversions", "goal_conversions"}

func (c Counters) values() []int64 {
	return []int64{c.Sent, c.Delivered, c.HardBounces, c.SoftBounces, c.UniqueOpens, c.MachineOpens,
		c.UniqueClicks, c.Unsubscribes, c.Complaints, c.Conversions, c.GoalConversions}
}

// Add adds o to c.
func (c *Counters) Add(o Counters) {
	c.Sent += o.Sent
	c.Delivered += o.Delivered
	c.HardBounces += o.HardBounces
	c.SoftBounces += o.SoftBounces
	c.UniqueOpens += o.UniqueOpens
	c.MachineOpens += o.MachineOpens
	c.UniqueClicks += o.UniqueClicks
	c.Unsubscribes += o.Unsubscribes
	c.Complaints += o.Complaints
	c.Conversions += o.Conversions
	c.GoalConversions += o.GoalConversions
}

func (c Counters) zero() bool {
	for _, v := range c.values() {
		if v != 0 {
			return false
		}
	}
	return true
}

// Hour is the hourly rollup bucket of t: its UTC hour.
func Hour(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }

// Day is the daily rollup bucket of t: its UTC day.
func Day(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }

// add increments the counters of (hour, d) by c.
func add(ctx context.Context, db bun.IDB, hour time.Time, d Dims, c Counters) error {
	if c.zero() {
		return nil
	}
	var cols, sets []string
	args := []any{Hour(hour), d.Program, d.Scenario, d.Step, d.Variant, d.Campaign}
	for i, v := range c.values() {
		if v == 0 {
			continue
		}
		name := counterColumns[i]
		cols = append(cols, name)
		sets = append(sets, name+" = kpi_hourly."+name+" + EXCLUDED."+name)
		args = append(args, v)
	}
	for _, t := range []struct{ table, key string }{{"kpi_hourly", "hour"}, {"kpi_daily", "day"}} {
		if t.key == "day" {
			args[0] = Day(hour)
		}
		q := "INSERT INTO " + t.table + " (" + t.key + ", program, scenario, step, variant, campaign, " + strings.Join(cols, ", ") +
			") VALUES (?, ?, ?, ?, ?, ?" + strings.Repeat(", ?", len(cols)) +
			") ON CONFLICT (" + t.key + ", program, scenario, step, variant, campaign) DO UPDATE SET " +
			strings.ReplaceAll(strings.Join(sets, ", "), "kpi_hourly.", t.table+".")
		if _, err := db.NewRaw(q, args...).Exec(ctx); err != nil {
			return fmt.Errorf("update %s counters: %w", t.table, err)
		}
	}
	return nil
}

// addRevenue adds minor units of currency to (hour, d).
func addRevenue(ctx context.Context, db bun.IDB, hour time.Time, d Dims, currency string, minor int64) error {
	_, err := db.NewRaw(`INSERT INTO kpi_hourly_revenue (hour, program, scenario, step, variant, campaign, currency, revenue_minor)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (hour, program, scenario, step, variant, campaign, currency) DO UPDATE SET revenue_minor = kpi_hourly_revenue.revenue_minor + EXCLUDED.revenue_minor`,
		Hour(hour), d.Program, d.Scenario, d.Step, d.Variant, d.Campaign, currency, minor).Exec(ctx)
	if err != nil {
		return fmt.Errorf("update hourly revenue: %w", err)
	}
	_, err = db.NewRaw(`INSERT INTO kpi_daily_revenue (day, program, scenario, step, variant, campaign, currency, revenue_minor)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (day, program, scenario, step, variant, campaign, currency) DO UPDATE SET revenue_minor = kpi_daily_revenue.revenue_minor + EXCLUDED.revenue_minor`,
		Day(hour), d.Program, d.Scenario, d.Step, d.Variant, d.Campaign, currency, minor).Exec(ctx)
	if err != nil {
		return fmt.Errorf("update daily revenue: %w", err)
	}
	return nil
}

// CountSent counts messages just marked sent at the given time, within the
// transaction that marked them.
func CountSent(ctx context.Context, db bun.IDB, at time.Time, dims []Dims) error {
	n := map[Dims]int64{}
	for _, d := range dims {
		n[d]++
	}
	for d, k := range n {
		if err := add(ctx, db, at, d, Counters{Sent: k}); err != nil {
			return fmt.Errorf("count sent messages: %w", err)
		}
	}
	return nil
}

// Message is what the rollups need of a message row.
type Message struct {
	// PK is the messages row id.
	PK int64
	Dims
	// SentAt is the cohort hour (the creation time when it was never sent).
	SentAt time.Time
}

// The kpi_flags bits.
const (
	flagDelivered   = 1
	flagMachineOpen = 2
	flagHardBounce  = 4
	flagSoftBounce  = 8
	flagUnsubscribe = 16
	flagComplaint   = 32
)

// CountEvent counts a provider event that was just recorded (for the first
// time) against m, within the transaction that recorded it. Only the
// first event of each kind per message counts: a second open, a click
// after a click, a soft bounce the provider retries.
func CountEvent(ctx context.Context, db bun.IDB, m Message, kind mail.EventKind, severity mail.Severity, machineOpen bool, at time.Time) error {
	var c Counters
	var err error
	switch kind {
	case mail.EventDelivered:
		c.Delivered, err = setFlag(ctx, db, m.PK, flagDelivered)
	case mail.EventOpened:
		if machineOpen {
			c.MachineOpens, err = setFlag(ctx, db, m.PK, flagMachineOpen)
		} else {
			c.UniqueOpens, err = setFirst(ctx, db, m.PK, "first_open_at", at)
		}
	case mail.EventClicked:
		// A click proves the message was opened, even when the tracking
		// pixel was blocked: it counts as the first open when none was
		// seen, so click-to-open never exceeds one.
		if c.UniqueClicks, err = setFirst(ctx, db, m.PK, "first_click_at", at); err == nil {
			c.UniqueOpens, err = setFirst(ctx, db, m.PK, "first_open_at", at)
		}
	case mail.EventFailed:
		if severity == mail.SeverityPermanent {
			c.HardBounces, err = setFlag(ctx, db, m.PK, flagHardBounce)
		} else {
			c.SoftBounces, err = setFlag(ctx, db, m.PK, flagSoftBounce)
		}
	case mail.EventUnsubscribed:
		c.Unsubscribes, err = setFlag(ctx, db, m.PK, flagUnsubscribe)
	case mail.EventComplained:
		c.Complaints, err = setFlag(ctx, db, m.PK, flagComplaint)
	default:
		return nil
	}
	if err != nil {
		return err
	}
	return add(ctx, db, m.SentAt, m.Dims, c)
}

// setFirst sets a first_*_at column of a message when it is still empty
// and reports 1 when it did.
func setFirst(ctx context.Context, db bun.IDB, pk int64, column string, at time.Time) (int64, error) {
	res, err := db.NewRaw("UPDATE messages SET ? = ? WHERE id = ? AND ? IS NULL", bun.Ident(column), at.UTC(), pk, bun.Ident(column)).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("mark %s of message %d: %w", column, pk, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// setFlag sets a kpi_flags bit of a message and reports 1 when it was not
// set before.
func setFlag(ctx context.Context, db bun.IDB, pk int64, bit int) (int64, error) {
	res, err := db.NewRaw("UPDATE messages SET kpi_flags = kpi_flags | ? WHERE id = ? AND (kpi_flags & ?) = 0", bit, pk, bit).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("mark counted event of message %d: %w", pk, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
