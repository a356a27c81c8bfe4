package engine

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/ptr"
	"github.com/refrain-dev/refrain/plugin/store"
	"github.com/refrain-dev/refrain/scenarios"
)

// ErrLeaseLost is returned by Advance when another worker took the
// enrollment over (this worker's lease ran out).
var ErrLeaseLost = errors.New("enrollment lease lost")

// maxStepsPerClaim bounds how many steps one claim runs in a row, so a
// long chain of immediate steps cannot starve the rest of the batch.
const maxStepsPerClaim = 50

// Claim takes up to Batch due enrollments under this engine's lease:
// active ones whose next_run_at has come and whose previous lease, if
// any, ran out. Concurrent claimers on PostgreSQL skip each other's rows.
func (e *Engine) Claim(ctx context.Context) ([]int64, error) {
	now := e.o.Clock.Now()
	var ids []int64
	err := e.o.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		q := tx.NewSelect().Model((*Enrollment)(nil)).Column("id").
			Where("state = ? AND next_run_at <= ?", StateActive, now).
			WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
				return q.Where("locked_until IS NULL").WhereOr("locked_until < ?", now)
			}).Order("next_run_at ASC", "id ASC").Limit(int64(e.o.Batch))
		q = store.SkipLocked(q)
		if err := q.Scan(ctx, &ids); err != nil {
			return fmt.Errorf("select due enrollments: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		if _, err := tx.NewUpdate().Model((*Enrollment)(nil)).Set("locked_by = ?", e.o.WorkerID).
			Set("locked_until = ?", now.Add(e.o.Lease)).Where("id IN (?)", bun.List(ids)).Exec(ctx); err != nil {
			return fmt.Errorf("claim enrollments: %w", err)
		}
		return nil
	})
	return ids, err
}

// AdvanceDue claims one batch of due enrollments and runs each as far as
// it goes now. It returns how many steps ran.
func (e *Engine) AdvanceDue(ctx context.Context) (int, error) {
	ids, err := e.Claim(ctx)
	if err != nil {
		return 0, err
	}
	steps := 0
	var errs []error
	for _, id := range ids {
		n, err := e.Advance(ctx, id)
		steps += n
		if err != nil && !errors.Is(err, ErrLeaseLost) {
			errs = append(errs, err)
			e.o.Logger.ErrorContext(ctx, "advance enrollment", "enrollment_id", id, "err", err)
		}
	}
	return steps, errors.Join(errs...)
}

// Advance runs the steps of a claimed enrollment, each in its own
// transaction, until it waits or finishes. It returns how many steps ran.
func (e *Engine) Advance(ctx context.Context, id int64) (int, error) {
	ran := 0
	for i := 0; i < maxStepsPerClaim; i++ {
		more, stepped, err := e.step(ctx, id)
		if stepped {
			ran++
		}
		if err != nil || !more {
			return ran, err
		}
	}
	// Leave the rest for the next claim.
	_, err := e.o.DB.NewUpdate().Model((*Enrollment)(nil)).Set("locked_by = NULL").Set("locked_until = NULL").
		Where("id = ? AND locked_by = ?", id, e.o.WorkerID).Exec(ctx)
	return ran, err
}

