package customer

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// Stage is a customer's lifecycle stage, computed from consent and rollups.
type Stage string

// Lifecycle stages, in the order their rules are tried (first match wins).
const (
	StageUnsubscribed Stage = "UNSUBSCRIBED"
	StageSubscriber   Stage = "SUBSCRIBER"
	StageNewCustomer  Stage = "NEW_CUSTOMER"
	StageActive       Stage = "ACTIVE"
	StageAtRisk       Stage = "AT_RISK"
	StageLapsed       Stage = "LAPSED"
)

// Stages lists every stage.
func Stages() []Stage {
	return []Stage{StageUnsubscribed, StageSubscriber, StageNewCustomer, StageActive, StageAtRisk, StageLapsed}
}

// Thresholds are the day counts behind the stages (DOMAIN.md's defaults:
// 90, 180, 365).
type Thresholds struct {
	// NewCustomer: a one-order customer whose order is this recent is NEW_CUSTOMER.
	NewCustomer time.Duration
	// Active: a last order this recent is ACTIVE.
	Active time.Duration
	// AtRisk: a last order older than Active but this recent is AT_RISK; older is LAPSED.
	AtRisk time.Duration
}

// DefaultThresholds are 90, 180 and 365 days.
func DefaultThresholds() Thresholds {
	return Thresholds{NewCustomer: 90 * 24 * time.Hour, Active: 180 * 24 * time.Hour, AtRisk: 365 * 24 * time.Hour}
}

// StageOf computes a customer's stage at now. Suppressed marks an address
// suppressed for hard bounces or complaints.
func StageOf(c *Customer, now time.Time, th Thresholds, suppressed bool) Stage {
	switch {
	case suppressed || c.ConsentState == ConsentUnsubscribed || c.ConsentState == ConsentNotSubscribed:
		return StageUnsubscribed
	case c.OrdersCount == 0 || c.LastOrderAt == nil:
		return StageSubscriber
	case c.OrdersCount == 1 && c.FirstOrderAt != nil && now.Sub(*c.FirstOrderAt) <= th.NewCustomer:
		return StageNewCustomer
	case now.Sub(*c.LastOrderAt) <= th.Active:
		return StageActive
	case now.Sub(*c.LastOrderAt) <= th.AtRisk:
		return StageAtRisk
	default:
		return StageLapsed
	}
}

// EventStageChanged is the customer event recorded when a stage changes.
const EventStageChanged = "lifecycle.stage_changed"

// RefreshStage recomputes a stored customer's stage and, when it changed,
// stores it and appends a lifecycle.stage_changed event with from and to.
// It reports whether the stage changed.
func RefreshStage(ctx context.Context, db bun.IDB, now time.Time, c *Customer, th Thresholds) (bool, error) {
	to := StageOf(c, now, th, false)
	from := Stage(c.Stage)
	if to == from {
		return false, nil
	}
	res, err := db.NewUpdate().Model((*Customer)(nil)).
		Set("stage = ?", to).Set("stage_since = ?", now).
		Where("id = ? AND stage = ?", c.PK, from).Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("store stage of customer %d: %w", c.PK, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		// Another writer changed the stage first; its event stands.
		return false, nil
	}
	c.Stage, c.StageSince = string(to), &now
	_, _, err = AppendEvent(ctx, db, now, c.PK, EventInput{Type: EventStageChanged, OccurredAt: now, Source: "lifecycle",
		Properties: map[string]any{"from": string(from), "to": string(to)}})
	return true, err
}

// SweepStages recomputes the stage of every customer whose stage can change
// with the passing of time alone (NEW_CUSTOMER, ACTIVE, AT_RISK), in batches,
// and returns how many changed. Run it at least hourly.
func SweepStages(ctx context.Context, db bun.IDB, now time.Time, th Thresholds, batch int) (int, error) {
	if batch <= 0 {
		batch = 1000
	}
	changed := 0
	var after int64
	for {
		var cs []*Customer
		err := db.NewSelect().Model(&cs).
			Where("id > ?", after).
			Where("stage IN (?)", bun.List([]Stage{StageNewCustomer, StageActive, StageAtRisk})).
			Where("last_order_at < ?", now.Add(-minDuration(th.NewCustomer, th.Active))).
			Order("id ASC").Limit(int64(batch)).Scan(ctx)
		if err != nil {
			return changed, fmt.Errorf("sweep stages: %w", err)
		}
		for _, c := range cs {
			ok, err := RefreshStage(ctx, db, now, c, th)
			if err != nil {
				return changed, err
			}
			if ok {
				changed++
			}
		}
		if len(cs) < batch {
			return changed, nil
		}
		after = cs[len(cs)-1].PK
	}
}

func minDuration(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}
