package pressure

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/cursor"
)

// Status is a customer's standing against the policy.
type Status struct {
	CustomerPK int64
	// SentInWindow counts the marketing messages in the rolling window;
	// TransactionalInWindow the transactional ones, never capped.
	SentInWindow          int
	TransactionalInWindow int
	Cap                   int
	Window                time.Duration
	// NextAllowedAt is when the next marketing message may go (now when it
	// may go at once), quiet hours included.
	NextAllowedAt time.Time
}

// StatusOf reads a customer's standing under the global rules.
func (p *Policy) StatusOf(ctx context.Context, db bun.IDB, now time.Time, customerPK int64) (*Status, error) {
	r := p.Default
	var c customerRow
	if err := db.NewSelect().Table("customers").Column("id", "time_zone").Where("id = ?", customerPK).Scan(ctx, &c); err != nil {
		return nil, fmt.Errorf("pressure: customer %d: %w", customerPK, err)
	}
	var rows []struct {
		Kind string    `bun:"kind"`
		At   time.Time `bun:"created_at"`
	}
	if err := db.NewSelect().Table("messages").Column("kind", "created_at").Where("customer_id = ?", customerPK).
		Where("created_at > ? AND created_at <= ?", now.Add(-r.Window), now).
		Where("state NOT IN ('failed', 'suppressed')").Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("pressure: read messages of customer %d: %w", customerPK, err)
	}
	st := &Status{CustomerPK: customerPK, Cap: r.Cap, Window: r.Window, NextAllowedAt: now}
	var sent []time.Time
	for _, m := range rows {
		if m.Kind == "marketing" {
			st.SentInWindow++
			sent = append(sent, m.At)
		} else {
			st.TransactionalInWindow++
		}
	}
	r.OnCapped, r.MaxDelay = OnCappedDefer, 100*365*24*time.Hour
	if res := Evaluate(r, now, p.Location(c.TimeZone), sent, time.Time{}, nil); res.Decision == Deferred {
		st.NextAllowedAt = res.Until
	}
	return st, nil
}

// DecisionPage is one page of a customer's decisions, newest first.
type DecisionPage struct {
	Records   []*Record
	EndCursor string
	HasMore   bool
}

// Decisions lists a customer's decisions, newest first, first at a time
// after the cursor.
func Decisions(ctx context.Context, db bun.IDB, customerPK int64, first int, after string) (DecisionPage, error) {
	if first <= 0 || first > 500 {
		return DecisionPage{}, fmt.Errorf("first %d: want 1 to 500", first)
	}
	q := db.NewSelect().Model((*Record)(nil)).Where("customer_id = ?", customerPK).Order("id DESC").Limit(int64(first + 1))
	if after != "" {
		id, err := cursor.DecodeID("", after)
		if err != nil {
			return DecisionPage{}, fmt.Errorf("after: %w", err)
		}
		q = q.Where("id < ?", id)
	}
	var recs []*Record
	if err := q.Scan(ctx, &recs); err != nil {
		return DecisionPage{}, fmt.Errorf("pressure: list decisions: %w", err)
	}
	page := DecisionPage{Records: recs}
	if len(recs) > first {
		page.Records, page.HasMore = recs[:first], true
	}
	if n := len(page.Records); n > 0 {
		page.EndCursor = Cursor(page.Records[n-1])
	}
	return page, nil
}

// Cursor is the Decisions cursor just after r.
func Cursor(r *Record) string {
	return cursor.EncodeID("", r.ID)
}