// step runs the current step of enrollment id in one transaction with its
// step_runs row. more says the next step is due at once.
func (e *Engine) step(ctx context.Context, id int64) (more, stepped bool, err error) {
	err = e.o.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		now := e.o.Clock.Now()
		en := new(Enrollment)
		q := tx.NewSelect().Model(en).Where("id = ?", id)
		q = store.ForUpdate(q)
		if err := q.Scan(ctx); err != nil {
			return fmt.Errorf("load enrollment %d: %w", id, err)
		}
		if en.LockedBy == nil || *en.LockedBy != e.o.WorkerID || en.LockedUntil == nil || !en.LockedUntil.After(now) {
			return ErrLeaseLost
		}
		if en.State != StateActive {
			return e.release(ctx, tx, en, now)
		}
		row, err := GetScenario(ctx, tx, en.ScenarioID)
		if err != nil {
			return err
		}
		if row.Status != StatusActive {
			// Paused: look again later, without running anything.
			next := now.Add(time.Hour)
			en.NextRunAt = &next
			return e.release(ctx, tx, en, now)
		}
		sc, err := e.Compiled(ctx, tx, en.ScenarioID, en.Version)
		if err != nil {
			return err
		}
		r := &run{e: e, tx: tx, en: en, sc: sc, now: now}
		more, stepped, err = r.do(ctx)
		return err
	})
	if errors.Is(err, ErrLeaseLost) {
		return false, false, err
	}
	if err != nil {
		return false, false, fmt.Errorf("advance enrollment %d: %w", id, err)
	}
	return more, stepped, nil
}

// release saves the enrollment and lets go of its lease.
func (e *Engine) release(ctx context.Context, tx bun.IDB, en *Enrollment, now time.Time) error {
	en.LockedBy, en.LockedUntil, en.UpdatedAt = nil, nil, now
	if _, err := tx.NewUpdate().Model(en).WherePK().Exec(ctx); err != nil {
		return fmt.Errorf("save enrollment %d: %w", en.ID, err)
	}
	return nil
}

// run is one step of one enrollment, inside its transaction.
type run struct {
	e   *Engine
	tx  bun.IDB
	en  *Enrollment
	sc  *scenarios.Scenario
	now time.Time
	c   *customer.Customer
}

func (r *run) customer(ctx context.Context) (*customer.Customer, error) {
	if r.c == nil {
		c, err := customer.Get(ctx, r.tx, r.en.CustomerPK)
		if err != nil {
			return nil, err
		}
		r.c = c
	}
	return r.c, nil
}

