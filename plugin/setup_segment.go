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
			after, err = segment.RefreshFromEvents(ctx, p.db, p.clock.Now, after)
			return err
		})
	})
}

// SweepSegments recomputes every segment now and returns the changes.
func (p *Plugin) SweepSegments(ctx context.Context) ([]segment.Change, error) {
	return segment.Sweep(ctx, p.db, p.clock.Now())
}

// segmentApplied is the ingest hook: the customers an applied storefront
// event touched are re-evaluated in the same transaction.
func (p *Plugin) segmentApplied(ctx context.Context, db bun.IDB, ev event.Event) error {
	emails, ids := eventCustomers(ev)
	var norm []string
	for _, e := range emails {
		if n, err := customer.NormalizeEmail(e); err == nil {
			norm = append(norm, n)
		}
	}
	if err := segment.RefreshCustomers(ctx, db, p.clock.Now(), string(ev.Source), norm, ids); err != nil {
		return fmt.Errorf("segments: %w", err)
	}
	return nil
}

// eventCustomers lists the addresses and store ids of the customers an
// event names (its customer, its order's, its cart's).
func eventCustomers(ev event.Event) (emails, ids []string) {
	add := func(c *event.Customer, email string) {
		if c != nil {
			if c.Email != "" {
				emails = append(emails, c.Email)
			}
			if c.ID != "" {
				ids = append(ids, c.ID)
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
	return emails, ids
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

// IsMember reports whether a customer is a current member of a stored
// segment (engine.Membership).
func (segmentRules) IsMember(ctx context.Context, db bun.IDB, ref string, customerPK int64) (bool, bool, error) {
	return segment.IsMember(ctx, db, ref, customerPK)
}

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
