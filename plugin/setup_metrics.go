package plugin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/commerce"
	"github.com/refrain-dev/refrain/plugin/kpi"
	"github.com/refrain-dev/refrain/scenarios"
	"github.com/refrain-dev/refrain/scenarios/engine"
)

// attributor credits orders to messages with the configured windows.
func (p *Plugin) attributor() *kpi.Attributor {
	return &kpi.Attributor{ClickWindow: p.cfg.AttributionClickWindow, OpenWindow: p.cfg.AttributionOpenWindow,
		GoalMatches: p.goalMatches}
}

// onOrder runs, in the transaction that stores an order, the loyalty and
// referral programs and then revenue attribution.
func (p *Plugin) onOrder(ctx context.Context, db bun.IDB, now time.Time, o *commerce.Order) error {
	if p.resolver.LoyaltyService != nil {
		if err := p.resolver.LoyaltyService.OnOrder(ctx, db, now, o); err != nil {
			return err
		}
	}
	return p.attributor().OnOrder(ctx, db, now, o)
}

// goalMatches reports whether an order is the goal of a scenario: its goal
// event is order.created (or order.paid for a paid order) and the goal's
// filter, if any, holds for the order.created event's properties.
func (p *Plugin) goalMatches(ctx context.Context, db bun.IDB, scenarioID string, o *commerce.Order) (bool, error) {
	eng := p.resolver.Scenarios
	if eng == nil {
		return false, nil
	}
	sc, err := engine.GetScenario(ctx, db, scenarioID)
	if errors.Is(err, engine.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	def, err := eng.Compiled(ctx, db, scenarioID, sc.Version)
	if err != nil {
		return false, err
	}
	if def.Goal == nil {
		return false, nil
	}
	switch g := def.Goal.Event; {
	case g == commerce.EventOrderCreated:
	case g == commerce.EventOrderPaid && o.PaidAt != nil && def.Goal.Filter == "":
		return true, nil
	default:
		return false, nil
	}
	if def.Goal.Filter == "" {
		return true, nil
	}
	var props map[string]any
	err = db.NewRaw("SELECT properties FROM customer_events WHERE idempotency_key = ?",
		fmt.Sprintf("%s:%s:%s", o.Source, commerce.EventOrderCreated, o.ExternalID)).Scan(ctx, &props)
	if err != nil {
		return false, fmt.Errorf("read the order.created event of order %d: %w", o.PK, err)
	}
	return scenarios.BasicRules{}.MatchEvent(def.Goal.Filter, props)
}