func (r *run) do(ctx context.Context) (more, stepped bool, err error) {
	en, sc := r.en, r.sc
	st := sc.Index()[en.Step]
	if st == nil {
		return false, false, r.finish(ctx, StateCompleted, "")
	}
	// Exit conditions are checked before every step.
	if reason, err := r.exitReason(ctx); err != nil || reason != "" {
		if err != nil {
			return false, false, err
		}
		return false, false, r.finish(ctx, StateExited, reason)
	}
	due := r.now
	if en.NextRunAt != nil {
		due = *en.NextRunAt
	}
	switch st.Kind {
	case scenarios.StepSend:
		m := Message{CustomerPK: en.CustomerPK, Template: st.Template, Kind: st.Message, Program: sc.ID, Step: st.ID,
			Variant: ptr.Deref(en.Variant), Context: en.Context, Priority: sc.Priority,
			IdempotencyKey: "scenario:" + strconv.FormatInt(en.ID, 10) + ":" + st.ID + ":1"}
		c, err := r.customer(ctx)
		if err != nil {
			return false, false, err
		}
		if c.EmailNormalized == nil {
			return false, false, r.finish(ctx, StateExited, "no email address")
		}
		m.Values = r.expand(st.Values, c)
		if st.Message == scenarios.Marketing {
			d, err := r.e.o.Gate.Admit(ctx, r.tx, r.now, m)
			if err != nil {
				return false, false, fmt.Errorf("pressure policy: %w", err)
			}
			switch d.Action {
			case Defer:
				until := d.Until
				if !until.After(r.now) {
					until = r.now.Add(time.Hour)
				}
				en.NextRunAt = &until
				return false, false, r.e.release(ctx, r.tx, en, r.now)
			case Skip:
				if err := r.record(ctx, st, "skipped: "+d.Reason, nil, due); err != nil {
					return false, false, err
				}
				return r.moveTo(ctx, st.Next)
			}
		}
		msgID, err := r.e.o.Mailer.Send(ctx, r.tx, m)
		if err != nil {
			return false, false, fmt.Errorf("send %s: %w", st.Template, err)
		}
		if err := r.record(ctx, st, "sent", &msgID, due); err != nil {
			return false, false, err
		}
		return r.moveTo(ctx, st.Next)
	case scenarios.StepWait:
		until := en.StepStartedAt.Add(st.Duration)
		if st.Until != nil {
			c, err := r.customer(ctx)
			if err != nil {
				return false, false, err
			}
			until = NextLocal(until, *st.Until, st.Weekdays, r.e.location(c))
		}
		if r.now.Before(until) {
			return false, false, r.wait(ctx, until)
		}
		if err := r.record(ctx, st, "waited", nil, due); err != nil {
			return false, false, err
		}
		return r.moveTo(ctx, st.Next)
	case scenarios.StepWaitFor:
		ev, err := r.findEvent(ctx, st.WaitEvent, en.StepStartedAt)
		if err != nil {
			return false, false, err
		}
		timeout := en.StepStartedAt.Add(st.Timeout)
		switch {
		case ev != nil:
			if err := r.record(ctx, st, "event", nil, due); err != nil {
				return false, false, err
			}
			return r.moveTo(ctx, firstOr(st.OnEvent, st.Next))
		case !r.now.Before(timeout):
			if err := r.record(ctx, st, "timeout", nil, due); err != nil {
				return false, false, err
			}
			return r.moveTo(ctx, firstOr(st.OnTimeout, st.Next))
		}
		return false, false, r.wait(ctx, timeout)
	case scenarios.StepIf:
		c, err := r.customer(ctx)
		if err != nil {
			return false, false, err
		}
		ok, err := r.e.o.Rules.MatchCustomer(ctx, r.tx, st.Rule, c, r.now)
		if err != nil {
			return false, false, fmt.Errorf("step %s rule: %w", st.ID, err)
		}
		if ok {
			if err := r.record(ctx, st, "then", nil, due); err != nil {
				return false, false, err
			}
			return r.moveTo(ctx, firstOr(st.Then, st.Next))
		}
		if err := r.record(ctx, st, "else", nil, due); err != nil {
			return false, false, err
		}
		return r.moveTo(ctx, firstOr(st.Else, st.Next))
	case scenarios.StepSplit:
		total := 0
		for _, v := range st.Variants {
			total += v.Weight
		}
		b := bucket(strconv.FormatInt(en.ID, 10)+":"+st.ID, total)
		var chosen *scenarios.Variant
		for _, v := range st.Variants {
			if b < v.Weight {
				chosen = v
				break
			}
			b -= v.Weight
		}
		name := chosen.Name
		en.Variant = &name
		if err := r.record(ctx, st, "variant "+name, nil, due); err != nil {
			return false, false, err
		}
		return r.moveTo(ctx, firstOr(chosen.Steps, st.Next))
	case scenarios.StepUpdate:
		if err := r.update(ctx, st); err != nil {
			return false, false, err
		}
		if err := r.record(ctx, st, "updated", nil, due); err != nil {
			return false, false, err
		}
		return r.moveTo(ctx, st.Next)
	case scenarios.StepDeleteProfile:
		if r.e.o.Erase == nil {
			return false, false, errors.New("delete_profile: no eraser configured")
		}
		c, err := r.customer(ctx)
		if err != nil {
			return false, false, err
		}
		if !observedFor(c, r.now, sc.ObservedFor) {
			// Checked at entry too; kept here so that nothing is deleted
			// without the program's window of evidence, whatever changed.
			if err := r.record(ctx, st, "not deleted: not observed long enough", nil, due); err != nil {
				return false, false, err
			}
			return false, true, r.finish(ctx, StateExited, "not observed for "+sc.ObservedFor.String())
		}
		if err := r.e.o.Erase(ctx, r.tx, r.now, en.CustomerPK, "scenario "+sc.ID); err != nil {
			return false, false, err
		}
		if err := r.record(ctx, st, "deleted", nil, due); err != nil {
			return false, false, err
		}
		return false, true, r.finish(ctx, StateCompleted, "")
	case scenarios.StepExit:
		if err := r.record(ctx, st, "exit", nil, due); err != nil {
			return false, false, err
		}
		return false, true, r.finish(ctx, StateExited, st.Reason)
	}
	return false, false, fmt.Errorf("step %s: unknown kind %q", st.ID, st.Kind)
}

