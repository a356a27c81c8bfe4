package main

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/campaign"
	"github.com/refrain-dev/refrain/plugin/commerce"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/mail"
	"github.com/refrain-dev/refrain/plugin/ptr"
	"github.com/refrain-dev/refrain/scenarios/engine"
)

// demoABCampaign is the id of the demo's sent campaign with an A/B test.
const demoABCampaign = "demo-spring-sale"

// demoEnrollment is one generated entry into the win-back program.
type demoEnrollment struct {
	customer int
	entered  time.Time
	holdout  bool
	goal     *time.Time
}

// results adds to the generated history what the dashboard judges: a
// campaign sent twelve days ago whose A/B test variant B won on open rate
// (a tenth of the audience got A, a tenth B, the rest B once it won), and
// the win-back program's entries over the last three months, a tenth held
// out, where the customers who got the mail ordered again more often than
// those held out. It runs after generate and before write.
func (g *demoGen) results() {
	sentAt := g.now.AddDate(0, 0, -12).Truncate(time.Hour)
	msgN := 9000000
	audience := 0
	for i, c := range g.customers {
		if c.ConsentState != customer.ConsentSubscribed || !c.CreatedAt.Before(sentAt) {
			continue
		}
		audience++
		id := demoABCampaign
		var variant *string
		at := sentAt
		switch r := g.rng.IntN(10); {
		case r == 0:
			variant = ptr.To("A")
		case r == 1:
			variant = ptr.To("B")
		default:
			at = sentAt.Add(4 * time.Hour) // the rest, once B won
		}
		msgN++
		m := g.message(c, msgN, id, "", "newsletter", "Spring sale: 20% off everything", at, &id)
		m.msg.Variant = variant
		if variant != nil && *variant == "A" && g.rng.IntN(5) < 2 {
			// A's subject line opens less: two in five of its opens never happen.
			kept := m.events[:0]
			for _, ev := range m.events {
				if ev.Kind != mail.EventOpened && ev.Kind != mail.EventClicked {
					kept = append(kept, ev)
				}
			}
			m.events = kept
		}
		g.messages[i] = append(g.messages[i], m)
	}
	g.campaign = &campaign.Campaign{ID: demoABCampaign, Name: "Demo: spring sale", Objective: "maintain", Program: demoABCampaign,
		Audience: `consent == "subscribed"`, Template: "newsletter", Values: map[string]string{}, Priority: 50,
		ScheduledAt: ptr.To(sentAt), ABTest: &campaign.ABTest{Variants: []campaign.Variant{{Name: "A", Template: "newsletter"},
			{Name: "B", Template: "newsletter"}}, TestShare: 0.2, WinnerMetric: campaign.MetricOpenRate, DecideAfter: 4 * time.Hour},
		Status: campaign.StatusSent, AudienceFixed: true, AudienceCount: audience, WrittenCount: audience, Winner: ptr.To("B"),
		StartedAt: ptr.To(sentAt), FinishedAt: ptr.To(sentAt.Add(5 * time.Hour)), CreatedAt: sentAt.AddDate(0, 0, -2), UpdatedAt: sentAt.Add(5 * time.Hour)}

	// Win-back: customers who ordered before, not in the last month, and
	// are subscribed enter it over the last four weeks, so the 30- and
	// 90-day periods of the dashboard show them; the treated order again one time in
	// three, the held out one time in twelve.
	eur := "EUR"
	for i, c := range g.customers {
		if c.ConsentState != customer.ConsentSubscribed || c.LastOrderAt == nil || c.LastOrderAt.After(g.now.AddDate(0, 0, -32)) {
			continue
		}
		entered := g.between(g.now.AddDate(0, 0, -28), g.now.AddDate(0, 0, -3))
		e := demoEnrollment{customer: i, entered: entered, holdout: g.rng.IntN(10) == 0}
		chance := 33
		if e.holdout {
			chance = 8
		} else {
			msgN++
			g.messages[i] = append(g.messages[i], g.message(c, msgN, "reactivate", "win-back", "win-back", "We miss you, "+*c.FirstName, entered.Add(time.Minute), nil))
		}
		if g.rng.IntN(100) < chance {
			placed := g.between(entered.Add(time.Hour), g.now.Add(-time.Hour))
			items, total := g.items()
			o := &commerce.Order{Source: "shopify", ExternalID: fmt.Sprintf("gid://shopify/Order/%d", 9000000+i),
				Number: ptr.To(fmt.Sprintf("#W%d", 1001+i)), Status: "fulfilled", TotalMinor: total, Currency: &eur,
				Items: items, ContactEmail: c.Email, PlacedAt: placed, PaidAt: ptr.To(placed.Add(time.Minute)),
				Counted: true, CreatedAt: placed, UpdatedAt: placed}
			g.orders[i] = append(g.orders[i], o)
			c.OrdersCount++
			c.TotalSpentMinor += total
			c.LastOrderAt = ptr.To(placed)
			c.Stage = string(customer.StageOf(c, g.now, g.th, false))
			c.StageSince = ptr.To(placed)
			e.goal = ptr.To(placed)
		}
		g.enrollments = append(g.enrollments, e)
	}
}

// writeResults inserts the campaign and the enrollments of results, once
// the customers have their row ids.
func (g *demoGen) writeResults(ctx context.Context, tx bun.Tx) error {
	if g.campaign != nil {
		if _, err := tx.NewInsert().Model(g.campaign).Exec(ctx); err != nil {
			return fmt.Errorf("demo: insert the A/B campaign: %w", err)
		}
	}
	var rows []*engine.Enrollment
	for _, e := range g.enrollments {
		c := g.customers[e.customer]
		en := &engine.Enrollment{ScenarioID: "win-back", Version: 1, CustomerPK: c.PK, EntryKey: fmt.Sprintf("demo-%d", c.PK),
			State: engine.StateCompleted, Step: "miss-you", StepStartedAt: e.entered, Holdout: e.holdout, Context: map[string]any{},
			EnteredAt: e.entered, FinishedAt: ptr.To(e.entered.Add(time.Minute)), GoalAt: e.goal, UpdatedAt: e.entered}
		if e.holdout {
			en.State, en.Step, en.FinishedAt = engine.StateHoldout, "", nil
		}
		rows = append(rows, en)
	}
	if err := insertBatches(ctx, tx, rows); err != nil {
		return fmt.Errorf("demo: insert win-back enrollments: %w", err)
	}
	return nil
}
