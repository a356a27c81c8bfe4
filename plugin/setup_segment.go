package plugin

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/segment"
	"github.com/refrain-dev/refrain/scenarios"
)

// setupSegments registers the segment workers: the sweep that recomputes
// every segment on the whole base each REFRAIN_SEGMENT_SWEEP_INTERVAL, and
// the refresher that re-evaluates in memory the customers of new customer
// events (API events, consent changes, opens and clicks) every
// REFRAIN_SEGMENT_REFRESH_POLL. Storefront webhooks re-evaluate their
// customers in the ingest transaction itself (segmentApplied). Every
// replica runs both: membership changes are conditional writes under the
// customer row lock, so each entry and exit is written once.
func (p *Plugin) setupSegments() {
	p.addWorker("segment-sweep", func(ctx context.Context) error {
		return p.every(ctx, p.cfg.SegmentSweepInterval, "segment-sweep", func(ctx context.Context) error {
			_, err := p.SweepSegments(ctx)
			return err
		})
	})
	var after int64 = -1
	p.addWorker("segment-refresh", func(ctx context.Context) error {
		return p.every(ctx, p.cfg.SegmentRefreshPoll, "segment-refresh", func(ctx context.Context) error {
			var err error
			after, err = p.refreshFromEvents(ctx, after)
			return err
		})
	})
}

// SweepSegments recomputes every segment now and returns the changes.
func (p *Plugin) SweepSegments(ctx context.Context) ([]segment.Change, error) {
	return segment.Sweep(ctx, p.db, p.clock.Now())
}

// refreshFromEvents re-evaluates the customers of the customer events
// after id (all from the newest on when after is negative) and returns
// the last id seen. Membership events themselves are skipped.
func (p *Plugin) refreshFromEvents(ctx context.Context, after int64) (int64, error) {
	// Read only up to the horizon of the event log: an event that took a
	// lower id may still be committing (see customer.Horizon).
	horizon, err := customer.Horizon(ctx, p.db)
	if err != nil {
		return after, err
	}
	if after < 0 {
		return horizon, nil
	}
	for {
		var rows []struct {
			ID         int64 `bun:"id"`
			CustomerPK int64 `bun:"customer_id"`
		}
		err := p.db.NewSelect().Model((*customer.Event)(nil)).Column("id", "customer_id").Where("id > ? AND id <= ?", after, horizon).
			Where("type NOT IN (?)", bun.In([]string{segment.EventEntered, segment.EventExited})).
			Order("id").Limit(500).Scan(ctx, &rows)
		if err != nil || len(rows) == 0 {
			return after, err
		}
		seen := map[int64]bool{}
		for _, r := range rows {
			if !seen[r.CustomerPK] {
				seen[r.CustomerPK] = true
				if _, err := segment.Refresh(ctx, p.db, p.clock.Now(), r.CustomerPK); err != nil {
					return after, err
				}
			}
			after = r.ID
		}
	}
}

// segmentApplied is the ingest hook: the customers an applied storefront
// event touched are re-evaluated in the same transaction.
func (p *Plugin) segmentApplied(ctx context.Context, db bun.IDB, ev event.Event) error {
	var emails, ids []string
	add := func(c *event.Customer, email string) {
		if c != nil {
			email2, id := c.Email, c.ID
			if email2 != "" {
				emails = append(emails, email2)
			}
			if id != "" {
				ids = append(ids, id)
			}
		}
		if email != "" {
			emails = append(emails, email)
		}
	}
	add(ev.Customer, "")
	if ev.Order != nil {
		add(ev.Order.Customer, ev.Order.Email)
	}
	if ev.Cart != nil {
		add(ev.Cart.Customer, ev.Cart.Email)
	}
	var norm []string
	for _, e := range emails {
		if n, err := customer.NormalizeEmail(e); err == nil {
			norm = append(norm, n)
		}
	}
	if len(norm) == 0 && len(ids) == 0 {
		return nil
	}
	q := db.NewSelect().Model((*customer.Customer)(nil)).Column("id")
	q = q.WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
		if len(norm) > 0 {
			q = q.WhereOr("email_normalized IN (?)", bun.In(norm))
		}
		if len(ids) > 0 {
			q = q.WhereOr("external_source = ? AND external_id IN (?)", string(ev.Source), bun.In(ids))
		}
		return q
	})
	var pks []int64
	if err := q.Scan(ctx, &pks); err != nil {
		return fmt.Errorf("segments: find the customers of the event: %w", err)
	}
	now := p.clock.Now()
	for _, pk := range pks {
		if _, err := segment.Refresh(ctx, db, now, pk); err != nil {
			return err
		}
	}
	return nil
}

// segmentRules is the scenarios.Rules of the service: audience, exit_when
// and if rules are segment rules; event filters stay the basic rules over
// the event's properties.
type segmentRules struct{ scenarios.BasicRules }

// ScenarioRules is the rule evaluator of scenarios in the service: segment
// rules for customers (audience, exit_when, if), the basic evaluator for
// event filters. The CLI validates and simulates files with it.
func ScenarioRules() scenarios.Rules { return segmentRules{} }

var _ scenarios.Rules = segmentRules{}

// CheckCustomer checks a customer rule as a segment rule.
func (segmentRules) CheckCustomer(rule string) error { return segment.Check(rule) }

// MatchCustomer evaluates a customer rule in memory, counting events in db.
func (segmentRules) MatchCustomer(ctx context.Context, db bun.IDB, rule string, c *customer.Customer, now time.Time) (bool, error) {
	r, err := segment.Compile(rule)
	if err != nil {
		return false, err
	}
	return r.Match(ctx, c, now, segment.DBCounter{DB: db, PK: c.PK})
}