func firstOr(list []*scenarios.Step, next string) string {
	if len(list) > 0 {
		return list[0].ID
	}
	return next
}

// record writes the step's run; a second run of the same step fails on
// the unique key and rolls the whole step back.
func (r *run) record(ctx context.Context, st *scenarios.Step, outcome string, msgID *string, due time.Time) error {
	w := r.e.o.WorkerID
	sr := &StepRun{EnrollmentID: r.en.ID, ScenarioID: r.sc.ID, Step: st.ID, Occurrence: 1, Kind: string(st.Kind),
		Outcome: outcome, MessageID: msgID, Worker: &w, DueAt: &due, RanAt: r.now}
	if _, err := r.tx.NewInsert().Model(sr).Exec(ctx); err != nil {
		return fmt.Errorf("record step %s of enrollment %d: %w", st.ID, r.en.ID, err)
	}
	return nil
}

// moveTo makes next the current step, due now; an empty next completes.
func (r *run) moveTo(ctx context.Context, next string) (bool, bool, error) {
	if next == "" {
		return false, true, r.finish(ctx, StateCompleted, "")
	}
	r.en.Step, r.en.StepStartedAt, r.en.NextRunAt, r.en.UpdatedAt = next, r.now, &r.now, r.now
	if _, err := r.tx.NewUpdate().Model(r.en).WherePK().Exec(ctx); err != nil {
		return false, true, fmt.Errorf("save enrollment %d: %w", r.en.ID, err)
	}
	return true, true, nil
}

func (r *run) wait(ctx context.Context, until time.Time) error {
	r.en.NextRunAt = &until
	return r.e.release(ctx, r.tx, r.en, r.now)
}

func (r *run) finish(ctx context.Context, state State, reason string) error {
	r.en.State, r.en.FinishedAt, r.en.NextRunAt = state, &r.now, nil
	if reason != "" {
		r.en.ExitReason = &reason
	}
	return r.e.release(ctx, r.tx, r.en, r.now)
}

// exitReason checks exit_when and the exit events since entry.
func (r *run) exitReason(ctx context.Context) (string, error) {
	if left, err := r.e.leftSegment(ctx, r.tx, r.sc, r.en.CustomerPK); err != nil || left {
		if err != nil {
			return "", err
		}
		return "left segment " + r.sc.Trigger.Segment, nil
	}
	if r.sc.ExitWhen != "" {
		c, err := r.customer(ctx)
		if err != nil {
			return "", err
		}
		ok, err := r.e.o.Rules.MatchCustomer(ctx, r.tx, r.sc.ExitWhen, c, r.now)
		if err != nil {
			return "", fmt.Errorf("exit_when: %w", err)
		}
		if ok {
			return "exit_when", nil
		}
	}
	for _, m := range r.sc.ExitOn {
		ev, err := r.findEvent(ctx, m, r.en.EnteredAt)
		if err != nil {
			return "", err
		}
		if ev != nil {
			return ev.Type, nil
		}
	}
	return "", nil
}

// findEvent returns the first event of the customer matching m recorded
// at or after since, or nil.
func (r *run) findEvent(ctx context.Context, m scenarios.EventMatch, since time.Time) (*customer.Event, error) {
	var evs []*customer.Event
	if err := r.tx.NewSelect().Model(&evs).Where("customer_id = ? AND type = ? AND created_at >= ? AND created_at <= ?",
		r.en.CustomerPK, m.Event, since, r.now).Order("id").Limit(200).Scan(ctx); err != nil {
		return nil, fmt.Errorf("find %s events: %w", m.Event, err)
	}
	skip := triggerEventID(r.en)
	for _, ev := range evs {
		if ev.ID == skip {
			continue
		}
		ok, err := r.e.matches(m, ev, r.en.Context)
		if err != nil {
			return nil, err
		}
		if ok {
			return ev, nil
		}
	}
	return nil, nil
}

