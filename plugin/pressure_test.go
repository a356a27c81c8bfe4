package plugin_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
	"github.com/refrain-dev/refrain/plugin/pressure"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

// decisions lists a customer's pressure decisions, oldest first, as
// "program decision at: reason".
func (s *scenarioEnv) decisions(c *customer.Customer) []string {
	s.t.Helper()
	page, err := pressure.Decisions(context.Background(), s.db.DB, c.PK, 500, "")
	require.NoError(s.t, err)
	var out []string
	for i := len(page.Records) - 1; i >= 0; i-- {
		r := page.Records[i]
		out = append(out, fmt.Sprintf("%s %s %s: %s", r.Program, r.Decision, r.At.UTC().Format("01-02 15:04"), r.Reason))
	}
	return out
}

func TestPressureQuietHoursMoveAScenarioSend(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		s := newScenarioEnv(t, db, only("welcome"))
		d0 := s.clock.Now() // 09:00 UTC: 05:00 in New York, 11:00 in Paris
		ny, paris := "America/New_York", "Europe/Paris"
		early := s.customer("early@example.com", customer.ConsentSubscribed, d0)
		_, _, err := customer.Upsert(s.ctx, db.DB, d0, customer.Profile{Email: early.Email, TimeZone: &ny})
		require.NoError(t, err)
		awake := s.customer("awake@example.com", customer.ConsentSubscribed, d0)
		_, _, err = customer.Upsert(s.ctx, db.DB, d0, customer.Profile{Email: awake.Email, TimeZone: &paris})
		require.NoError(t, err)
		s.event(early, "newsletter.subscribed", nil)
		s.event(awake, "newsletter.subscribed", nil)
		s.until(d0.Add(day))
		// 08:00 in New York is 12:00 UTC.
		require.Equal(t, []string{
			"awake@example.com welcome D+0 09:00",
			"early@example.com welcome D+0 12:00",
		}, s.sent(d0))
		require.Equal(t, []string{
			"welcome defer 06-01 09:00: quiet hours 21:00-08:00 in America/New_York",
			"welcome send 06-01 12:00: within the policy",
		}, s.decisions(early))
		require.Equal(t, []string{"welcome send 06-01 09:00: within the policy"}, s.decisions(awake))
	})
}

const createCampaignMutation = `mutation($in: CampaignInput!) { refrain { createCampaign(input: $in) {
	campaign { id status segment priority audienceCount pressure { cap windowDays minGap quietHours onCapped maxDelay } }
	userErrors { field message code } } } }`

const scheduleCampaignMutation = `mutation($id: ID!, $at: DateTime) { refrain { scheduleCampaign(id: $id, at: $at) {
	campaign { id status scheduledAt } warnings userErrors { field message code } } } }`

// gqlCampaign creates and schedules a campaign through GraphQL and returns its id.
func (s *scenarioEnv) gqlCampaign(in map[string]any, at time.Time) string {
	s.t.Helper()
	var created struct {
		Refrain struct {
			CreateCampaign struct {
				Campaign   struct{ ID, Status string }
				UserErrors []any
			}
		}
	}
	s.do(testBootstrapKey, createCampaignMutation, map[string]any{"in": in}).decode(s.t, &created)
	require.Empty(s.t, created.Refrain.CreateCampaign.UserErrors)
	require.Equal(s.t, "DRAFT", created.Refrain.CreateCampaign.Campaign.Status)
	id := created.Refrain.CreateCampaign.Campaign.ID
	var sched struct {
		Refrain struct {
			ScheduleCampaign struct {
				Campaign   struct{ Status string }
				UserErrors []any
			}
		}
	}
	s.do(testBootstrapKey, scheduleCampaignMutation, map[string]any{"id": id, "at": at.Format(time.RFC3339)}).decode(s.t, &sched)
	require.Empty(s.t, sched.Refrain.ScheduleCampaign.UserErrors)
	require.Equal(s.t, "SCHEDULED", sched.Refrain.ScheduleCampaign.Campaign.Status)
	return id
}

// runUntil drives the scenario engine and the campaign sender to t,
// stopping at every time in stops (campaign send times).
func (s *scenarioEnv) runUntil(t time.Time, stops ...time.Time) {
	s.t.Helper()
	for _, stop := range stops {
		if stop.After(s.clock.Now()) && !stop.After(t) {
			s.until(stop)
			require.NoError(s.t, s.p.Campaigns().Drain(s.ctx))
		}
	}
	s.until(t)
	require.NoError(s.t, s.p.Campaigns().Drain(s.ctx))
}

