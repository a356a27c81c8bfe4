package plugin_test

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin"
	"github.com/refrain-dev/refrain/plugin/commerce"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/kpi"
	"github.com/refrain-dev/refrain/plugin/mail"
	"github.com/refrain-dev/refrain/plugin/mail/tracking"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

// metricsEnv builds messages, events, rollups and enrollments by hand
// behind the real GraphQL handler.
type metricsEnv struct {
	*env
	ctx context.Context
	n   int
}

func newMetricsEnv(t *testing.T, db *storetest.DB) *metricsEnv {
	return &metricsEnv{env: newEnv(t, db, nil), ctx: context.Background()}
}

func (m *metricsEnv) customer() *customer.Customer {
	m.n++
	email := fmt.Sprintf("m%d@example.com", m.n)
	at := t0
	c, _, err := customer.Upsert(m.ctx, m.db.DB, t0, customer.Profile{Email: &email, CreatedAt: &at})
	require.NoError(m.t, err)
	return c
}

// message stores a sent message and counts it sent, as the outbox does.
func (m *metricsEnv) message(c *customer.Customer, d kpi.Dims, at time.Time) string {
	m.n++
	pub := fmt.Sprintf("msg_m%d", m.n)
	null := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	_, err := m.db.NewRaw(`INSERT INTO messages (public_id, idempotency_key, customer_id, recipient, template, kind, subject, html, text,
program, scenario, step, variant, campaign, state, next_attempt_at, sent_at, created_at, updated_at)
VALUES (?, ?, ?, ?, 't', 'marketing', 's', 'h', 't', ?, ?, ?, ?, ?, 'sent', ?, ?, ?, ?)`,
		pub, pub, c.PK, *c.Email, null(d.Program), null(d.Scenario), null(d.Step), null(d.Variant), null(d.Campaign),
		at, at, at, at).Exec(m.ctx)
	require.NoError(m.t, err)
	require.NoError(m.t, kpi.CountSent(m.ctx, m.db.DB, at, []kpi.Dims{d}))
	return pub
}

func (m *metricsEnv) event(id, msg string, kind mail.EventKind, at time.Time) {
	_, err := tracking.Record(m.ctx, m.db.DB, at, mail.Event{ID: id, Provider: "mailgun", Kind: kind, At: at, MessageID: msg}, kpi.Recorder{})
	require.NoError(m.t, err)
}

