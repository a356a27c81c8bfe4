package kpi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/commerce"
	"github.com/refrain-dev/refrain/plugin/mail"
	"github.com/refrain-dev/refrain/plugin/ptr"
)

// Default attribution windows.
const (
	DefaultClickWindow = 120 * time.Hour
	DefaultOpenWindow  = 24 * time.Hour
)

// ClockSkew is how far after an order's time an engagement may be and
// still count as before it: store platforms give order times to the
// second and their clocks differ from the mail provider's, so a click a
// fraction of a second "after" the order is the click that led to it.
const ClockSkew = time.Minute

// How an order was attributed.
const (
	AttributionClick = "click"
	AttributionOpen  = "open"
	AttributionNone  = "none"
)

// Attributor credits orders to the messages that led to them.
type Attributor struct {
	// ClickWindow: an order is credited to the last message the customer
	// clicked within this time before it (DefaultClickWindow when 0).
	ClickWindow time.Duration
	// OpenWindow: failing a click, to the last message opened by a person
	// (machine opens never count) within this time (DefaultOpenWindow when 0).
	OpenWindow time.Duration
	// GoalMatches, when set, reports whether the order is the goal of the
	// scenario that sent the credited message.
	GoalMatches func(ctx context.Context, db bun.IDB, scenario string, o *commerce.Order) (bool, error)
}

// Attribution is the decision stored with an order.
type Attribution struct {
	// How is click, open or none.
	How string
	// MessagePK is the credited message (0 for none).
	MessagePK int64
	Message   Message
	// Goal is true when the order was also the scenario goal.
	Goal bool
}

// OnOrder attributes an order the first time it is stored (commerce
// calls it in the transaction that stores the order, on every delivery;
// later deliveries of the same order change nothing). The attribution is
// written on the order row, and counted as a conversion with its revenue
// on the credited message's dimensions and cohort hour.
func (a *Attributor) OnOrder(ctx context.Context, db bun.IDB, now time.Time, o *commerce.Order) error {
	_, err := a.Attribute(ctx, db, now, o)
	return err
}

// Attribute is OnOrder that also returns the decision; nil when the order
// was attributed before.
func (a *Attributor) Attribute(ctx context.Context, db bun.IDB, now time.Time, o *commerce.Order) (*Attribution, error) {
	click, open := a.ClickWindow, a.OpenWindow
	if click <= 0 {
		click = DefaultClickWindow
	}
	if open <= 0 {
		open = DefaultOpenWindow
	}
	var at Attribution
	at.How = AttributionNone
	if o.CustomerPK != nil {
		for _, w := range []struct {
			how    string
			kind   mail.EventKind
			window time.Duration
		}{{AttributionClick, mail.EventClicked, click}, {AttributionOpen, mail.EventOpened, open}} {
			m, err := lastEngaged(ctx, db, *o.CustomerPK, w.kind, o.PlacedAt.Add(-w.window), o.PlacedAt.Add(ClockSkew))
			if err != nil {
				return nil, err
			}
			if m != nil {
				at.How, at.MessagePK, at.Message = w.how, m.PK, *m
				break
			}
		}
	}
	var msgPK *int64
	if at.MessagePK != 0 {
		msgPK = &at.MessagePK
	}
	// Claim the order: only the first delivery that finds it unattributed
	// counts it.
	res, err := db.NewRaw("UPDATE orders SET attribution = ?, attributed_message_id = ?, attributed_at = ? WHERE id = ? AND attribution IS NULL",
		at.How, msgPK, now.UTC(), o.PK).Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("attribute order %d: %w", o.PK, err)
	}
	if n, _ := res.RowsAffected(); n == 0 || at.MessagePK == 0 {
		if n == 0 {
			return nil, nil
		}
		return &at, nil
	}
	c := Counters{Conversions: 1}
	if at.Message.Scenario != "" && a.GoalMatches != nil {
		ok, err := a.GoalMatches(ctx, db, at.Message.Scenario, o)
		if err != nil {
			return nil, fmt.Errorf("attribute order %d: goal of scenario %q: %w", o.PK, at.Message.Scenario, err)
		}
		if ok {
			at.Goal = true
			c.GoalConversions = 1
		}
	}
	if _, err := db.NewRaw("UPDATE orders SET attributed_goal = ? WHERE id = ?", at.Goal, o.PK).Exec(ctx); err != nil {
		return nil, fmt.Errorf("attribute order %d: %w", o.PK, err)
	}
	if err := add(ctx, db, at.Message.SentAt, at.Message.Dims, c); err != nil {
		return nil, err
	}
	if o.TotalMinor != 0 {
		cur := ""
		if o.Currency != nil {
			cur = strings.ToUpper(*o.Currency)
		}
		if err := addRevenue(ctx, db, at.Message.SentAt, at.Message.Dims, cur, o.TotalMinor); err != nil {
			return nil, err
		}
	}
	return &at, nil
}

// lastEngaged finds the message behind the customer's last event of kind
// in [from, to] (human opens only).
func lastEngaged(ctx context.Context, db bun.IDB, customerPK int64, kind mail.EventKind, from, to time.Time) (*Message, error) {
	var row struct {
		PK       int64      `bun:"id"`
		Program  *string    `bun:"program"`
		Scenario *string    `bun:"scenario"`
		Step     *string    `bun:"step"`
		Variant  *string    `bun:"variant"`
		Campaign *string    `bun:"campaign"`
		SentAt   *time.Time `bun:"sent_at"`
		Created  time.Time  `bun:"created_at"`
	}
	err := db.NewRaw(`SELECT m.id, m.program, m.scenario, m.step, m.variant, m.campaign, m.sent_at, m.created_at
FROM message_events e JOIN messages m ON m.id = e.message_id
WHERE e.customer_id = ? AND e.kind = ? AND e.machine_open = ? AND e.occurred_at >= ? AND e.occurred_at <= ?
ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1`, customerPK, kind, false, from.UTC(), to.UTC()).Scan(ctx, &row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find last %s message of customer %d: %w", kind, customerPK, err)
	}
	m := &Message{PK: row.PK, Dims: Dims{Program: ptr.Deref(row.Program), Scenario: ptr.Deref(row.Scenario), Step: ptr.Deref(row.Step),
		Variant: ptr.Deref(row.Variant), Campaign: ptr.Deref(row.Campaign)}, SentAt: row.Created}
	if row.SentAt != nil {
		m.SentAt = *row.SentAt
	}
	return m, nil
}
