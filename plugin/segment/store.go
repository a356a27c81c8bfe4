package segment

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/store"
)

// Customer events written when membership changes. Their properties are
// segment_id (number) and segment (the name).
const (
	EventEntered = "segment.entered"
	EventExited  = "segment.exited"
)

// Segment is a named, stored rule.
type Segment struct {
	bun.BaseModel `bun:"table:segments"`

	ID        int64     `bun:"id,pk,autoincrement"`
	Name      string    `bun:"name,notnull"`
	Rule      string    `bun:"rule,notnull"`
	CreatedAt time.Time `bun:"created_at,notnull"`
	UpdatedAt time.Time `bun:"updated_at,notnull"`
}

// Member is a current member of a segment.
type Member struct {
	bun.BaseModel `bun:"table:segment_members"`

	SegmentID  int64     `bun:"segment_id,pk"`
	CustomerPK int64     `bun:"customer_id,pk"`
	EnteredAt  time.Time `bun:"entered_at,notnull"`
}

// Stay is one period of membership: exited is nil while it lasts.
type Stay struct {
	bun.BaseModel `bun:"table:segment_history"`

	ID         int64      `bun:"id,pk,autoincrement"`
	SegmentID  int64      `bun:"segment_id,notnull"`
	CustomerPK int64      `bun:"customer_id,notnull"`
	EnteredAt  time.Time  `bun:"entered_at,notnull"`
	ExitedAt   *time.Time `bun:"exited_at"`
}

// ErrNotFound is returned for a segment that does not exist.
var ErrNotFound = errors.New("segment not found")

// ErrInvalid is returned for a bad segment name (or a taken one).
var ErrInvalid = errors.New("invalid segment")

var cache sync.Map // rule source -> *Rule

// Compile parses rule, reusing an earlier parse of the same text.
func Compile(rule string) (*Rule, error) {
	if r, ok := cache.Load(rule); ok {
		return r.(*Rule), nil
	}
	r, err := Parse(rule)
	if err != nil {
		return nil, err
	}
	cache.Store(rule, r)
	return r, nil
}

// Upsert creates a segment, or with id > 0 changes its name and rule. The
// rule is checked first; a bad rule is an *Error with its position.
// Membership follows at the next Recompute or Sweep.
func Upsert(ctx context.Context, db bun.IDB, now time.Time, id int64, name, rule string) (*Segment, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return nil, fmt.Errorf("%w: a segment name is 1 to 200 characters", ErrInvalid)
	}
	if _, err := Parse(rule); err != nil {
		return nil, err
	}
	if other, err := GetByName(ctx, db, name); err == nil && other.ID != id {
		return nil, fmt.Errorf("%w: the name %q is taken", ErrInvalid, name)
	}
	s := &Segment{ID: id, Name: name, Rule: rule, CreatedAt: now, UpdatedAt: now}
	if id == 0 {
		if _, err := db.NewInsert().Model(s).Exec(ctx); err != nil {
			return nil, fmt.Errorf("create segment %q: %w", name, err)
		}
		return s, nil
	}
	res, err := db.NewUpdate().Model(s).Column("name", "rule", "updated_at").WherePK().Returning("created_at").Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("update segment %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, ErrNotFound
	}
	return Get(ctx, db, id)
}

// Delete removes a segment with its members and history. Members leave
// without segment.exited events: the segment no longer exists.
func Delete(ctx context.Context, db bun.IDB, id int64) error {
	res, err := db.NewDelete().Model((*Segment)(nil)).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return fmt.Errorf("delete segment: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// Get loads a segment.
func Get(ctx context.Context, db bun.IDB, id int64) (*Segment, error) {
	s := new(Segment)
	err := db.NewSelect().Model(s).Where("id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load segment: %w", err)
	}
	return s, nil
}

// GetByName loads a segment by name.
func GetByName(ctx context.Context, db bun.IDB, name string) (*Segment, error) {
	s := new(Segment)
	err := db.NewSelect().Model(s).Where("name = ?", name).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load segment: %w", err)
	}
	return s, nil
}

// List returns every segment by id.
func List(ctx context.Context, db bun.IDB) ([]*Segment, error) {
	var out []*Segment
	if err := db.NewSelect().Model(&out).Order("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list segments: %w", err)
	}
	return out, nil
}

