package engine

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	pagecursor "github.com/refrain-dev/refrain/plugin/cursor"
	"github.com/refrain-dev/refrain/plugin/store"
)

// GetScenario loads a stored scenario.
func GetScenario(ctx context.Context, db bun.IDB, id string) (*Scenario, error) {
	s := new(Scenario)
	err := db.NewSelect().Model(s).Where("id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("scenario %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load scenario %q: %w", id, err)
	}
	return s, nil
}

// ListScenarios lists every stored scenario by id.
func ListScenarios(ctx context.Context, db bun.IDB) ([]*Scenario, error) {
	var out []*Scenario
	if err := db.NewSelect().Model(&out).Order("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list scenarios: %w", err)
	}
	return out, nil
}

// Definition returns the YAML of a scenario version.
func Definition(ctx context.Context, db bun.IDB, id string, version int) (string, error) {
	v := new(Version)
	if err := db.NewSelect().Model(v).Where("scenario_id = ? AND version = ?", id, version).Scan(ctx); err != nil {
		return "", fmt.Errorf("load scenario %q version %d: %w", id, version, err)
	}
	return v.Definition, nil
}

// GetEnrollment loads an enrollment.
func GetEnrollment(ctx context.Context, db bun.IDB, id int64) (*Enrollment, error) {
	en := new(Enrollment)
	err := db.NewSelect().Model(en).Where("id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("enrollment %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load enrollment %d: %w", id, err)
	}
	return en, nil
}

// EnrollmentPage is one page of enrollments, oldest first.
type EnrollmentPage struct {
	Enrollments []*Enrollment
	HasNextPage bool
	EndCursor   string
}

// EncodeCursor turns an enrollment id into an opaque cursor.
func EncodeCursor(id int64) string { return pagecursor.EncodeID("e:", id) }

func decodeCursor(c string) (int64, error) { return pagecursor.DecodeID("e:", c) }

// ListEnrollments lists a scenario's enrollments, optionally in one state.
func ListEnrollments(ctx context.Context, db bun.IDB, scenarioID string, state State, first int, after string) (EnrollmentPage, error) {
	q := db.NewSelect().Model((*Enrollment)(nil)).Where("scenario_id = ?", scenarioID)
	if state != "" {
		q = q.Where("state = ?", state)
	}
	if after != "" {
		id, err := decodeCursor(after)
		if err != nil {
			return EnrollmentPage{}, err
		}
		q = q.Where("id > ?", id)
	}
	var es []*Enrollment
	if err := q.Order("id ASC").Limit(int64(first)+1).Scan(ctx, &es); err != nil {
		return EnrollmentPage{}, fmt.Errorf("list enrollments of %q: %w", scenarioID, err)
	}
	p := EnrollmentPage{Enrollments: es}
	if len(es) > first {
		p.Enrollments, p.HasNextPage = es[:first], true
	}
	if n := len(p.Enrollments); n > 0 {
		p.EndCursor = EncodeCursor(p.Enrollments[n-1].ID)
	}
	return p, nil
}

// CustomerEnrollments lists a customer's enrollments, newest first.
func CustomerEnrollments(ctx context.Context, db bun.IDB, customerPK int64) ([]*Enrollment, error) {
	var es []*Enrollment
	if err := db.NewSelect().Model(&es).Where("customer_id = ?", customerPK).Order("id DESC").Limit(int64(100)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list enrollments of customer %d: %w", customerPK, err)
	}
	return es, nil
}

// Counts are a scenario's enrollments by outcome.
type Counts struct {
	Active, Holdout, Completed, Exited, Goals int
}

// CountEnrollments counts a scenario's enrollments by state, and goals.
func CountEnrollments(ctx context.Context, db bun.IDB, scenarioID string) (Counts, error) {
	var rows []struct {
		State State `bun:"state"`
		N     int   `bun:"n"`
		Goals int   `bun:"goals"`
	}
	err := db.NewSelect().Model((*Enrollment)(nil)).ColumnExpr("state, COUNT(*) AS n, COUNT(goal_at) AS goals").
		Where("scenario_id = ?", scenarioID).Group("state").Scan(ctx, &rows)
	if err != nil {
		return Counts{}, fmt.Errorf("count enrollments of %q: %w", scenarioID, err)
	}
	var c Counts
	for _, r := range rows {
		c.Goals += r.Goals
		switch r.State {
		case StateActive:
			c.Active = r.N
		case StateHoldout:
			c.Holdout = r.N
		case StateCompleted:
			c.Completed = r.N
		case StateExited:
			c.Exited = r.N
		}
	}
	return c, nil
}

