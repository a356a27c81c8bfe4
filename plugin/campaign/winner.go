package campaign

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
)

// VariantStats are one variant's sends and reactions so far.
type VariantStats struct {
	Variant             string `bun:"variant"`
	Sent, Opens, Clicks int
}

// Stats counts, per variant of an A/B campaign, its sent messages and
// the unique messages opened (machine opens left out) and clicked.
func Stats(ctx context.Context, db bun.IDB, campaignID string) ([]VariantStats, error) {
	var out []VariantStats
	err := db.NewRaw(`SELECT m.variant AS variant, count(*) AS sent,
			sum(CASE WHEN EXISTS (SELECT 1 FROM message_events e WHERE e.message_id = m.id AND e.kind = 'opened' AND NOT e.machine_open) THEN 1 ELSE 0 END) AS opens,
			sum(CASE WHEN EXISTS (SELECT 1 FROM message_events e WHERE e.message_id = m.id AND e.kind = 'clicked') THEN 1 ELSE 0 END) AS clicks
		FROM messages AS m WHERE m.campaign = ? AND m.variant IS NOT NULL AND m.state = 'sent'
		GROUP BY m.variant ORDER BY m.variant`, campaignID).Scan(ctx, &out)
	if err != nil {
		return nil, fmt.Errorf("A/B statistics of campaign %s: %w", campaignID, err)
	}
	return out, nil
}

// RatePicker picks the variant with the higher open (or click) rate over
// sent messages; ties go to the first variant. It stands in until the
// metrics work gives a WinnerPicker with statistics.
type RatePicker struct{}

// Pick returns the winning variant's name.
func (RatePicker) Pick(ctx context.Context, db bun.IDB, c *Campaign) (string, error) {
	stats, err := Stats(ctx, db, c.ID)
	if err != nil {
		return "", err
	}
	by := map[string]VariantStats{}
	for _, s := range stats {
		by[s.Variant] = s
	}
	best, bestRate := c.ABTest.Variants[0].Name, -1.0
	for _, v := range c.ABTest.Variants {
		s := by[v.Name]
		hits := s.Opens
		if c.ABTest.WinnerMetric == MetricClickRate {
			hits = s.Clicks
		}
		rate := 0.0
		if s.Sent > 0 {
			rate = float64(hits) / float64(s.Sent)
		}
		if rate > bestRate {
			best, bestRate = v.Name, rate
		}
	}
	return best, nil
}