// CountMembers counts the current members of a segment.
func CountMembers(ctx context.Context, db bun.IDB, id int64) (int, error) {
	n, err := db.NewSelect().Model((*Member)(nil)).Where("segment_id = ?", id).Count(ctx)
	return int(n), err
}

// Members returns up to first members with a customer id above after, by
// customer id.
func Members(ctx context.Context, db bun.IDB, id int64, first int, after int64) ([]*Member, error) {
	var out []*Member
	err := db.NewSelect().Model(&out).Where("segment_id = ?", id).Where("customer_id > ?", after).
		Order("customer_id").Limit(int64(first)).Scan(ctx)
	return out, err
}

// Of returns the segments customer pk is a member of, by id.
func Of(ctx context.Context, db bun.IDB, pk int64) ([]*Segment, error) {
	var out []*Segment
	err := db.NewSelect().Model(&out).
		Where("id IN (SELECT segment_id FROM segment_members WHERE customer_id = ?)", pk).Order("id").Scan(ctx)
	return out, err
}

// History returns the stays of customer pk in segment id, oldest first.
func History(ctx context.Context, db bun.IDB, id, pk int64) ([]*Stay, error) {
	var out []*Stay
	err := db.NewSelect().Model(&out).Where("segment_id = ? AND customer_id = ?", id, pk).Order("id").Scan(ctx)
	return out, err
}

// Change is one membership change that was applied.
type Change struct {
	SegmentID  int64
	CustomerPK int64
	Entered    bool
}

// Refresh re-evaluates every segment for customer pk in memory and applies
// the changes, inside one transaction that holds the customer row (FOR
// UPDATE on PostgreSQL), so concurrent refreshes and sweeps agree and each
// entry and exit is written once with its event.
func Refresh(ctx context.Context, db bun.IDB, now time.Time, pk int64) ([]Change, error) {
	segs, err := List(ctx, db)
	if err != nil || len(segs) == 0 {
		return nil, err
	}
	return refreshMany(ctx, db, now, segs, []int64{pk})
}

// Recompute evaluates one segment over the whole base in SQL, and
// re-evaluates in memory (under the row lock, as Refresh does) only the
// customers whose membership differs, applying those changes.
func Recompute(ctx context.Context, db bun.IDB, now time.Time, s *Segment) ([]Change, error) {
	rule, err := Compile(s.Rule)
	if err != nil {
		return nil, fmt.Errorf("segment %q: %w", s.Name, err)
	}
	want, err := rule.IDs(ctx, db, now)
	if err != nil {
		return nil, err
	}
	var have []int64
	if err := db.NewSelect().Model((*Member)(nil)).Column("customer_id").Where("segment_id = ?", s.ID).
		Order("customer_id").Scan(ctx, &have); err != nil {
		return nil, fmt.Errorf("load members: %w", err)
	}
	diff := symmetricDiff(want, have)
	var out []Change
	for len(diff) > 0 {
		n := min(len(diff), 200)
		ch, err := refreshMany(ctx, db, now, []*Segment{s}, diff[:n])
		if err != nil {
			return out, err
		}
		out = append(out, ch...)
		diff = diff[n:]
	}
	return out, nil
}

// Sweep recomputes every segment; time-dependent rules need it to follow
// the clock, and it also catches changes no hook saw.
func Sweep(ctx context.Context, db bun.IDB, now time.Time) ([]Change, error) {
	segs, err := List(ctx, db)
	if err != nil {
		return nil, err
	}
	var out []Change
	for _, s := range segs {
		ch, err := Recompute(ctx, db, now, s)
		out = append(out, ch...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func symmetricDiff(a, b []int64) []int64 {
	var out []int64
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			out = append(out, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			out = append(out, b[j])
			j++
		default:
			i++
			j++
		}
	}
	return out
}

func refreshMany(ctx context.Context, db bun.IDB, now time.Time, segs []*Segment, pks []int64) ([]Change, error) {
	pks = slices.Clone(pks)
	slices.Sort(pks)
	var out []Change
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		out = nil
		var cs []*customer.Customer
		q := tx.NewSelect().Model(&cs).Where("id IN (?)", bun.List(pks)).Order("id")
		q = store.ForUpdate(q)
		if err := q.Scan(ctx); err != nil {
			return fmt.Errorf("lock customers: %w", err)
		}
		for _, c := range cs {
			var members []int64
			if err := tx.NewSelect().Model((*Member)(nil)).Column("segment_id").Where("customer_id = ?", c.PK).
				Scan(ctx, &members); err != nil {
				return fmt.Errorf("load memberships: %w", err)
			}
			for _, s := range segs {
				rule, err := Compile(s.Rule)
				if err != nil {
					return fmt.Errorf("segment %q: %w", s.Name, err)
				}
				in, err := rule.Match(ctx, c, now, DBCounter{DB: tx, PK: c.PK})
				if err != nil {
					return err
				}
				if in == slices.Contains(members, s.ID) {
					continue
				}
				changed, err := apply(ctx, tx, now, s, c.PK, in)
				if err != nil {
					return err
				}
				if changed {
					out = append(out, Change{SegmentID: s.ID, CustomerPK: c.PK, Entered: in})
				}
			}
		}
		return nil
	})
	return out, err
}

