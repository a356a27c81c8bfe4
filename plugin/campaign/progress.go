package campaign

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
)

// Statuses lists every campaign status.
func Statuses() []Status {
	return []Status{StatusDraft, StatusScheduled, StatusSending, StatusSent, StatusPaused, StatusCancelled}
}

// Progress counts the campaigns in each status, and the recipients of the
// campaigns being sent by state: how far the sends have gone. /metrics
// reads it.
func Progress(ctx context.Context, db bun.IDB) (map[Status]int, Counts, error) {
	var rows []struct {
		Status Status `bun:"status"`
		N      int    `bun:"n"`
	}
	if err := db.NewSelect().Model((*Campaign)(nil)).ColumnExpr("status, count(*) AS n").Group("status").Scan(ctx, &rows); err != nil {
		return nil, Counts{}, fmt.Errorf("count campaigns by status: %w", err)
	}
	byStatus := make(map[Status]int, len(rows))
	for _, r := range rows {
		byStatus[r.Status] = r.N
	}
	var sending []string
	if err := db.NewSelect().Model((*Campaign)(nil)).Column("id").Where("status = ?", StatusSending).Scan(ctx, &sending); err != nil {
		return nil, Counts{}, fmt.Errorf("list the campaigns being sent: %w", err)
	}
	counts, err := CountsOfMany(ctx, db, sending)
	if err != nil {
		return nil, Counts{}, err
	}
	var total Counts
	for _, c := range counts {
		total.Pending += c.Pending
		total.Held += c.Held
		total.Written += c.Written
		total.Skipped += c.Skipped
	}
	return byStatus, total, nil
}