// update applies an update step to the customer.
func (r *run) update(ctx context.Context, st *scenarios.Step) error {
	c, err := r.customer(ctx)
	if err != nil {
		return err
	}
	if c.Attributes == nil {
		c.Attributes = map[string]any{}
	}
	if c.Preferences == nil {
		c.Preferences = map[string]any{}
	}
	for k, v := range st.Attributes {
		c.Attributes[k] = v
	}
	for k, v := range st.Preferences {
		c.Preferences[k] = v
	}
	tags := customer.MergeTags(c.Tags, st.AddTags)
	kept := tags[:0]
	for _, t := range tags {
		remove := false
		for _, x := range st.RemoveTags {
			remove = remove || x == t
		}
		if !remove {
			kept = append(kept, t)
		}
	}
	c.Tags = kept
	c.UpdatedAt = r.now
	if _, err := r.tx.NewUpdate().Model(c).Column("attributes", "preferences", "tags", "updated_at").WherePK().Exec(ctx); err != nil {
		return fmt.Errorf("update customer %d: %w", c.PK, err)
	}
	return nil
}

// expand fills ${survey_url}, ${keep_url}, ${store_url}, ${customer.id} and
// ${context.KEY} in step values. A customer id or context value placed
// in a link (${store_url}/orders/${context.order_id}) is escaped for a URL,
// so that it cannot change the link's path or query.
func (r *run) expand(values map[string]string, c *customer.Customer) map[string]string {
	out := make(map[string]string, len(values))
	for k, v := range values {
		isURL := false
		for _, p := range []string{"${store_url}", "${survey_url}", "http://", "https://"} {
			isURL = isURL || strings.HasPrefix(v, p)
		}
		out[k] = scenarios.Placeholder.ReplaceAllStringFunc(v, func(m string) string {
			name := scenarios.Placeholder.FindStringSubmatch(m)[1]
			escape := func(s string) string {
				if !isURL {
					return s
				}
				return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
			}
			switch {
			case name == "survey_url":
				if r.e.o.Links != nil {
					return r.e.o.Links.SurveyURL(c)
				}
				return r.e.o.StoreURL + "/survey"
			case name == "keep_url":
				if r.e.o.Links != nil {
					return r.e.o.Links.KeepURL(c)
				}
				return ""
			case name == "store_url":
				return r.e.o.StoreURL
			case name == "customer.id":
				return escape(c.ID())
			case len(name) > 8 && name[:8] == "context.":
				if x, ok := r.en.Context[name[8:]]; ok {
					return escape(contextString(x))
				}
			}
			return ""
		})
	}
	return out
}

// contextString writes a context value as text: JSON numbers without an
// exponent (order 1234567, not 1.234567e+06).
func contextString(x any) string {
	if f, ok := x.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(x)
}

func (e *Engine) location(c *customer.Customer) *time.Location {
	if c.TimeZone != nil {
		if loc, err := time.LoadLocation(*c.TimeZone); err == nil {
			return loc
		}
	}
	return e.o.TimeZone
}

// NextLocal returns the first instant at or after t that is at local time
// tod in loc, on one of days when given.
func NextLocal(t time.Time, tod scenarios.TimeOfDay, days []time.Weekday, loc *time.Location) time.Time {
	lt := t.In(loc)
	for i := 0; i < 8; i++ {
		d := lt.AddDate(0, 0, i)
		cand := time.Date(d.Year(), d.Month(), d.Day(), tod.Hour, tod.Minute, 0, 0, loc)
		if cand.Before(t) {
			continue
		}
		if len(days) == 0 {
			return cand.UTC()
		}
		for _, wd := range days {
			if cand.Weekday() == wd {
				return cand.UTC()
			}
		}
	}
	return t
}
