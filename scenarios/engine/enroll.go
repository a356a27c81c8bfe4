package engine

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/scenarios"
)

// ErrNotEligible is returned by Enroll when the audience does not hold or
// re-entry forbids entering again.
var ErrNotEligible = errors.New("customer is not eligible")

// Enroll puts a customer in a scenario by hand (a manual trigger, the
// enrollCustomer mutation), checking the audience and re-entry as a
// trigger would.
func (e *Engine) Enroll(ctx context.Context, db bun.IDB, scenarioID string, customerPK int64) (*Enrollment, error) {
	var out *Enrollment
	err := inTx(ctx, db, func(ctx context.Context, tx bun.IDB) error {
		row, err := GetScenario(ctx, tx, scenarioID)
		if err != nil {
			return err
		}
		if row.Status != StatusActive {
			return fmt.Errorf("scenario %q is %s: %w", scenarioID, row.Status, ErrNotEligible)
		}
		sc, err := e.Compiled(ctx, tx, row.ID, row.Version)
		if err != nil {
			return err
		}
		now := e.o.Clock.Now()
		c, err := customer.Get(ctx, tx, customerPK)
		if err != nil {
			return err
		}
		en, created, err := e.enroll(ctx, tx, sc, row.Version, c, "manual:"+strconv.FormatInt(now.UnixNano(), 10), nil, now)
		if err != nil {
			return err
		}
		if !created {
			return fmt.Errorf("customer %d in scenario %q: %w", customerPK, scenarioID, ErrNotEligible)
		}
		out = en
		return nil
	})
	return out, err
}

// enroll enters c into sc when the audience holds and re-entry allows it.
// key identifies the occasion (an event, a year); with reentry never the
// key is ignored and a customer enters once. It reports whether a row was
// written.
func (e *Engine) enroll(ctx context.Context, db bun.IDB, sc *scenarios.Scenario, version int, c *customer.Customer, key string, props map[string]any, now time.Time) (*Enrollment, bool, error) {
	if c.EmailNormalized == nil && c.ExternalID == nil {
		return nil, false, nil // an erased profile
	}
	if !observedFor(c, now, sc.ObservedFor) {
		// Not observed for the program's window: its inactivity rules say
		// nothing yet about this customer.
		return nil, false, nil
	}
	if left, err := e.leftSegment(ctx, db, sc, c.PK); err != nil || left {
		return nil, false, err
	}
	if sc.Audience != "" {
		ok, err := e.o.Rules.MatchCustomer(ctx, db, sc.Audience, c, now)
		if err != nil {
			return nil, false, fmt.Errorf("scenario %q audience: %w", sc.ID, err)
		}
		if !ok {
			return nil, false, nil
		}
	}
	switch {
	case sc.Trigger.Kind == scenarios.TriggerYearly:
		// Once a year: the key carries the year.
	case sc.Reentry.Never:
		key = "once"
	default:
		var last time.Time
		err := db.NewSelect().Model((*Enrollment)(nil)).ColumnExpr("MAX(entered_at)").
			Where("scenario_id = ? AND customer_id = ?", sc.ID, c.PK).Scan(ctx, &sqlTime{&last})
		if err != nil {
			return nil, false, fmt.Errorf("last entry of customer %d in %q: %w", c.PK, sc.ID, err)
		}
		if !last.IsZero() && now.Sub(last) < sc.Reentry.After {
			return nil, false, nil
		}
		// A customer is in a scenario once at a time.
		n, err := db.NewSelect().Model((*Enrollment)(nil)).
			Where("scenario_id = ? AND customer_id = ? AND state = ?", sc.ID, c.PK, StateActive).Count(ctx)
		if err != nil {
			return nil, false, fmt.Errorf("running entries of customer %d in %q: %w", c.PK, sc.ID, err)
		}
		if n > 0 {
			return nil, false, nil
		}
	}
	ctxMap := map[string]any{}
	for k, v := range props {
		ctxMap[k] = v
	}
	en := &Enrollment{ScenarioID: sc.ID, Version: version, CustomerPK: c.PK, EntryKey: key, State: StateActive,
		Step: sc.First(), StepStartedAt: now, NextRunAt: &now, Context: ctxMap, EnteredAt: now, UpdatedAt: now}
	if sc.Holdout > 0 && bucket(sc.ID+":"+strconv.FormatInt(c.PK, 10), 100) < sc.Holdout {
		en.State, en.Holdout, en.NextRunAt = StateHoldout, true, nil
	}
	res, err := db.NewInsert().Model(en).On("CONFLICT (scenario_id, customer_id, entry_key) DO NOTHING").Exec(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("enroll customer %d in %q: %w", c.PK, sc.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, false, nil
	}
	if en.ID == 0 {
		// SQLite does not return the id through ON CONFLICT inserts on
		// every driver version; read it back.
		if err := db.NewSelect().Model(en).Where("scenario_id = ? AND customer_id = ? AND entry_key = ?", sc.ID, c.PK, key).Scan(ctx); err != nil {
			return nil, false, fmt.Errorf("reload enrollment: %w", err)
		}
	}
	return en, true, nil
}

// observedFor reports whether Refrain has observed c for at least d (always
// true when d is zero).
func observedFor(c *customer.Customer, now time.Time, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	return c.ObservedSince != nil && !c.ObservedSince.After(now.Add(-d))
}

// leftSegment reports whether the customer is no longer a member of the
// trigger segment of sc (false for other triggers, or a segment the
// membership store does not know).
func (e *Engine) leftSegment(ctx context.Context, db bun.IDB, sc *scenarios.Scenario, customerPK int64) (bool, error) {
	if sc.Trigger.Kind != scenarios.TriggerSegment || e.o.Membership == nil {
		return false, nil
	}
	member, known, err := e.o.Membership.IsMember(ctx, db, sc.Trigger.Segment, customerPK)
	if err != nil {
		return false, fmt.Errorf("scenario %q trigger segment: %w", sc.ID, err)
	}
	return known && !member, nil
}

// sqlTime scans a nullable time, as MAX() returns on both dialects (SQLite
// gives text).
type sqlTime struct{ t *time.Time }

func (s *sqlTime) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		return nil
	case time.Time:
		*s.t = x.UTC()
		return nil
	case string:
		return s.parse(x)
	case []byte:
		return s.parse(string(x))
	}
	return fmt.Errorf("scan time from %T", v)
}

func (s *sqlTime) parse(x string) error {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999Z07:00", time.RFC3339Nano, "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, x); err == nil {
			*s.t = t.UTC()
			return nil
		}
	}
	return fmt.Errorf("scan time from %q", x)
}

var _ sql.Scanner = (*sqlTime)(nil)

// bucket maps s to [0, n) stably.
func bucket(s string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return int(h.Sum32() % uint32(n))
}
