package outbox

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
)

// States lists every message state.
func States() []State {
	return []State{StateQueued, StateSending, StateSent, StateFailed, StateSuppressed}
}

// CountByState counts the messages in each state. /metrics reads it.
func CountByState(ctx context.Context, db bun.IDB) (map[State]int, error) {
	var rows []struct {
		State State `bun:"state"`
		N     int   `bun:"n"`
	}
	if err := db.NewSelect().Model((*Message)(nil)).ColumnExpr("state, count(*) AS n").Group("state").Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("count messages by state: %w", err)
	}
	out := make(map[State]int, len(rows))
	for _, r := range rows {
		out[r.State] = r.N
	}
	return out, nil
}