func TestPressureReservationMovesWelcome(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		s := newScenarioEnv(t, db, only("welcome"))
		d0 := s.clock.Now()
		flash := d0.Add(6 * time.Hour) // 15:00 UTC
		s.gqlCampaign(map[string]any{"name": "Flash sale", "template": "welcome", "priority": 90,
			"values": map[string]any{"discount_code": "FLASH"}}, flash)
		c := s.customer("new@example.com", customer.ConsentSubscribed, d0)
		s.event(c, "newsletter.subscribed", nil)
		s.runUntil(d0.Add(2*day), flash)
		// The welcome (priority 70) would sit 6 h before the flash sale
		// (priority 90), closer than the 16 h gap: it moves to 16 h after
		// it, 07:00, then out of the quiet hours to 08:00.
		require.Equal(t, []string{
			"new@example.com welcome D+0 15:00",
			"new@example.com welcome D+1 08:00",
		}, s.sent(d0))
		var m outbox.Message
		require.NoError(t, db.NewSelect().Model(&m).Where("recipient = ?", "new@example.com").Order("id").Limit(1).Scan(s.ctx))
		require.NotNil(t, m.Campaign, "the first is the campaign's")

		// Customer.pressure through GraphQL tells why.
		q := `query($id: ID) { refrain { customer(id: $id) { pressure { sentInWindow transactionalInWindow cap windowDays nextAllowedAt
			decisions(first: 10) { nodes { at program campaign message decision reason until } pageInfo { hasNextPage } } } } } }`
		var out struct {
			Refrain struct {
				Customer struct {
					Pressure struct {
						SentInWindow, TransactionalInWindow, Cap, WindowDays int
						NextAllowedAt                                        time.Time
						Decisions                                            struct {
							Nodes []struct {
								At                                 time.Time
								Program, Message, Decision, Reason string
								Campaign                           *string
								Until                              *time.Time
							}
						}
					}
				}
			}
		}
		s.do(testBootstrapKey, q, map[string]any{"id": c.PublicID}).decode(t, &out)
		p := out.Refrain.Customer.Pressure
		require.Equal(t, 2, p.SentInWindow)
		require.Equal(t, 3, p.Cap)
		require.Equal(t, 7, p.WindowDays)
		require.Equal(t, d0.Add(2*day), p.NextAllowedAt.UTC(), "now: the gap since D+1 08:00 has passed")
		var got []string
		for _, n := range p.Decisions.Nodes {
			got = append(got, fmt.Sprintf("%s %s %s %s", n.At.UTC().Format("01-02 15:04"), n.Program, n.Decision, n.Reason))
		}
		require.Equal(t, []string{
			"06-02 08:00 welcome SEND within the policy",
			"06-01 15:00 " + *m.Campaign + " SEND within the policy",
			"06-01 09:00 welcome DEFER slot reserved for campaign " + *m.Campaign + " (priority 90) at 2026-06-01T15:00:00Z; then quiet hours 21:00-08:00",
		}, got)
		require.Equal(t, "campaign:"+*m.Campaign+":"+fmt.Sprint(c.PK), p.Decisions.Nodes[1].Message)
	})
}

const promoScenario = `id: promo
title: Promotion
objective: maintain
priority: 30
trigger:
  event: promo.requested
reentry: never
steps:
  - id: promo
    send: welcome
`

// TestPressureProgramsCompete runs three programs and a campaign for one
// customer under the default policy (3 in 7 days, 16 h gap, quiet hours
// 21:00-08:00, defer up to 48 h), with the promotion set to skip.
func TestPressureProgramsCompete(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		s := newScenarioEnv(t, db, func(c *plugin.Config) {
			only("welcome", "cart-abandonment")(c)
			c.PressurePrograms = "promo:on_capped=skip"
		})
		_, _, err := s.eng.Upsert(s.ctx, db.DB, "promo.yaml", []byte(promoScenario), "api", "")
		require.NoError(t, err)
		d0 := s.clock.Now()
		sale := d0.Add(day + 3*time.Hour) // D+1 12:00
		id := s.gqlCampaign(map[string]any{"name": "Summer sale", "template": "welcome", "priority": 90}, sale)
		c := s.customer("busy@example.com", customer.ConsentSubscribed, d0)
		s.event(c, "newsletter.subscribed", nil)
		s.clock.Set(d0.Add(time.Hour))
		s.event(c, "cart.abandoned", map[string]any{"cart_token": "tok1", "source": "shopify"})
		s.clock.Set(d0.Add(2 * time.Hour))
		s.event(c, "promo.requested", nil)
		s.runUntil(d0.Add(10*day), sale)
		require.Equal(t, []string{
			"busy@example.com cart-reminder-1h D+2 08:00",
			"busy@example.com welcome D+0 09:00",
			"busy@example.com welcome D+1 12:00",
			// The welcome D+3 mail was skipped; the D+9 reminder finds room
			// once the D+0 welcome has left the window.
			"busy@example.com welcome-survey-reminder D+9 09:00",
		}, s.sent(d0))
		require.Equal(t, []string{
			"welcome send 06-01 09:00: within the policy",
			"cart-abandonment defer 06-01 10:00: min gap 16h since the last message at 2026-06-01T09:00:00Z; then quiet hours 21:00-08:00",
			"promo skip 06-01 11:00: min gap 16h since the last message at 2026-06-01T09:00:00Z",
			"cart-abandonment defer 06-02 08:00: slot reserved for campaign " + id + " (priority 90) at 2026-06-02T12:00:00Z; then quiet hours 21:00-08:00",
			id + " send 06-02 12:00: within the policy",
			"cart-abandonment send 06-03 08:00: within the policy",
			"cart-abandonment skip 06-04 07:00: deferred past the max delay of 48h: cap 3 in 7d reached (3 sent)",
			"welcome skip 06-04 09:00: deferred past the max delay of 48h: cap 3 in 7d reached (3 sent)",
			"cart-abandonment skip 06-06 07:00: deferred past the max delay of 48h: cap 3 in 7d reached (3 sent)",
			"welcome send 06-10 09:00: within the policy",
		}, s.decisions(c))
	})
}
