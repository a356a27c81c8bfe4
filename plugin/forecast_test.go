package plugin_test

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/campaign"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/pressure"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

// TestForecastMatchesTheEngine projects twelve days of a fixed set
// (welcome and cart-abandonment running, customers in three time zones,
// two campaigns), then runs the scenario engine and the campaign sender
// over the same days on the virtual clock and compares, day by day and
// program by program, the projected sends, deferrals and skips with what
// happened.
// forecastCustomers makes n subscribed customers (emails PREFIXi@example.com)
// in turn without a time zone, in New York and in Tokyo, every other one
// tagged vip.
func forecastCustomers(t *testing.T, s *scenarioEnv, db *storetest.DB, prefix string, n int) []*customer.Customer {
	t.Helper()
	d0 := s.clock.Now()
	zones := []string{"", "America/New_York", "Asia/Tokyo"}
	var cs []*customer.Customer
	for i := range n {
		email := fmt.Sprintf("%s%d@example.com", prefix, i)
		c := s.customer(email, customer.ConsentSubscribed, d0)
		p := customer.Profile{Email: &email}
		if z := zones[i%3]; z != "" {
			p.TimeZone = &z
		}
		if i%2 == 0 {
			p.Tags = []string{"vip"}
		}
		_, _, err := customer.Upsert(s.ctx, db.DB, d0, p)
		require.NoError(t, err)
		cs = append(cs, c)
	}
	return cs
}

func TestForecastMatchesTheEngine(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		s := newScenarioEnv(t, db, only("welcome", "cart-abandonment"))
		d0 := s.clock.Now()
		cs := forecastCustomers(t, s, db, "f", 12)
		for _, c := range cs {
			s.event(c, "newsletter.subscribed", nil)
		}
		s.runUntil(d0.Add(time.Hour))
		for i, c := range cs[:6] {
			s.event(c, "cart.abandoned", map[string]any{"cart_token": fmt.Sprintf("tok%d", i), "source": "shopify"})
		}
		vip := s.gqlCampaign(map[string]any{"name": "VIP preview", "template": "welcome", "priority": 90, "segment": "tag:vip"},
			d0.Add(day+3*time.Hour))
		all := s.gqlCampaign(map[string]any{"name": "Mid-season", "template": "welcome", "priority": 40,
			"sendInRecipientTimeZone": true}, d0.Add(4*day+2*time.Hour))
		s.runUntil(d0.Add(2 * time.Hour))

		from, to := s.clock.Now(), d0.Add(12*day)
		fc, err := s.p.Forecaster().Forecast(s.ctx, from, to, "")
		require.NoError(t, err)
		// Customers are simulated once per cohort of identical ones: the
		// same as one by one.
		one := *s.p.Forecaster()
		one.PerCustomer = true
		each, err := one.Forecast(s.ctx, from, to, "")
		require.NoError(t, err)
		require.Equal(t, each, fc)
		// The same through GraphQL.
		var gql struct {
			Refrain struct {
				PressureForecast struct {
					Days []struct {
						Date                              time.Time
						Sends, OverCap, Campaigns, Yearly int
						Programs                          []struct {
							Program                           string
							Planned, Sends, Deferred, Skipped int
						}
					}
				}
			}
		}
		s.do(testBootstrapKey, `query($from: DateTime!, $to: DateTime!) { refrain { pressureForecast(from: $from, to: $to) {
			days { date sends overCap campaigns yearly programs { program planned sends deferred skipped } } } } }`,
			map[string]any{"from": from.Format(time.RFC3339), "to": to.Format(time.RFC3339)}).decode(t, &gql)
		require.Len(t, gql.Refrain.PressureForecast.Days, len(fc.Days))
		for i, d := range gql.Refrain.PressureForecast.Days {
			require.Equal(t, fc.Days[i].Sends, d.Sends)
			require.Equal(t, fc.Days[i].OverCap, d.OverCap)
			require.Len(t, d.Programs, len(fc.Days[i].Programs))
		}
		res := s.do(testBootstrapKey, `{ refrain { pressureForecast(from: "2026-06-10T00:00:00Z", to: "2026-06-01T00:00:00Z") { days { date } } } }`, nil)
		require.Equal(t, "to 2026-06-01T00:00:00Z: want after from 2026-06-10T00:00:00Z", res.Errors[0].Message)

		// The real run, an hour at a time (deferred campaign recipients are
		// due on whole hours).
		for at := from.Truncate(time.Hour).Add(time.Hour); !at.After(to); at = at.Add(time.Hour) {
			s.runUntil(at)
		}
		type key struct {
			day     string
			program string
		}
		actual := map[key][3]int{}
		var ms []struct {
			Program   string    `bun:"program"`
			CreatedAt time.Time `bun:"created_at"`
		}
		require.NoError(t, db.NewSelect().Table("messages").Column("program", "created_at").Where("kind = 'marketing'").
			Where("created_at >= ? AND created_at < ?", from, to).Scan(s.ctx, &ms))
		for _, m := range ms {
			k := key{m.CreatedAt.UTC().Format("01-02"), m.Program}
			v := actual[k]
			v[0]++
			actual[k] = v
		}
		var ds []*pressure.Record
		require.NoError(t, db.NewSelect().Model(&ds).Where("at >= ? AND at < ?", from, to).Scan(s.ctx))
		for _, d := range ds {
			k := key{d.At.UTC().Format("01-02"), d.Program}
			v := actual[k]
			switch d.Decision {
			case pressure.Deferred:
				v[1]++
			case pressure.Skipped:
				v[2]++
			}
			actual[k] = v
		}
		projected := map[key][3]int{}
		for _, d := range fc.Days {
			for _, p := range d.Programs {
				if p.Sends+p.Deferred+p.Skipped > 0 {
					projected[key{d.Date.Format("01-02"), p.Program}] = [3]int{p.Sends, p.Deferred, p.Skipped}
				}
			}
		}
		show := func(m map[key][3]int) []string {
			var out []string
			for k, v := range m {
				out = append(out, fmt.Sprintf("%s %s sent %d deferred %d skipped %d", k.day, k.program, v[0], v[1], v[2]))
			}
			sort.Strings(out)
			return out
		}
		require.Equal(t, show(actual), show(projected))
		require.NotEmpty(t, actual)
		// Every kind of decision is exercised, and both campaigns sent.
		var sends, defers, skips int
		for _, v := range actual {
			sends, defers, skips = sends+v[0], defers+v[1], skips+v[2]
		}
		require.Positive(t, defers)
		require.Positive(t, skips)
		for _, id := range []string{vip, all} {
			c, err := campaign.Get(s.ctx, db.DB, id)
			require.NoError(t, err)
			require.Equal(t, campaign.StatusSent, c.Status, id)
		}
		// The days before the policy: more customers over the cap than none.
		over := 0
		for _, d := range fc.Days {
			over += d.OverCap
		}
		require.Positive(t, over)
		t.Logf("%d sends, %d deferrals, %d skips projected and done; %d customer-days over the cap before the policy", sends, defers, skips, over)
	})
}

