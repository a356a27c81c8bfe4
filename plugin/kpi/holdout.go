package kpi

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/stats"
)

// HoldoutGroup is what happened to one side of a scenario's holdout split.
type HoldoutGroup struct {
	// Customers counts enrollments; Goals those that reached the goal.
	Customers, Goals int64
	// Revenue is, per currency, the revenue of each enrolled customer's
	// orders placed between entry and the end of the period, summarised
	// over every customer of the group (those who bought nothing count as
	// zero), in minor units.
	Revenue map[string]stats.Sample
}

// Holdout is a scenario's treated group and its holdout.
type Holdout struct {
	Treated, Holdout HoldoutGroup
}

// Holdouts reads the holdout comparison of every scenario for the
// enrollments that entered in [from, to), in two statements whatever the
// number of scenarios. It reads enrollments and orders (not rolled up):
// its cost grows with the enrollments of the period, not with events.
func Holdouts(ctx context.Context, db bun.IDB, from, to time.Time) (map[string]*Holdout, error) {
	var counts []struct {
		Scenario string `bun:"scenario_id"`
		Holdout  bool   `bun:"holdout"`
		N        int64  `bun:"n"`
		Goals    int64  `bun:"goals"`
	}
	if err := db.NewRaw(`SELECT scenario_id, holdout, COUNT(*) AS n, COUNT(goal_at) AS goals FROM enrollments
WHERE entered_at >= ? AND entered_at < ? GROUP BY scenario_id, holdout`, from.UTC(), to.UTC()).Scan(ctx, &counts); err != nil {
		return nil, fmt.Errorf("count enrollments by holdout: %w", err)
	}
	var spend []struct {
		Scenario string `bun:"scenario_id"`
		Holdout  bool   `bun:"holdout"`
		Currency string `bun:"currency"`
		Amount   int64  `bun:"amount"`
	}
	if err := db.NewRaw(`SELECT e.scenario_id, e.holdout, COALESCE(o.currency, '') AS currency, SUM(o.total_minor) AS amount
FROM enrollments e JOIN orders o ON o.customer_id = e.customer_id AND o.placed_at >= e.entered_at AND o.placed_at < ?
WHERE e.entered_at >= ? AND e.entered_at < ? AND o.cancelled_at IS NULL
GROUP BY e.id, e.scenario_id, e.holdout, o.currency`, to.UTC(), from.UTC(), to.UTC()).Scan(ctx, &spend); err != nil {
		return nil, fmt.Errorf("sum revenue of enrolled customers: %w", err)
	}
	out := map[string]*Holdout{}
	group := func(sc string, holdout bool) *HoldoutGroup {
		h := out[sc]
		if h == nil {
			h = &Holdout{}
			out[sc] = h
		}
		if holdout {
			return &h.Holdout
		}
		return &h.Treated
	}
	for _, c := range counts {
		g := group(c.Scenario, c.Holdout)
		g.Customers += c.N
		g.Goals += c.Goals
	}
	for _, s := range spend {
		g := group(s.Scenario, s.Holdout)
		if g.Revenue == nil {
			g.Revenue = map[string]stats.Sample{}
		}
		x := g.Revenue[s.Currency]
		x.Sum += float64(s.Amount)
		x.SumSq += float64(s.Amount) * float64(s.Amount)
		g.Revenue[s.Currency] = x
	}
	for _, h := range out {
		for _, g := range []*HoldoutGroup{&h.Treated, &h.Holdout} {
			for cur, x := range g.Revenue {
				x.N = g.Customers
				g.Revenue[cur] = x
			}
		}
	}
	return out, nil
}
