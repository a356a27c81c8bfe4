package engine

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/scenarios"
)

const eventsCursor = "events"

// FollowEvents reads the customer events recorded since the last pass, in
// id order, under the cursor's lease (one replica at a time): it enrolls
// customers whose event fires a trigger, records goals, and wakes the
// enrollments that wait for that event or exit on it. A pass and its
// cursor move commit together. It returns how many events it read.
func (e *Engine) FollowEvents(ctx context.Context) (int, error) {
	// Read only up to the horizon: past it, an event with a lower id may
	// still be committing, and moving the cursor over it would lose it.
	horizon, err := customer.Horizon(ctx, e.o.DB)
	if err != nil {
		return 0, err
	}
	var n int
	err = e.o.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		now := e.o.Clock.Now()
		cur, ok, err := e.claimCursor(ctx, tx, eventsCursor, func() (int64, error) {
			// A new install starts at the end of the log: history does not
			// fire triggers.
			var max int64
			err := tx.NewSelect().Model((*customer.Event)(nil)).ColumnExpr("COALESCE(MAX(id), 0)").Scan(ctx, &max)
			return max, err
		}, now)
		if err != nil || !ok {
			return err
		}
		var events []*customer.Event
		if err := tx.NewSelect().Model(&events).Where("id > ? AND id <= ?", cur.Position, horizon).Order("id").Limit(int64(e.o.Batch)).Scan(ctx); err != nil {
			return fmt.Errorf("read customer events: %w", err)
		}
		pos := cur.Position
		if len(events) > 0 {
			active, err := e.active(ctx, tx)
			if err != nil {
				return err
			}
			for _, ev := range events {
				if err := e.onEvent(ctx, tx, active, ev, now); err != nil {
					return fmt.Errorf("handle event %d (%s): %w", ev.ID, ev.Type, err)
				}
				pos = ev.ID
			}
		}
		n = len(events)
		return e.moveCursor(ctx, tx, eventsCursor, pos, true, now)
	})
	return n, err
}

// StartFollowing places the events cursor at the end of the customer
// event log when there is none yet (a new install: history does not fire
// triggers), and leaves it alone otherwise. The service calls it before
// it takes requests, so that every event recorded from then on is
// followed; FollowEvents would otherwise place it on its first pass, and
// take events recorded before that pass for history.
func (e *Engine) StartFollowing(ctx context.Context) error {
	_, err := e.o.DB.NewRaw(`INSERT INTO scenario_cursors (name, position, updated_at)
		SELECT ?, COALESCE(MAX(id), 0), ? FROM customer_events WHERE TRUE ON CONFLICT (name) DO NOTHING`, eventsCursor, e.o.Clock.Now()).Exec(ctx)
	if err != nil {
		return fmt.Errorf("start following the customer events: %w", err)
	}
	return nil
}

// onEvent applies one customer event to every active scenario.
func (e *Engine) onEvent(ctx context.Context, db bun.IDB, active []*scenarios.Scenario, ev *customer.Event, now time.Time) error {
	var c *customer.Customer
	for _, sc := range active {
		fires, err := e.fires(sc, ev)
		if err != nil {
			return err
		}
		if !fires {
			continue
		}
		if c == nil {
			if c, err = customer.Get(ctx, db, ev.CustomerPK); err != nil {
				return err
			}
		}
		row, err := GetScenario(ctx, db, sc.ID)
		if err != nil {
			return err
		}
		props := map[string]any{"source": ev.Source, "trigger_event_id": ev.ID}
		for k, v := range ev.Properties {
			props[k] = v
		}
		if _, _, err := e.enroll(ctx, db, sc, row.Version, c, "event:"+strconv.FormatInt(ev.ID, 10), props, now); err != nil {
			return err
		}
	}
	// Enrollments of this customer that care about the event: record goals,
	// and wake those that wait for it or exit on it.
	var ens []*Enrollment
	if err := db.NewSelect().Model(&ens).Where("customer_id = ?", ev.CustomerPK).
		WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
			return q.Where("state = ?", StateActive).WhereOr("goal_at IS NULL")
		}).Scan(ctx); err != nil {
		return fmt.Errorf("load enrollments of customer %d: %w", ev.CustomerPK, err)
	}
	for _, en := range ens {
		sc, err := e.Compiled(ctx, db, en.ScenarioID, en.Version)
		if err != nil {
			return err
		}
		if g := sc.Goal; g != nil && en.GoalAt == nil && ev.ID != triggerEventID(en) && !ev.CreatedAt.Before(en.EnteredAt) && ev.CreatedAt.Sub(en.EnteredAt) <= g.Within {
			ok, err := e.matches(g.EventMatch, ev, en.Context)
			if err != nil {
				return err
			}
			if ok {
				if _, err := db.NewUpdate().Model((*Enrollment)(nil)).Set("goal_at = ?", ev.CreatedAt).
					Where("id = ? AND goal_at IS NULL", en.ID).Exec(ctx); err != nil {
					return fmt.Errorf("record goal of enrollment %d: %w", en.ID, err)
				}
			}
		}
		if en.State != StateActive || !e.wakes(sc, en, ev) {
			continue
		}
		if _, err := db.NewUpdate().Model((*Enrollment)(nil)).Set("next_run_at = ?", now).
			Where("id = ? AND state = ? AND next_run_at > ?", en.ID, StateActive, now).Exec(ctx); err != nil {
			return fmt.Errorf("wake enrollment %d: %w", en.ID, err)
		}
	}
	return nil
}

