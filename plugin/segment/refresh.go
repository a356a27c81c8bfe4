package segment

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/customer"
)

// RefreshFromEvents re-evaluates the customers of the customer events
// after id (none when after is negative: it then returns the newest id) and
// returns the last id seen. Membership events themselves are skipped. It
// reads only up to the horizon of the event log: an event that took a
// lower id may still be committing (see customer.Horizon).
func RefreshFromEvents(ctx context.Context, db *bun.DB, now func() time.Time, after int64) (int64, error) {
	horizon, err := customer.Horizon(ctx, db)
	if err != nil {
		return after, err
	}
	if after < 0 {
		return horizon, nil
	}
	for {
		var rows []struct {
			ID         int64 `bun:"id"`
			CustomerPK int64 `bun:"customer_id"`
		}
		err := db.NewSelect().Model((*customer.Event)(nil)).Column("id", "customer_id").Where("id > ? AND id <= ?", after, horizon).
			Where("type NOT IN (?)", bun.List([]string{EventEntered, EventExited})).
			Order("id").Limit(500).Scan(ctx, &rows)
		if err != nil || len(rows) == 0 {
			return after, err
		}
		seen := map[int64]bool{}
		for _, r := range rows {
			if !seen[r.CustomerPK] {
				seen[r.CustomerPK] = true
				if _, err := Refresh(ctx, db, now(), r.CustomerPK); err != nil {
					return after, err
				}
			}
			after = r.ID
		}
	}
}

// RefreshCustomers re-evaluates, in db (the transaction of the event that
// touched them), the customers with one of the addresses emails (already
// normalised) or one of the store ids ids of source.
func RefreshCustomers(ctx context.Context, db bun.IDB, now time.Time, source string, emails, ids []string) error {
	if len(emails) == 0 && len(ids) == 0 {
		return nil
	}
	q := db.NewSelect().Model((*customer.Customer)(nil)).Column("id")
	q = q.WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
		if len(emails) > 0 {
			q = q.WhereOr("email_normalized IN (?)", bun.List(emails))
		}
		if len(ids) > 0 {
			q = q.WhereOr("external_source = ? AND external_id IN (?)", source, bun.List(ids))
		}
		return q
	})
	var pks []int64
	if err := q.Scan(ctx, &pks); err != nil {
		return fmt.Errorf("find the customers of the event: %w", err)
	}
	for _, pk := range pks {
		if _, err := Refresh(ctx, db, now, pk); err != nil {
			return err
		}
	}
	return nil
}
