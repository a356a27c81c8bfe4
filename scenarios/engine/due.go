package engine

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// OldestDue returns the next_run_at of the active enrollment that has been
// due the longest at now, and false when none is due. How far it lies
// behind now is the lag of the scenario workers; /metrics reads it.
func OldestDue(ctx context.Context, db bun.IDB, now time.Time) (time.Time, bool, error) {
	var t time.Time
	err := db.NewSelect().Model((*Enrollment)(nil)).Column("next_run_at").
		Where("state = ? AND next_run_at IS NOT NULL AND next_run_at <= ?", StateActive, now).
		Order("next_run_at").Limit(1).Scan(ctx, &t)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read the oldest due enrollment: %w", err)
	}
	return t, true, nil
}
