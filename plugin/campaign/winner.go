package campaign

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/kpi"
	"github.com/refrain-dev/refrain/plugin/stats"
)

// VariantStats are one variant's sends and reactions so far.
type VariantStats struct {
	Variant             string `bun:"variant"`
	Sent, Opens, Clicks int
}

// statsFrom and statsTo bound the whole life of a campaign: whole UTC
// days, so Stats reads the daily rollups.
var (
	statsFrom = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	statsTo   = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Stats counts, per variant of an A/B campaign, its sent messages and the
// unique messages opened by a person (a click counts as the open when the
// pixel was blocked) and clicked. It reads the KPI rollups as
// kpis(filter: { campaign }) and Campaign.stats do, so the winner is
// decided on the numbers they show, without reading raw events.
func Stats(ctx context.Context, db bun.IDB, campaignID string) ([]VariantStats, error) {
	series, err := kpi.Compute(ctx, db, kpi.Query{Filter: kpi.Filter{Campaign: &campaignID}, GroupBy: []kpi.Dim{kpi.DimVariant},
		From: statsFrom, To: statsTo})
	if err != nil {
		return nil, fmt.Errorf("A/B statistics of campaign %s: %w", campaignID, err)
	}
	var out []VariantStats
	for _, s := range series {
		if s.Key == "" {
			continue
		}
		c := s.Total.Counters
		out = append(out, VariantStats{Variant: s.Key, Sent: int(c.Sent), Opens: int(c.UniqueOpens), Clicks: int(c.UniqueClicks)})
	}
	return out, nil
}

// RatePicker picks the variant with the higher open (or click) rate over
// sent messages; ties go to the first variant, however few the sends.
// The service uses BayesPicker; RatePicker is the default of a bare
// campaign.Service (tests, embedding without the metrics settings).
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

// BayesPicker decides an A/B campaign with the statistics of the metrics
// package: each variant's open (or click) rate against the first variant,
// the control, as a Beta-Binomial probability to beat it. A variant wins
// only when it beats control under Rule (enough recipients in both, and
// the probability threshold reached); among several, the most probable
// wins. Otherwise the test is not conclusive and the rest of the audience
// gets the control: an unproven variant is never rolled out.
type BayesPicker struct {
	Rule stats.Rule
}

// Pick returns the winning variant's name, the control when nothing beats it.
func (p BayesPicker) Pick(ctx context.Context, db bun.IDB, c *Campaign) (string, error) {
	if c.ABTest == nil || len(c.ABTest.Variants) == 0 {
		return "", fmt.Errorf("campaign %s has no A/B test", c.ID)
	}
	counts, err := Stats(ctx, db, c.ID)
	if err != nil {
		return "", err
	}
	by := map[string]VariantStats{}
	for _, s := range counts {
		by[s.Variant] = s
	}
	arms := make([]stats.Arm, len(c.ABTest.Variants))
	for i, v := range c.ABTest.Variants {
		s := by[v.Name]
		hits := s.Opens
		if c.ABTest.WinnerMetric == MetricClickRate {
			hits = s.Clicks
		}
		arms[i] = stats.Arm{Name: v.Name, Trials: int64(s.Sent), Successes: int64(hits)}
	}
	control := arms[0].Name
	results, err := stats.Compare(arms, control, p.Rule)
	if err != nil {
		return "", fmt.Errorf("decide A/B test of campaign %s: %w", c.ID, err)
	}
	best, bestP := control, 0.0
	for _, r := range results {
		if r.Decision == stats.BeatsControl && r.ProbBeatsControl > bestP {
			best, bestP = r.Name, r.ProbBeatsControl
		}
	}
	return best, nil
}
