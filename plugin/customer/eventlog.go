package customer

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// eventLogLock is the PostgreSQL advisory lock that orders writers of the
// customer event log against readers that follow it by id.
//
// Event ids come from a sequence: a transaction takes its id when it inserts
// and other transactions see the row only when it commits, so ids become
// visible out of order. A follower that reads "id > position" and moves its
// position to the highest id it saw would skip, forever, an event whose
// transaction had taken a lower id but committed a moment later (seen in the
// end-to-end suite: three of thirty abandoned carts never started their
// scenario once webhook batches were written concurrently). Writers hold the
// lock shared until they commit; Horizon takes it exclusively for an instant,
// so no writer is half-way, and every id at or below the maximum it then
// reads is final. SQLite has one writer at a time and needs none of this.
const eventLogLock int64 = 0x52_46_4e_45_56_4c // "RFNEVL"

// lockEventLogShared joins the writers of the event log for the rest of the
// transaction db belongs to (PostgreSQL only).
func lockEventLogShared(ctx context.Context, db bun.IDB) error {
	if db.Dialect().Name() != dialect.PG {
		return nil
	}
	if _, err := db.ExecContext(ctx, "SELECT pg_advisory_xact_lock_shared(?)", eventLogLock); err != nil {
		return fmt.Errorf("append customer event: lock the event log: %w", err)
	}
	return nil
}

// Horizon returns the highest event id below which the log is final: every
// event with an id at or below it is committed (or was rolled back and will
// never appear). Followers read up to it and no further.
func Horizon(ctx context.Context, db *bun.DB) (int64, error) {
	var max int64
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if tx.Dialect().Name() == dialect.PG {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", eventLogLock); err != nil {
				return err
			}
		}
		return tx.NewSelect().Model((*Event)(nil)).ColumnExpr("COALESCE(MAX(id), 0)").Scan(ctx, &max)
	})
	if err != nil {
		return 0, fmt.Errorf("customer event log horizon: %w", err)
	}
	return max, nil
}
