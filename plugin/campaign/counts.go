package campaign

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
)

// CountsOfMany counts the recipients of several campaigns by state in two
// statements, whatever the number of campaigns: it is CountsOf for a list
// (the GraphQL dataloaders call it once per request). A campaign that does
// not exist gets zero counts.
func CountsOfMany(ctx context.Context, db bun.IDB, ids []string) (map[string]Counts, error) {
	out := make(map[string]Counts, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []struct {
		CampaignID string `bun:"campaign_id"`
		State      string `bun:"state"`
		N          int    `bun:"n"`
	}
	if err := db.NewSelect().Model((*Recipient)(nil)).ColumnExpr("campaign_id, state, count(*) AS n").
		Where("campaign_id IN (?)", bun.List(ids)).Group("campaign_id", "state").Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("count recipients of %d campaigns: %w", len(ids), err)
	}
	// Written recipients have left the table and are counted on the campaign.
	var written []struct {
		ID           string `bun:"id"`
		WrittenCount int    `bun:"written_count"`
	}
	if err := db.NewSelect().Model((*Campaign)(nil)).Column("id", "written_count").Where("id IN (?)", bun.List(ids)).
		Scan(ctx, &written); err != nil {
		return nil, fmt.Errorf("count recipients of %d campaigns: %w", len(ids), err)
	}
	for _, w := range written {
		c := out[w.ID]
		c.Written += w.WrittenCount
		out[w.ID] = c
	}
	for _, r := range rows {
		c := out[r.CampaignID]
		switch r.State {
		case RecipientPending:
			c.Pending = r.N
		case RecipientHeld:
			c.Held = r.N
		case RecipientWritten:
			c.Written += r.N
		case RecipientSkipped:
			c.Skipped = r.N
		}
		out[r.CampaignID] = c
	}
	return out, nil
}
