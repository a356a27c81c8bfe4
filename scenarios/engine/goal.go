package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/commerce"
	"github.com/refrain-dev/refrain/scenarios"
)

// GoalMatches reports whether an order is the goal of a scenario: its goal
// event is order.created (or order.paid for a paid order) and the goal's
// filter, if any, holds for the order.created event's properties. An
// unknown scenario has no goal.
func (e *Engine) GoalMatches(ctx context.Context, db bun.IDB, scenarioID string, o *commerce.Order) (bool, error) {
	sc, err := GetScenario(ctx, db, scenarioID)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	def, err := e.Compiled(ctx, db, scenarioID, sc.Version)
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
	props, err := eventProperties(ctx, db, commerce.EventKey(o.Source, commerce.EventOrderCreated, o.ExternalID))
	if err != nil {
		return false, fmt.Errorf("read the order.created event of order %d: %w", o.PK, err)
	}
	return scenarios.BasicRules{}.MatchEvent(def.Goal.Filter, props)
}

// eventProperties reads the properties of the customer event with the
// idempotency key key.
func eventProperties(ctx context.Context, db bun.IDB, key string) (map[string]any, error) {
	var props map[string]any
	err := db.NewRaw("SELECT properties FROM customer_events WHERE idempotency_key = ?", key).Scan(ctx, &props)
	return props, err
}