// rollup adds counters straight to the hourly rollups (A/B samples of
// hundreds of messages).
func (m *metricsEnv) rollup(at time.Time, d kpi.Dims, delivered, clicks int) {
	_, err := m.db.NewRaw(`INSERT INTO kpi_hourly (hour, program, scenario, step, variant, campaign, sent, delivered, unique_opens, unique_clicks)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, kpi.Hour(at), d.Program, d.Scenario, d.Step, d.Variant, d.Campaign,
		delivered, delivered, clicks, clicks).Exec(m.ctx)
	require.NoError(m.t, err)
	// The daily rollups move with the hourly ones.
	_, err = m.db.NewRaw(`INSERT INTO kpi_daily (day, program, scenario, step, variant, campaign, sent, delivered, unique_opens, unique_clicks)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (day, program, scenario, step, variant, campaign) DO UPDATE SET sent = kpi_daily.sent + EXCLUDED.sent,
  delivered = kpi_daily.delivered + EXCLUDED.delivered, unique_opens = kpi_daily.unique_opens + EXCLUDED.unique_opens,
  unique_clicks = kpi_daily.unique_clicks + EXCLUDED.unique_clicks`, kpi.Day(at), d.Program, d.Scenario, d.Step, d.Variant, d.Campaign,
		delivered, delivered, clicks, clicks).Exec(m.ctx)
	require.NoError(m.t, err)
}

func (m *metricsEnv) enroll(scenario string, c *customer.Customer, holdout, goal bool, at time.Time) {
	var goalAt any
	if goal {
		goalAt = at.Add(time.Hour)
	}
	state := "active"
	if holdout {
		state = "holdout"
	}
	_, err := m.db.NewRaw(`INSERT INTO enrollments (scenario_id, version, customer_id, entry_key, state, step, step_started_at, holdout, entered_at, goal_at, updated_at)
VALUES (?, 1, ?, ?, ?, '', ?, ?, ?, ?, ?)`, scenario, c.PK, fmt.Sprintf("k%d", c.PK), state, at, holdout, at, goalAt, at).Exec(m.ctx)
	require.NoError(m.t, err)
}

func (m *metricsEnv) order(c *customer.Customer, ext string, at time.Time, minor int64) {
	_, err := m.db.NewRaw(`INSERT INTO orders (source, external_id, customer_id, status, total_minor, currency, items, placed_at, created_at, updated_at)
VALUES ('standard', ?, ?, 'paid', ?, 'EUR', '[]', ?, ?, ?)`, ext, c.PK, minor, at, at, at).Exec(m.ctx)
	require.NoError(m.t, err)
}

const kpisQuery = `query($f: KpiFilter, $from: DateTime!, $to: DateTime!, $iv: KpiInterval, $tz: String) { refrain {
  kpis(filter: $f, from: $from, to: $to, interval: $iv, timeZone: $tz) {
    from to timeZone
    total { sent delivered uniqueOpens machineOpens uniqueClicks hardBounces
      openRate { numerator denominator numeratorName denominatorName value }
      clickToOpenRate { numerator denominator value }
      revenue { revenue { amount currency } perRecipient } }
    intervals { start end values { sent delivered uniqueOpens uniqueClicks } }
  } } }`

type kpiValuesJSON struct {
	Sent, Delivered, UniqueOpens, MachineOpens, UniqueClicks, HardBounces int
	OpenRate                                                              struct {
		Numerator, Denominator         int
		NumeratorName, DenominatorName string
		Value                          *float64
	}
	ClickToOpenRate struct {
		Numerator, Denominator int
		Value                  *float64
	}
	Revenue []struct {
		Revenue struct {
			Amount   int
			Currency string
		}
		PerRecipient *float64
	}
}

func TestKPIsThroughGraphQL(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		m := newMetricsEnv(t, db)
		day1, day2 := t0, t0.Add(24*time.Hour)
		welcome := kpi.Dims{Program: "welcome", Scenario: "welcome", Step: "welcome"}
		c1, c2 := m.customer(), m.customer()
		m1 := m.message(c1, welcome, day1)
		m2 := m.message(c2, welcome, day2)
		m3 := m.message(c2, kpi.Dims{Program: "spring", Campaign: "spring"}, day2)
		m.event("a1", m1, mail.EventDelivered, day1.Add(time.Minute))
		m.event("a2", m1, mail.EventOpened, day1.Add(time.Hour))
		m.event("a3", m1, mail.EventClicked, day1.Add(2*time.Hour))
		m.event("a3", m1, mail.EventClicked, day1.Add(2*time.Hour)) // redelivered
		m.event("b1", m2, mail.EventDelivered, day2.Add(time.Minute))
		m.event("c1", m3, mail.EventDelivered, day2.Add(time.Minute))
		// An order through the real attribution (OnOrder runs it in the
		// commerce transaction; here it is called the same way).
		_, err := m.db.NewRaw("INSERT INTO orders (source, external_id, customer_id, status, total_minor, currency, items, placed_at, created_at, updated_at) VALUES ('standard', 'o1', ?, 'paid', 4200, 'EUR', '[]', ?, ?, ?)",
			c1.PK, day1.Add(3*time.Hour), day1, day1).Exec(m.ctx)
		require.NoError(t, err)
		var o struct {
			PK int64 `bun:"id"`
		}
		require.NoError(t, m.db.NewRaw("SELECT id FROM orders WHERE external_id = 'o1'").Scan(m.ctx, &o))
		require.NoError(t, attribute(m.ctx, m.db.DB, o.PK))

		welcomeF := map[string]any{"program": "welcome"}
		res := m.do(testBootstrapKey, kpisQuery, map[string]any{"f": welcomeF, "from": day1.Add(-9 * time.Hour).Format(time.RFC3339),
			"to": day2.Add(24 * time.Hour).Format(time.RFC3339), "iv": "DAY", "tz": "UTC"})
		var out struct {
			Refrain struct {
				Kpis struct {
					From, To  time.Time
					TimeZone  string
					Total     kpiValuesJSON
					Intervals []struct {
						Start, End time.Time
						Values     kpiValuesJSON
					}
				}
			}
		}
		res.decode(t, &out)
		k := out.Refrain.Kpis
		require.Equal(t, 2, k.Total.Sent)
		require.Equal(t, 2, k.Total.Delivered)
		require.Equal(t, 1, k.Total.UniqueOpens)
		require.Equal(t, 1, k.Total.UniqueClicks, "the redelivered click counts once")
		require.Equal(t, 1, k.Total.OpenRate.Numerator)
		require.Equal(t, 2, k.Total.OpenRate.Denominator)
		require.Equal(t, "delivered", k.Total.OpenRate.DenominatorName)
		require.Equal(t, 0.5, *k.Total.OpenRate.Value)
		require.Equal(t, 1.0, *k.Total.ClickToOpenRate.Value)
		require.Len(t, k.Total.Revenue, 1)
		require.Equal(t, 4200, k.Total.Revenue[0].Revenue.Amount)
		require.Equal(t, "EUR", k.Total.Revenue[0].Revenue.Currency)
		require.Equal(t, 2100.0, *k.Total.Revenue[0].PerRecipient)
		require.Len(t, k.Intervals, 3, "June 1, 2 and 3 (to is June 3 09:00)")
		require.Equal(t, []int{1, 1, 0}, []int{k.Intervals[0].Values.Sent, k.Intervals[1].Values.Sent, k.Intervals[2].Values.Sent})
		require.Equal(t, 1, k.Intervals[0].Values.UniqueClicks)
		require.Equal(t, "2026-06-02T00:00:00Z", k.Intervals[1].Start.Format(time.RFC3339))

		// Bad input is named.
		res = m.do(testBootstrapKey, kpisQuery, map[string]any{"f": map[string]any{"segment": "vip"}, "from": day1.Format(time.RFC3339), "to": day2.Format(time.RFC3339)})
		require.Equal(t, []string{"BAD_USER_INPUT"}, res.codes())
		require.Contains(t, res.Errors[0].Message, `filter.segment: no segment is named "vip"`)

		// A segment of c1 alone: m1 and its order, read from the members' messages.
		var segPK int64
		require.NoError(t, m.db.NewRaw("INSERT INTO segments (name, rule, created_at, updated_at) VALUES ('vip', 'true', ?, ?) RETURNING id", day1, day1).
			Scan(m.ctx, &segPK))
		_, err = m.db.NewRaw("INSERT INTO segment_members (segment_id, customer_id, entered_at) VALUES (?, ?, ?)", segPK, c1.PK, day1).Exec(m.ctx)
		require.NoError(t, err)
		res = m.do(testBootstrapKey, kpisQuery, map[string]any{"f": map[string]any{"segment": "vip"}, "from": day1.Add(-9 * time.Hour).Format(time.RFC3339),
			"to": day2.Add(24 * time.Hour).Format(time.RFC3339), "iv": "DAY", "tz": "UTC"})
		res.decode(t, &out)
		k = out.Refrain.Kpis
		require.Equal(t, []int{1, 1, 1, 1}, []int{k.Total.Sent, k.Total.Delivered, k.Total.UniqueOpens, k.Total.UniqueClicks})
		require.Len(t, k.Total.Revenue, 1)
		require.Equal(t, 4200, k.Total.Revenue[0].Revenue.Amount)
		require.Equal(t, []int{1, 0, 0}, []int{k.Intervals[0].Values.Sent, k.Intervals[1].Values.Sent, k.Intervals[2].Values.Sent})
		res = m.do(testBootstrapKey, kpisQuery, map[string]any{"from": day1.Format(time.RFC3339), "to": day2.Format(time.RFC3339), "tz": "Mars/Olympus"})
		require.Contains(t, res.Errors[0].Message, `timeZone "Mars/Olympus"`)
		res = m.do(testBootstrapKey, kpisQuery, map[string]any{"from": day1.Format(time.RFC3339), "to": day2.Format(time.RFC3339), "iv": "DAY", "tz": "Asia/Kolkata"})
		require.Contains(t, res.Errors[0].Message, "whole-hour offset")
		res = m.do("", kpisQuery, map[string]any{"from": day1.Format(time.RFC3339), "to": day2.Format(time.RFC3339)})
		require.Equal(t, []string{"UNAUTHENTICATED"}, res.codes())
	})
}

// attribute runs order attribution as the commerce transaction does.
func attribute(ctx context.Context, db bun.IDB, orderPK int64) error {
	o := new(commerce.Order)
	if err := db.NewSelect().Model(o).Where("id = ?", orderPK).Scan(ctx); err != nil {
		return err
	}
	_, err := (&kpi.Attributor{}).Attribute(ctx, db, t0, o)
	return err
}

const programsQuery = `query($from: DateTime!, $to: DateTime!) { refrain { programs {
  id title objective audience kpi goal holdoutPercent
  stats(from: $from, to: $to, interval: DAY) { total { sent uniqueClicks } intervals { start values { sent } } }
  abTest(from: $from, to: $to) { metric control minSample threshold variants { variant probabilityToBeatControl decision rate { numerator denominator } } }
  holdout(from: $from, to: $to) { holdoutPercent treatedCustomers holdoutCustomers
    treatedConversion { numerator denominator } holdoutConversion { numerator denominator }
    conversionUplift { estimate low high }
    revenuePerCustomer { currency treated holdout uplift { estimate low high } } }
} } }`

type programJSON struct {
	ID, Title, Objective string
	Audience, Kpi, Goal  *string
	HoldoutPercent       int
	Stats                struct {
		Total     struct{ Sent, UniqueClicks int }
		Intervals []struct{ Values struct{ Sent int } }
	}
	AbTest *struct {
		Metric, Control string
		MinSample       int
		Threshold       float64
		Variants        []struct {
			Variant                  string
			ProbabilityToBeatControl float64
			Decision                 string
			Rate                     struct{ Numerator, Denominator int }
		}
	}
	Holdout *struct {
		HoldoutPercent, TreatedCustomers, HoldoutCustomers int
		TreatedConversion, HoldoutConversion               struct{ Numerator, Denominator int }
		ConversionUplift                                   *struct{ Estimate, Low, High float64 }
		RevenuePerCustomer                                 []struct {
			Currency         string
			Treated, Holdout float64
			Uplift           *struct{ Estimate, Low, High float64 }
		}
	}
}

func TestProgramsABAndHoldout(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		m := newMetricsEnv(t, db)
		// welcome: A (control) 60 clicks of 600, B 100 of 600: B beats A.
		// cart-abandonment: 30 of 400 against 45 of 400: not yet
		// conclusive (below the minimum sample of 500).
		m.rollup(t0, kpi.Dims{Program: "welcome", Scenario: "welcome", Step: "welcome", Variant: "A"}, 600, 60)
		m.rollup(t0, kpi.Dims{Program: "welcome", Scenario: "welcome", Step: "welcome", Variant: "B"}, 600, 100)
		m.rollup(t0, kpi.Dims{Program: "cart-abandonment", Scenario: "cart-abandonment", Variant: "A"}, 400, 30)
		m.rollup(t0, kpi.Dims{Program: "cart-abandonment", Scenario: "cart-abandonment", Variant: "B"}, 400, 45)
		// win-back holds out 10%: treated 4 customers (2 goals; they spend
		// 10.00 and 30.00 EUR), holdout 4 (1 goal; one spends 10.00 EUR).
		cs := make([]*customer.Customer, 8)
		for i := range cs {
			cs[i] = m.customer()
			m.enroll("win-back", cs[i], i >= 4, i == 0 || i == 1 || i == 4, t0)
		}
		m.order(cs[0], "w1", t0.Add(time.Hour), 1000)
		m.order(cs[1], "w2", t0.Add(time.Hour), 3000)
		m.order(cs[4], "w5", t0.Add(time.Hour), 1000)
		m.order(cs[5], "w6", t0.Add(-time.Hour), 9999) // before entry: not counted

		res := m.do(testBootstrapKey, programsQuery, map[string]any{"from": t0.Add(-24 * time.Hour).Format(time.RFC3339), "to": t0.Add(24 * time.Hour).Format(time.RFC3339)})
		var out struct {
			Refrain struct{ Programs []programJSON }
		}
		res.decode(t, &out)
		by := map[string]programJSON{}
		for _, p := range out.Refrain.Programs {
			by[p.ID] = p
		}
		require.Len(t, by, 10, "the library's programs")

		w := by["welcome"]
		require.Equal(t, "Welcome series", w.Title)
		require.Equal(t, "build", w.Objective)
		require.Equal(t, "first order within 30 days of sign-up", *w.Kpi)
		require.Equal(t, `consent == "subscribed"`, *w.Audience)
		require.Equal(t, "order.created", *w.Goal)
		require.Equal(t, 1200, w.Stats.Total.Sent)
		require.Equal(t, 160, w.Stats.Total.UniqueClicks)
		require.Len(t, w.Stats.Intervals, 3, "May 31, June 1, June 2")
		require.Equal(t, 1200, w.Stats.Intervals[1].Values.Sent)
		require.NotNil(t, w.AbTest)
		require.Equal(t, "CLICK_RATE", w.AbTest.Metric)
		require.Equal(t, "A", w.AbTest.Control)
		require.Equal(t, 500, w.AbTest.MinSample)
		require.Equal(t, 0.95, w.AbTest.Threshold)
		require.Equal(t, "CONTROL", w.AbTest.Variants[0].Decision)
		require.Equal(t, "BEATS_CONTROL", w.AbTest.Variants[1].Decision)
		require.Greater(t, w.AbTest.Variants[1].ProbabilityToBeatControl, 0.99)
		require.Equal(t, 100, w.AbTest.Variants[1].Rate.Numerator)
		require.Equal(t, 600, w.AbTest.Variants[1].Rate.Denominator)
		require.Nil(t, w.Holdout, "welcome has no holdout")

		ca := by["cart-abandonment"]
		require.Equal(t, "NOT_YET_CONCLUSIVE", ca.AbTest.Variants[1].Decision)
		require.Greater(t, ca.AbTest.Variants[1].ProbabilityToBeatControl, 0.9)
		require.Nil(t, by["sunset"].AbTest, "no variants, no test")
		require.Equal(t, 0, by["sunset"].Stats.Total.Sent)

		wb := by["win-back"]
		require.NotNil(t, wb.Holdout)
		h := wb.Holdout
		require.Equal(t, 10, h.HoldoutPercent)
		require.Equal(t, 4, h.TreatedCustomers)
		require.Equal(t, 4, h.HoldoutCustomers)
		require.Equal(t, 2, h.TreatedConversion.Numerator)
		require.Equal(t, 1, h.HoldoutConversion.Numerator)
		// Hand-worked: 0.50 - 0.25 with standard error
		// sqrt(0.25/4 + 0.1875/4) = 0.330719.
		require.InDelta(t, 0.25, h.ConversionUplift.Estimate, 1e-9)
		require.InDelta(t, 0.25-1.959964*0.330719, h.ConversionUplift.Low, 1e-5)
		// Revenue per customer: treated (1000+3000)/4 = 1000, holdout
		// 1000/4 = 250; variances 2,000,000 and 250,000, so the standard
		// error is sqrt(2e6/4 + 2.5e5/4) = 750.
		require.Len(t, h.RevenuePerCustomer, 1)
		r := h.RevenuePerCustomer[0]
		require.Equal(t, "EUR", r.Currency)
		require.Equal(t, 1000.0, r.Treated)
		require.Equal(t, 250.0, r.Holdout)
		require.InDelta(t, 750, r.Uplift.Estimate, 1e-9)
		require.InDelta(t, 750-1.959964*750, r.Uplift.Low, 1e-2)
		require.InDelta(t, 750+1.959964*750, r.Uplift.High, 1e-2)
		require.False(t, math.IsNaN(r.Uplift.High))

		// An unknown control is named.
		res = m.do(testBootstrapKey, `query($from: DateTime!, $to: DateTime!) { refrain { scenario(id: "welcome") { abTest(from: $from, to: $to, control: "Z") { control } stats(from: $from, to: $to) { total { sent } } } } }`,
			map[string]any{"from": t0.Add(-24 * time.Hour).Format(time.RFC3339), "to": t0.Add(24 * time.Hour).Format(time.RFC3339)})
		require.Len(t, res.Errors, 1)
		require.Contains(t, res.Errors[0].Message, `control variant "Z" sent no message in the period (variants: A, B)`)
	})
}

// queryCounter counts the SQL statements run through bun.
type queryCounter struct{ n atomic.Int64 }

func (q *queryCounter) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}
func (q *queryCounter) AfterQuery(context.Context, *bun.QueryEvent) { q.n.Add(1) }

// The dashboard's query runs the same number of SQL statements with 10
// programs and with 16.
func TestDashboardQueryCount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		m := newMetricsEnv(t, db)
		vars := map[string]any{"from": t0.Add(-90 * 24 * time.Hour).Format(time.RFC3339), "to": t0.Format(time.RFC3339)}
		qc := &queryCounter{}
		m.db.AddQueryHook(qc)
		count := func() (int64, int) {
			qc.n.Store(0)
			res := m.do(testBootstrapKey, plugin.DashboardQuery, vars)
			var out struct {
				Refrain struct{ Programs []programJSON }
			}
			res.decode(t, &out)
			return qc.n.Load(), len(out.Refrain.Programs)
		}
		before, programs := count()
		require.Equal(t, 10, programs)
		for i := range 6 {
			res := m.do(testBootstrapKey, `mutation($d: String!) { refrain { upsertScenario(definition: $d) { userErrors { message } } } }`,
				map[string]any{"d": fmt.Sprintf("id: extra-%d\ntitle: Extra %d\nobjective: maintain\nkpi: repeat orders\ntrigger:\n  event: [order.created]\nholdout: 5\nsteps:\n  - id: thanks\n    send: welcome\n", i, i)})
			require.Empty(t, res.Errors)
		}
		after, programs := count()
		require.Equal(t, 16, programs)
		require.Equal(t, before, after, "the dashboard query runs a fixed number of statements")
		// programs (1), then kpis, stats and abTest summed from one cube
		// (counters and revenue: 2), holdout (2).
		require.Equal(t, int64(5), before)
	})
}