// StepRuns lists the steps an enrollment ran, in order.
func StepRuns(ctx context.Context, db bun.IDB, enrollmentID int64) ([]*StepRun, error) {
	var out []*StepRun
	if err := db.NewSelect().Model(&out).Where("enrollment_id = ?", enrollmentID).Order("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list step runs of enrollment %d: %w", enrollmentID, err)
	}
	return out, nil
}

// Exit ends an active enrollment by hand.
func (e *Engine) Exit(ctx context.Context, db bun.IDB, id int64, reason string) (*Enrollment, error) {
	now := e.o.Clock.Now()
	res, err := db.NewUpdate().Model((*Enrollment)(nil)).Set("state = ?", StateExited).Set("exit_reason = ?", reason).
		Set("finished_at = ?", now).Set("next_run_at = NULL").Set("locked_by = NULL").Set("locked_until = NULL").
		Set("updated_at = ?", now).Where("id = ? AND state IN (?)", id, bun.List([]State{StateActive, StateHoldout})).Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("exit enrollment %d: %w", id, err)
	}
	en, err := GetEnrollment(ctx, db, id)
	if err != nil {
		return nil, err
	}
	if n, _ := res.RowsAffected(); n == 0 && en.State != StateExited {
		return nil, fmt.Errorf("enrollment %d is %s, not active", id, en.State)
	}
	return en, nil
}

// claimCursor takes the lease on a cursor row, creating it at start when
// missing. It reports false when another replica holds it.
func (e *Engine) claimCursor(ctx context.Context, db bun.IDB, name string, start func() (int64, error), now time.Time) (*cursor, bool, error) {
	c := new(cursor)
	err := db.NewSelect().Model(c).Where("name = ?", name).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		pos, err := start()
		if err != nil {
			return nil, false, err
		}
		if _, err := db.NewInsert().Model(&cursor{Name: name, Position: pos, UpdatedAt: now}).
			On("CONFLICT (name) DO NOTHING").Exec(ctx); err != nil {
			return nil, false, fmt.Errorf("create cursor %s: %w", name, err)
		}
	} else if err != nil {
		return nil, false, fmt.Errorf("load cursor %s: %w", name, err)
	}
	res, err := db.NewUpdate().Model((*cursor)(nil)).Set("locked_by = ?", e.o.WorkerID).
		Set("locked_until = ?", now.Add(e.o.Lease)).Set("updated_at = ?", now).
		Where("name = ?", name).
		WhereGroup(" AND ", func(q *bun.UpdateQuery) *bun.UpdateQuery {
			return q.Where("locked_until IS NULL").WhereOr("locked_until < ?", now).WhereOr("locked_by = ?", e.o.WorkerID)
		}).Exec(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("lease cursor %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, false, nil
	}
	if err := db.NewSelect().Model(c).Where("name = ?", name).Scan(ctx); err != nil {
		return nil, false, fmt.Errorf("load cursor %s: %w", name, err)
	}
	return c, true, nil
}

// moveCursor records a new position and releases the lease when release
// is set; it fails when the lease was lost.
func (e *Engine) moveCursor(ctx context.Context, db bun.IDB, name string, pos int64, release bool, now time.Time) error {
	q := db.NewUpdate().Model((*cursor)(nil)).Set("position = ?", pos).Set("updated_at = ?", now)
	if release {
		q = q.Set("locked_by = NULL").Set("locked_until = NULL")
	}
	res, err := q.Where("name = ? AND locked_by = ?", name, e.o.WorkerID).Exec(ctx)
	if err != nil {
		return fmt.Errorf("move cursor %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("move cursor %s: lease lost", name)
	}
	return nil
}

// CustomerEnrollmentsOf is CustomerEnrollments for several customers in
// one statement, keyed by customer.
func CustomerEnrollmentsOf(ctx context.Context, db bun.IDB, customerPKs []int64) (map[int64][]*Enrollment, error) {
	var es []*Enrollment
	cond, arg := store.In(db, "customer_id", customerPKs)
	if err := db.NewSelect().Model(&es).Where(cond, arg).Order("id DESC").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list enrollments of %d customers: %w", len(customerPKs), err)
	}
	out := make(map[int64][]*Enrollment, len(customerPKs))
	for _, e := range es {
		if len(out[e.CustomerPK]) < 100 {
			out[e.CustomerPK] = append(out[e.CustomerPK], e)
		}
	}
	return out, nil
}
