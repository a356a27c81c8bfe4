package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/scenarios"
)

// Run follows events, sweeps yearly triggers and advances due enrollments
// until ctx is done. Every replica runs it: leases share the work.
func (e *Engine) Run(ctx context.Context) error {
	for {
		busy, err := e.pass(ctx)
		if err != nil && ctx.Err() == nil {
			e.o.Logger.ErrorContext(ctx, "scenario engine pass", "err", err)
		}
		if busy && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(e.o.Poll):
		}
	}
}

// pass runs each kind of work once and reports whether any was found.
func (e *Engine) pass(ctx context.Context) (bool, error) {
	n, err1 := e.FollowEvents(ctx)
	_, err2 := e.SweepYearly(ctx)
	s, err3 := e.AdvanceDue(ctx)
	return n > 0 || s > 0, errors.Join(err1, err2, err3)
}

// Drain runs passes until nothing is left to do at the clock's current
// time: the tests and the simulator call it after moving a virtual clock.
func (e *Engine) Drain(ctx context.Context) error {
	for i := 0; i < 10000; i++ {
		busy, err := e.pass(ctx)
		if err != nil {
			return err
		}
		if !busy {
			return nil
		}
	}
	return errors.New("scenario engine: drain did not settle")
}

// File is a scenario definition to install.
type File struct {
	Name string
	Data []byte
	// Status is the status the scenario gets when it is first installed
	// (ACTIVE when empty); a later install keeps the status it has, so
	// that a program a person enabled or paused stays so.
	Status Status
}

// Install saves each file as a scenario version (a no-op when unchanged),
// with origin as its source, and pauses the scenarios of that origin
// named in disable. It returns the ids installed.
func (e *Engine) Install(ctx context.Context, db bun.IDB, origin string, files []File, disable map[string]bool) ([]string, error) {
	var ids []string
	var errs []error
	for _, f := range files {
		sc, err := scenarios.Parse(f.Name, f.Data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if disable[sc.ID] {
			if row, err := GetScenario(ctx, db, sc.ID); err == nil && row.Origin == origin && row.Status == StatusActive {
				if _, err := e.SetStatus(ctx, db, sc.ID, StatusPaused); err != nil {
					errs = append(errs, err)
				}
			}
			continue
		}
		status := f.Status
		if status == "" {
			status = StatusActive
		}
		if _, _, err := e.Upsert(ctx, db, f.Name, f.Data, origin, status); err != nil {
			errs = append(errs, fmt.Errorf("install %s: %w", f.Name, err))
			continue
		}
		ids = append(ids, sc.ID)
	}
	return ids, errors.Join(errs...)
}

// NextDue returns the earliest next_run_at of the active enrollments, for
// driving a virtual clock from one due time to the next.
func (e *Engine) NextDue(ctx context.Context) (time.Time, bool, error) {
	var t time.Time
	err := e.o.DB.NewSelect().Model((*Enrollment)(nil)).ColumnExpr("MIN(next_run_at)").
		Where("state = ?", StateActive).Scan(ctx, &sqlTime{&t})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next due enrollment: %w", err)
	}
	return t, !t.IsZero(), nil
}

// RunUntil drives a virtual clock (set is its Set) to target, stopping at
// every due time on the way and draining the work there. Tests and the
// simulator use it; events they add between calls are picked up at once.
func (e *Engine) RunUntil(ctx context.Context, set func(time.Time), target time.Time) error {
	for {
		if err := e.Drain(ctx); err != nil {
			return err
		}
		next, ok, err := e.NextDue(ctx)
		if err != nil {
			return err
		}
		now := e.o.Clock.Now()
		if !ok || next.After(target) || !next.After(now) {
			// Nothing due before target, or due now but held by another
			// worker's lease: jump to target.
			if target.After(now) {
				set(target)
			}
			return e.Drain(ctx)
		}
		set(next)
	}
}
