package inbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// Backlog returns how many deliveries wait to be processed (pending or
// being processed) and when the oldest of them was received (zero when
// none wait). /metrics reads it.
func Backlog(ctx context.Context, db bun.IDB) (int, time.Time, error) {
	q := db.NewSelect().Model((*Event)(nil)).Where("status IN (?)", bun.In([]Status{StatusPending, StatusProcessing}))
	n, err := q.Count(ctx)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("count the inbox backlog: %w", err)
	}
	if n == 0 {
		return 0, time.Time{}, nil
	}
	var oldest time.Time
	err = db.NewSelect().Model((*Event)(nil)).Column("received_at").
		Where("status IN (?)", bun.In([]Status{StatusPending, StatusProcessing})).
		Order("received_at").Limit(1).Scan(ctx, &oldest)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, fmt.Errorf("read the oldest inbox delivery: %w", err)
	}
	return int(n), oldest, nil
}