// fires reports whether ev starts sc.
func (e *Engine) fires(sc *scenarios.Scenario, ev *customer.Event) (bool, error) {
	t := sc.Trigger
	switch t.Kind {
	case scenarios.TriggerEvent:
		for _, typ := range t.Events {
			if typ == ev.Type {
				if t.Filter == "" {
					return true, nil
				}
				ok, err := e.o.Rules.MatchEvent(t.Filter, ev.Properties)
				if err != nil {
					return false, fmt.Errorf("scenario %q trigger filter: %w", sc.ID, err)
				}
				return ok, nil
			}
		}
	case scenarios.TriggerSegment:
		if ev.Type != "segment.entered" {
			return false, nil
		}
		for _, k := range []string{"segment_id", "segment", "segment_name", "id", "name"} {
			if v, ok := ev.Properties[k]; ok && fmt.Sprint(v) == t.Segment {
				return true, nil
			}
		}
	}
	return false, nil
}

// wakes reports whether ev is one the enrollment's current step waits for
// or one of the scenario's exit events.
func (e *Engine) wakes(sc *scenarios.Scenario, en *Enrollment, ev *customer.Event) bool {
	for _, m := range sc.ExitOn {
		if m.Event == ev.Type {
			return true
		}
	}
	st := sc.Index()[en.Step]
	return st != nil && st.Kind == scenarios.StepWaitFor && st.WaitEvent.Event == ev.Type
}

// matches reports whether ev matches m for an enrollment with context cx.
func (e *Engine) matches(m scenarios.EventMatch, ev *customer.Event, cx map[string]any) (bool, error) {
	if m.Event != ev.Type {
		return false, nil
	}
	for _, key := range m.Same {
		want, ok := cx[key]
		if !ok || fmt.Sprint(ev.Properties[key]) != fmt.Sprint(want) {
			return false, nil
		}
	}
	if m.Filter == "" {
		return true, nil
	}
	ok, err := e.o.Rules.MatchEvent(m.Filter, ev.Properties)
	if err != nil {
		return false, fmt.Errorf("event filter %q: %w", m.Filter, err)
	}
	return ok, nil
}

const yearlyCursor = "yearly"

// SweepYearly enrolls, once a day, the customers whose yearly date is
// today (in UTC): the anniversary of their first order or sign-up, or a
// fixed date such as the store's anniversary. Entry keys carry the year,
// so a sweep cut short is simply run again. It returns how many
// customers it enrolled.
func (e *Engine) SweepYearly(ctx context.Context) (int, error) {
	now := e.o.Clock.Now()
	today := int64(now.Year()*10000 + int(now.Month())*100 + now.Day())
	var n int
	err := e.o.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		cur, ok, err := e.claimCursor(ctx, tx, yearlyCursor, func() (int64, error) { return 0, nil }, now)
		if err != nil || !ok || cur.Position >= today {
			if ok && err == nil {
				return e.moveCursor(ctx, tx, yearlyCursor, cur.Position, true, now)
			}
			return err
		}
		active, err := e.active(ctx, tx)
		if err != nil {
			return err
		}
		md := now.Format("01-02")
		for _, sc := range active {
			t := sc.Trigger
			if t.Kind != scenarios.TriggerYearly {
				continue
			}
			date := t.Date
			if t.StoreAnniversary {
				date = e.o.StoreAnniversary
			}
			// A fixed-date trigger without its date (the store's
			// anniversary left unset) never fires: it does not mean every day.
			if date == "" && t.Field == "" {
				continue
			}
			if date != "" && date != md {
				continue
			}
			row, err := GetScenario(ctx, tx, sc.ID)
			if err != nil {
				return err
			}
			k, err := e.sweepScenario(ctx, tx, sc, row.Version, t.Field, md, now)
			if err != nil {
				return err
			}
			n += k
		}
		return e.moveCursor(ctx, tx, yearlyCursor, today, true, now)
	})
	return n, err
}

// sweepScenario enrolls today's customers of one yearly scenario: those
// whose field falls on month-day md, or everyone when field is empty.
func (e *Engine) sweepScenario(ctx context.Context, db bun.IDB, sc *scenarios.Scenario, version int, field, md string, now time.Time) (int, error) {
	n := 0
	var after int64
	key := "year:" + strconv.Itoa(now.Year())
	for {
		var cs []*customer.Customer
		q := db.NewSelect().Model(&cs).Where("id > ?", after).Order("id").Limit(500)
		switch field {
		case "first_order_at":
			q = q.Where("first_order_at IS NOT NULL AND first_order_at < ?", now.Add(-24*time.Hour))
		case "created_at":
			q = q.Where("created_at < ?", now.Add(-24*time.Hour))
		}
		if err := q.Scan(ctx); err != nil {
			return n, fmt.Errorf("sweep customers for %q: %w", sc.ID, err)
		}
		if len(cs) == 0 {
			return n, nil
		}
		for _, c := range cs {
			after = c.PK
			var at time.Time
			switch field {
			case "first_order_at":
				at = *c.FirstOrderAt
			case "created_at":
				at = c.CreatedAt
			}
			if field != "" && at.UTC().Format("01-02") != md {
				continue
			}
			_, created, err := e.enroll(ctx, db, sc, version, c, key, nil, now)
			if err != nil {
				return n, err
			}
			if created {
				n++
			}
		}
	}
}

// triggerEventID is the id of the event that started en, 0 for none: it
// never counts as the enrollment's goal, exit or awaited event.
func triggerEventID(en *Enrollment) int64 {
	switch v := en.Context["trigger_event_id"].(type) {
	case float64:
		return int64(v)
	case int64:
		return v
	case int:
		return int64(v)
	}
	return 0
}