// apply writes one entry or exit when it is still due: the conditional
// insert or delete makes a second writer a no-op, so the event and the
// history row are written once.
func apply(ctx context.Context, tx bun.IDB, now time.Time, s *Segment, pk int64, in bool) (bool, error) {
	props := map[string]any{"segment_id": s.ID, "segment": s.Name}
	if in {
		res, err := tx.NewInsert().Model(&Member{SegmentID: s.ID, CustomerPK: pk, EnteredAt: now}).
			On("CONFLICT (segment_id, customer_id) DO NOTHING").Exec(ctx)
		if err != nil {
			return false, fmt.Errorf("enter segment: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return false, nil
		}
		if _, err := tx.NewInsert().Model(&Stay{SegmentID: s.ID, CustomerPK: pk, EnteredAt: now}).Exec(ctx); err != nil {
			return false, fmt.Errorf("record entry: %w", err)
		}
		_, _, err = customer.AppendEvent(ctx, tx, now, pk, customer.EventInput{Type: EventEntered, Properties: props, Source: "segment"})
		return true, err
	}
	res, err := tx.NewDelete().Model((*Member)(nil)).Where("segment_id = ? AND customer_id = ?", s.ID, pk).Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("exit segment: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	if _, err := tx.NewUpdate().Model((*Stay)(nil)).Set("exited_at = ?", now).
		Where("segment_id = ? AND customer_id = ? AND exited_at IS NULL", s.ID, pk).Exec(ctx); err != nil {
		return false, fmt.Errorf("record exit: %w", err)
	}
	_, _, err = customer.AppendEvent(ctx, tx, now, pk, customer.EventInput{Type: EventExited, Properties: props, Source: "segment"})
	return true, err
}

// OfMany is Of for several customers in one statement, keyed by customer.
func OfMany(ctx context.Context, db bun.IDB, pks []int64) (map[int64][]*Segment, error) {
	var rows []struct {
		CustomerPK int64 `bun:"customer_id"`
		Segment    `bun:"extend"`
	}
	cond, arg := store.In(db, "m.customer_id", pks)
	if err := db.NewSelect().ColumnExpr("m.customer_id").ColumnExpr("s.*").TableExpr("segment_members AS m").
		Join("JOIN segments AS s ON s.id = m.segment_id").Where(cond, arg).OrderExpr("m.customer_id, s.id").Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("list segments of %d customers: %w", len(pks), err)
	}
	out := make(map[int64][]*Segment, len(pks))
	for i := range rows {
		s := rows[i].Segment
		out[rows[i].CustomerPK] = append(out[rows[i].CustomerPK], &s)
	}
	return out, nil
}

// IsMember reports whether customer pk is a current member of the segment
// named ref (or whose id ref is). known is false when no such segment is
// stored: a scenario may then be triggered by segment events written by
// another system, and membership cannot be checked here.
func IsMember(ctx context.Context, db bun.IDB, ref string, pk int64) (member, known bool, err error) {
	s, err := GetByName(ctx, db, ref)
	if errors.Is(err, ErrNotFound) {
		id, perr := strconv.ParseInt(ref, 10, 64)
		if perr != nil {
			return false, false, nil
		}
		s, err = Get(ctx, db, id)
		if errors.Is(err, ErrNotFound) {
			return false, false, nil
		}
	}
	if err != nil {
		return false, false, err
	}
	n, err := db.NewSelect().Model((*Member)(nil)).Where("segment_id = ? AND customer_id = ?", s.ID, pk).Count(ctx)
	if err != nil {
		return false, true, fmt.Errorf("check membership of customer %d in segment %q: %w", pk, ref, err)
	}
	return n > 0, true, nil
}