// TestForecastCohortsAreExact runs the forecast over a varied set (three
// programs, a yearly one included, two campaigns, three time zones,
// recent sends at different times, deferrals before the period) with
// customers grouped in cohorts and one by one, for everyone and for a
// segment: the projections are the same, and the grouping did merge
// customers.
func TestForecastCohortsAreExact(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		s := newScenarioEnv(t, db, only("welcome", "cart-abandonment", "customer-anniversary"))
		d0 := s.clock.Now()
		cs := forecastCustomers(t, s, db, "k", 36)
		for i, c := range cs {
			if i%4 == 0 {
				// A first order two years ago, on one of two dates.
				at := time.Date(2024, 6, 3+7*(i%8/4), 15, 0, 0, 0, time.UTC)
				_, err := db.NewUpdate().Model((*customer.Customer)(nil)).Set("orders_count = 1").Set("first_order_at = ?", at).
					Where("id = ?", c.PK).Exec(s.ctx)
				require.NoError(t, err)
			}
		}
		for _, c := range cs {
			s.event(c, "newsletter.subscribed", nil)
		}
		s.runUntil(d0.Add(time.Hour))
		for i, c := range cs {
			if i%3 == 1 {
				s.event(c, "cart.abandoned", map[string]any{"cart_token": fmt.Sprintf("tok%d", i), "source": "shopify"})
			}
		}
		s.gqlCampaign(map[string]any{"name": "VIP preview", "template": "welcome", "priority": 90, "segment": "tag:vip"},
			d0.Add(3*day+3*time.Hour))
		s.gqlCampaign(map[string]any{"name": "Mid-season", "template": "welcome", "priority": 40,
			"sendInRecipientTimeZone": true}, d0.Add(6*day+2*time.Hour))
		// Two days on: recent sends and deferrals before the period.
		for at := d0.Add(2 * time.Hour); !at.After(d0.Add(2 * day)); at = at.Add(time.Hour) {
			s.runUntil(at)
		}
		defers, err := db.NewSelect().Model((*pressure.Record)(nil)).Where("decision = ?", pressure.Deferred).Count(s.ctx)
		require.NoError(t, err)
		require.Positive(t, defers)

		from, to := s.clock.Now(), d0.Add(40*day)
		// Customers i and i+24 are alike; for odd i, but for three recent
		// messages, 5-7 h or 140-142 h before the period: different cohorts.
		for i, c := range cs {
			ago := 5 * time.Hour
			switch {
			case i%2 == 0 || (i >= 12 && i < 24):
				continue
			case i >= 24:
				ago = 140 * time.Hour
			}
			for k := range 3 {
				at := from.Add(-ago - time.Duration(k)*time.Hour)
				pub := fmt.Sprintf("msg_k%d_%d", i, k)
				_, err := db.NewRaw(`INSERT INTO messages (public_id, idempotency_key, customer_id, recipient, template, kind, subject, html, text,
program, state, next_attempt_at, sent_at, created_at, updated_at)
VALUES (?, ?, ?, ?, 't', 'marketing', 's', 'h', 't', 'newsletter', 'sent', ?, ?, ?, ?)`, pub, pub, c.PK, *c.Email, at, at, at, at).Exec(s.ctx)
				require.NoError(t, err)
			}
		}
		one := *s.p.Forecaster()
		one.PerCustomer = true
		for _, segment := range []string{"", "tag:vip"} {
			fc, err := s.p.Forecaster().Forecast(s.ctx, from, to, segment)
			require.NoError(t, err)
			each, err := one.Forecast(s.ctx, from, to, segment)
			require.NoError(t, err)
			require.Equal(t, each.Customers, each.Cohorts, segment)
			require.Equal(t, each.Customers, fc.Customers, segment)
			require.Less(t, fc.Cohorts, fc.Customers, segment)
			each.Cohorts = fc.Cohorts
			require.Equal(t, each, fc, segment)
			var sends, yearly, skipsOrDefers int
			for _, d := range fc.Days {
				sends += d.Sends
				yearly += d.Yearly
				for _, p := range d.Programs {
					skipsOrDefers += p.Deferred + p.Skipped
				}
			}
			require.Positive(t, sends, segment)
			require.Positive(t, yearly, segment)
			require.Positive(t, skipsOrDefers, segment)
			t.Logf("segment %q: %d customers in %d cohorts, %d sends, %d yearly", segment, fc.Customers, fc.Cohorts, sends, yearly)
		}
	})
}
