package kpi_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/commerce"
	"github.com/refrain-dev/refrain/plugin/kpi"
	"github.com/refrain-dev/refrain/plugin/mail"
	"github.com/refrain-dev/refrain/plugin/mail/tracking"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

func ts(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// fixture builds messages, events and orders by hand.
type fixture struct {
	t   *testing.T
	db  bun.IDB
	ctx context.Context
	now time.Time
	n   int
}

func (f *fixture) customer(email string) int64 {
	var id int64
	require.NoError(f.t, f.db.NewRaw("INSERT INTO customers (public_id, email, email_normalized, created_at, updated_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
		"cus_"+email, email, email, f.now, f.now).Scan(f.ctx, &id))
	return id
}

// message stores a sent message and counts it sent, as the outbox does.
func (f *fixture) message(customerPK int64, d kpi.Dims, sentAt string) string {
	f.n++
	pub := fmt.Sprintf("msg_%d", f.n)
	at := ts(sentAt)
	null := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	_, err := f.db.NewRaw(`INSERT INTO messages (public_id, idempotency_key, customer_id, recipient, template, kind, subject, html, text,
program, scenario, step, variant, campaign, state, next_attempt_at, sent_at, created_at, updated_at)
VALUES (?, ?, ?, ?, 't', 'marketing', 's', 'h', 't', ?, ?, ?, ?, ?, 'sent', ?, ?, ?, ?)`,
		pub, pub, customerPK, fmt.Sprintf("c%d@example.com", customerPK), null(d.Program), null(d.Scenario), null(d.Step),
		null(d.Variant), null(d.Campaign), at, at, at, at).Exec(f.ctx)
	require.NoError(f.t, err)
	require.NoError(f.t, kpi.CountSent(f.ctx, f.db, at, []kpi.Dims{d}))
	return pub
}

// event records a provider event through tracking, as the webhook does;
// it reports whether the event was new.
func (f *fixture) event(id, msg string, kind mail.EventKind, at string, opts ...func(*mail.Event)) bool {
	ev := mail.Event{ID: id, Provider: "mailgun", Kind: kind, At: ts(at), MessageID: msg}
	for _, o := range opts {
		o(&ev)
	}
	ok, err := tracking.RecordTx(f.ctx, f.db, f.now, ev, kpi.Recorder{})
	require.NoError(f.t, err)
	return ok
}

func machine(ev *mail.Event)   { ev.MachineOpen = true }
func permanent(ev *mail.Event) { ev.Severity = mail.SeverityPermanent }
func temporary(ev *mail.Event) { ev.Severity = mail.SeverityTemporary }

func (f *fixture) order(a *kpi.Attributor, customerPK int64, ext string, placed string, total int64, cur string) (*commerce.Order, *kpi.Attribution) {
	o := &commerce.Order{Source: "standard", ExternalID: ext, CustomerPK: &customerPK, Status: "open", TotalMinor: total,
		Currency: &cur, Items: []commerce.Item{}, PlacedAt: ts(placed), CreatedAt: f.now, UpdatedAt: f.now}
	_, err := f.db.NewInsert().Model(o).Exec(f.ctx)
	require.NoError(f.t, err)
	at, err := a.Attribute(f.ctx, f.db, f.now, o)
	require.NoError(f.t, err)
	require.NotNil(f.t, at)
	return o, at
}

var (
	welcomeA = kpi.Dims{Program: "welcome", Scenario: "welcome", Step: "welcome", Variant: "A"}
	welcomeB = kpi.Dims{Program: "welcome", Scenario: "welcome", Step: "welcome", Variant: "B"}
	survey   = kpi.Dims{Program: "welcome", Scenario: "welcome", Step: "discount-survey", Variant: "A"}
	reminder = kpi.Dims{Program: "welcome", Scenario: "welcome", Step: "survey-reminder", Variant: "A"}
	launch   = kpi.Dims{Program: "launch", Campaign: "launch"}
)

// seed builds the data set every KPI test reads. Times are UTC; New York
// leaves daylight saving time on Sunday 2026-11-01 at 06:00 UTC, and
// 2026-11-02 is a Monday.
//
//	m5 survey   A  sent 10-30 10:00  delivered, two soft bounces (one counted)
//	m1 welcome  A  sent 10-31 03:30  delivered, two human opens, a click (redelivered once)
//	m2 welcome  B  sent 10-31 12:00  delivered, machine open, click, unsubscribe
//	m3 welcome  A  sent 11-01 04:30  delivered, human open, complaint
//	m4 launch      sent 11-02 02:00  hard bounce
//	m6 reminder A  sent 11-02 20:00  delivered, human open
//
// Orders: o1 (c1, 11-03 00:00, 50.00 EUR) goes to m1 by its click although
// m6 was opened later; o2 (c3, 11-01 20:00, 30.00 USD) goes to m3 by its
// open 15 h before; o3 (c2, 11-05 14:00) is 121 h after m2's click and m2
// had only a machine open: none; o4 (c3, 11-02 06:00) is 25 h after m3's
// open: none.
func seed(t *testing.T, db bun.IDB) *fixture {
	f := &fixture{t: t, db: db, ctx: context.Background(), now: ts("2026-11-10 00:00")}
	c1, c2, c3, c5 := f.customer("c1@example.com"), f.customer("c2@example.com"), f.customer("c3@example.com"), f.customer("c5@example.com")
	m5 := f.message(c5, survey, "2026-10-30 10:00")
	m1 := f.message(c1, welcomeA, "2026-10-31 03:30")
	m2 := f.message(c2, welcomeB, "2026-10-31 12:00")
	m3 := f.message(c3, welcomeA, "2026-11-01 04:30")
	m4 := f.message(c1, launch, "2026-11-02 02:00")
	m6 := f.message(c1, reminder, "2026-11-02 20:00")

	require.True(t, f.event("e1", m5, mail.EventDelivered, "2026-10-30 10:01"))
	require.True(t, f.event("e2", m5, mail.EventFailed, "2026-10-30 10:02", temporary))
	require.True(t, f.event("e3", m5, mail.EventFailed, "2026-10-30 11:02", temporary))

	require.True(t, f.event("e10", m1, mail.EventDelivered, "2026-10-31 03:31"))
	require.True(t, f.event("e11", m1, mail.EventOpened, "2026-10-31 04:00"))
	require.True(t, f.event("e12", m1, mail.EventOpened, "2026-10-31 04:30"))
	require.True(t, f.event("e13", m1, mail.EventClicked, "2026-10-31 05:00"))
	require.False(t, f.event("e13", m1, mail.EventClicked, "2026-10-31 05:00"), "a redelivered event is recorded once")

	require.True(t, f.event("e20", m2, mail.EventDelivered, "2026-10-31 12:01"))
	require.True(t, f.event("e21", m2, mail.EventOpened, "2026-10-31 12:02", machine))
	require.True(t, f.event("e22", m2, mail.EventClicked, "2026-10-31 13:00"))
	require.True(t, f.event("e23", m2, mail.EventUnsubscribed, "2026-10-31 13:05"))

	require.True(t, f.event("e30", m3, mail.EventDelivered, "2026-11-01 04:31"))
	require.True(t, f.event("e31", m3, mail.EventOpened, "2026-11-01 05:00"))
	require.True(t, f.event("e32", m3, mail.EventComplained, "2026-11-01 05:10"))

	require.True(t, f.event("e40", m4, mail.EventFailed, "2026-11-02 02:01", permanent))

	require.True(t, f.event("e60", m6, mail.EventDelivered, "2026-11-02 20:01"))
	require.True(t, f.event("e61", m6, mail.EventOpened, "2026-11-02 22:00"))

	a := &kpi.Attributor{GoalMatches: func(_ context.Context, _ bun.IDB, scenario string, _ *commerce.Order) (bool, error) {
		return scenario == "welcome", nil
	}}
	o1, at := f.order(a, c1, "o1", "2026-11-03 00:00", 5000, "eur")
	require.Equal(t, kpi.AttributionClick, at.How, "the click on m1 wins over the later open of m6")
	require.Equal(t, welcomeA, at.Message.Dims)
	require.True(t, at.Goal)
	_, at = f.order(a, c3, "o2", "2026-11-01 20:00", 3000, "USD")
	require.Equal(t, kpi.AttributionOpen, at.How)
	require.Equal(t, welcomeA, at.Message.Dims)
	_, at = f.order(a, c2, "o3", "2026-11-05 14:00", 7000, "EUR")
	require.Equal(t, kpi.AttributionNone, at.How, "121 h after the click, and a machine open never counts")
	_, at = f.order(a, c3, "o4", "2026-11-02 06:00", 9000, "USD")
	require.Equal(t, kpi.AttributionNone, at.How, "25 h after the open")

	// Shopify gives order times to the second: a click 0.6 s "after" the
	// order is the click that led to it (within ClockSkew).
	c7 := f.customer("c7@example.com")
	m7 := f.message(c7, welcomeB, "2026-12-15 10:00") // outside every period below
	require.True(t, f.event("e70", m7, mail.EventClicked, "2026-12-15 11:00", func(ev *mail.Event) { ev.At = ev.At.Add(600 * time.Millisecond) }))
	_, at = f.order(a, c7, "o7", "2026-12-15 11:00", 0, "EUR")
	require.Equal(t, kpi.AttributionClick, at.How)
	require.Equal(t, welcomeB, at.Message.Dims)

	// A second delivery of o1 changes nothing.
	again, err := a.Attribute(f.ctx, db, f.now, o1)
	require.NoError(t, err)
	require.Nil(t, again)
	var stored struct {
		Attribution string `bun:"attribution"`
		MessagePK   int64  `bun:"attributed_message_id"`
	}
	require.NoError(t, db.NewRaw("SELECT attribution, attributed_message_id FROM orders WHERE external_id = 'o1'").Scan(f.ctx, &stored))
	require.Equal(t, kpi.AttributionClick, stored.Attribution)
	require.NotZero(t, stored.MessagePK)
	return f
}

// c builds expected counters from "sent delivered hard soft opens machine
// clicks unsub complaints conversions goals".
func c(v ...int64) kpi.Counters {
	return kpi.Counters{Sent: v[0], Delivered: v[1], HardBounces: v[2], SoftBounces: v[3], UniqueOpens: v[4], MachineOpens: v[5],
		UniqueClicks: v[6], Unsubscribes: v[7], Complaints: v[8], Conversions: v[9], GoalConversions: v[10]}
}

var (
	cM5 = c(1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0)
	cM1 = c(1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 1)
	cM2 = c(1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0)
	cM3 = c(1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 1)
	cM4 = c(1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0)
	cM6 = c(1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0)
)

func sum(cs ...kpi.Counters) kpi.Counters {
	var out kpi.Counters
	for _, x := range cs {
		out.Add(x)
	}
	return out
}

type wantBucket struct {
	start    string // local date
	hours    float64
	counters kpi.Counters
	revenue  map[string]int64
}

func TestKPIsByIntervalAndTimeZone(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		seed(t, db)
		ctx := context.Background()
		ny, err := time.LoadLocation("America/New_York")
		require.NoError(t, err)
		eur := map[string]int64{"EUR": 5000}
		usd := map[string]int64{"USD": 3000}
		both := map[string]int64{"EUR": 5000, "USD": 3000}
		cases := []struct {
			name     string
			loc      *time.Location
			from, to string
			iv       kpi.Interval
			want     []wantBucket
		}{
			{"day utc", time.UTC, "2026-10-30 00:00", "2026-11-03 00:00", kpi.IntervalDay, []wantBucket{
				{"2026-10-30", 24, cM5, nil},
				{"2026-10-31", 24, sum(cM1, cM2), eur},
				{"2026-11-01", 24, cM3, usd},
				{"2026-11-02", 24, sum(cM4, cM6), nil},
			}},
			// In New York m1 (23:30 EDT) falls on the 30th, m4 (21:00 EST)
			// on the 1st, and the 1st lasts 25 hours.
			{"day new york", ny, "2026-10-30 04:00", "2026-11-03 05:00", kpi.IntervalDay, []wantBucket{
				{"2026-10-30", 24, sum(cM5, cM1), eur},
				{"2026-10-31", 24, cM2, nil},
				{"2026-11-01", 25, sum(cM3, cM4), usd},
				{"2026-11-02", 24, cM6, nil},
			}},
			{"week utc", time.UTC, "2026-10-26 00:00", "2026-11-09 00:00", kpi.IntervalWeek, []wantBucket{
				{"2026-10-26", 168, sum(cM5, cM1, cM2, cM3), both},
				{"2026-11-02", 168, sum(cM4, cM6), nil},
			}},
			{"week new york", ny, "2026-10-26 04:00", "2026-11-09 05:00", kpi.IntervalWeek, []wantBucket{
				{"2026-10-26", 169, sum(cM5, cM1, cM2, cM3, cM4), both},
				{"2026-11-02", 168, cM6, nil},
			}},
			{"month utc", time.UTC, "2026-10-01 00:00", "2026-12-01 00:00", kpi.IntervalMonth, []wantBucket{
				{"2026-10-01", 31 * 24, sum(cM5, cM1, cM2), eur},
				{"2026-11-01", 30 * 24, sum(cM3, cM4, cM6), usd},
			}},
			// m3 was sent in the hour that starts November in New York, and
			// November gains the hour daylight saving time gives back.
			{"month new york", ny, "2026-10-01 04:00", "2026-12-01 05:00", kpi.IntervalMonth, []wantBucket{
				{"2026-10-01", 31 * 24, sum(cM5, cM1, cM2), eur},
				{"2026-11-01", 30*24 + 1, sum(cM3, cM4, cM6), usd},
			}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				out, err := kpi.Compute(ctx, db, kpi.Query{From: ts(tc.from), To: ts(tc.to), Interval: tc.iv, Location: tc.loc})
				require.NoError(t, err)
				require.Len(t, out, 1)
				s := out[0]
				require.Equal(t, sum(cM5, cM1, cM2, cM3, cM4, cM6), s.Total.Counters)
				require.Equal(t, both, s.Total.Revenue)
				require.Len(t, s.Buckets, len(tc.want))
				for i, w := range tc.want {
					b := s.Buckets[i]
					require.Equal(t, w.start, b.Start.Format("2006-01-02"), "bucket %d", i)
					require.Equal(t, tc.loc, b.Start.Location())
					require.Equal(t, w.hours, b.End.Sub(b.Start).Hours(), "bucket %s", w.start)
					require.Equal(t, w.counters, b.Counters, "bucket %s", w.start)
					require.Equal(t, w.revenue, b.Revenue, "bucket %s", w.start)
				}
			})
		}
	})
}

func TestKPIsFilterAndGroup(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		seed(t, db)
		ctx := context.Background()
		q := func(f kpi.Filter, g ...kpi.Dim) []*kpi.Series {
			out, err := kpi.Compute(ctx, db, kpi.Query{Filter: f, GroupBy: g, From: ts("2026-10-01 00:00"), To: ts("2026-12-01 00:00")})
			require.NoError(t, err)
			return out
		}
		str := func(s string) *string { return &s }

		out := q(kpi.Filter{Variant: str("A")})
		require.Equal(t, sum(cM5, cM1, cM3, cM6), out[0].Total.Counters)
		out = q(kpi.Filter{Campaign: str("launch")})
		require.Equal(t, cM4, out[0].Total.Counters)
		require.Empty(t, out[0].Buckets)
		out = q(kpi.Filter{Program: str("welcome"), Step: str("welcome")})
		require.Equal(t, sum(cM1, cM2, cM3), out[0].Total.Counters)
		out = q(kpi.Filter{Program: str("nothing")})
		require.Equal(t, kpi.Counters{}, out[0].Total.Counters)

		out = q(kpi.Filter{}, kpi.DimVariant)
		require.Len(t, out, 3)
		require.Equal(t, []string{"", "A", "B"}, []string{out[0].Key, out[1].Key, out[2].Key})
		require.Equal(t, cM4, out[0].Total.Counters)
		require.Equal(t, sum(cM5, cM1, cM3, cM6), out[1].Total.Counters)
		require.Equal(t, map[string]int64{"EUR": 5000, "USD": 3000}, out[1].Total.Revenue)
		require.Equal(t, cM2, out[2].Total.Counters)
		require.Nil(t, out[2].Total.Revenue)

		out = q(kpi.Filter{}, kpi.DimProgram)
		require.Equal(t, []string{"launch", "welcome"}, []string{out[0].Key, out[1].Key})
		out = q(kpi.Filter{Program: str("welcome")}, kpi.DimStep, kpi.DimVariant)
		keys := []string{}
		for _, s := range out {
			keys = append(keys, s.Key)
		}
		require.Equal(t, []string{"discount-survey|A", "survey-reminder|A", "welcome|A", "welcome|B"}, keys)
		require.Equal(t, sum(cM1, cM3), out[2].Total.Counters)

		// Hand-worked rates of the whole set: 5 delivered of 6 sent, 4
		// unique opens, 2 unique clicks (click-to-open 2/4).
		rates := map[string]kpi.Rate{}
		for _, r := range q(kpi.Filter{})[0].Total.Rates() {
			rates[r.Name] = r
		}
		want := map[string][2]int64{"delivery_rate": {5, 6}, "open_rate": {4, 5}, "click_rate": {2, 5}, "click_to_open_rate": {2, 4},
			"hard_bounce_rate": {1, 6}, "soft_bounce_rate": {1, 6}, "machine_open_rate": {1, 5}, "unsubscribe_rate": {1, 5},
			"complaint_rate": {1, 5}, "conversion_rate": {2, 5}, "goal_conversion_rate": {2, 5}}
		require.Len(t, rates, len(want))
		for name, w := range want {
			require.Equal(t, w, [2]int64{rates[name].Num, rates[name].Den}, name)
		}
		v, ok := rates["click_to_open_rate"].Value()
		require.True(t, ok)
		require.Equal(t, 0.5, v)
		_, ok = kpi.Rate{}.Value()
		require.False(t, ok)
	})
}

func TestKPIQueryErrors(t *testing.T) {
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	require.NoError(t, err)
	cases := []struct {
		q    kpi.Query
		want string
	}{
		{kpi.Query{}, "from and to are required"},
		{kpi.Query{From: ts("2026-10-02 00:00"), To: ts("2026-10-01 00:00")}, "must be after from"},
		{kpi.Query{From: ts("2026-10-01 00:00"), To: ts("2026-10-02 00:00"), Interval: "YEAR"}, `interval "YEAR"`},
		{kpi.Query{From: ts("2026-10-01 00:00"), To: ts("2026-10-02 00:00"), Interval: kpi.IntervalDay, Location: kolkata}, "whole-hour offset"},
		{kpi.Query{From: ts("2020-01-01 00:00"), To: ts("2026-01-01 00:00"), Interval: kpi.IntervalDay}, "more than 1000 intervals"},
	}
	for _, c := range cases {
		err := c.q.Validate()
		require.ErrorContains(t, err, c.want)
	}
	q := kpi.Query{From: ts("2026-10-01 00:30"), To: ts("2026-10-02 00:01")}
	require.NoError(t, q.Validate())
	require.Equal(t, ts("2026-10-01 00:00"), q.From, "the period widens to whole hours")
	require.Equal(t, ts("2026-10-02 01:00"), q.To)
}

// segment stores a segment with the given current members.
func (f *fixture) segment(name string, members ...string) {
	var id int64
	require.NoError(f.t, f.db.NewRaw("INSERT INTO segments (name, rule, created_at, updated_at) VALUES (?, 'true', ?, ?) RETURNING id",
		name, f.now, f.now).Scan(f.ctx, &id))
	for _, email := range members {
		_, err := f.db.NewRaw("INSERT INTO segment_members (segment_id, customer_id, entered_at) SELECT ?, id, ? FROM customers WHERE email = ?",
			id, f.now, email).Exec(f.ctx)
		require.NoError(f.t, err)
	}
}

// TestKPIsBySegment: the segment filter reads the members' messages and
// orders, and gives the hand-worked numbers of their messages; for a
// segment of every customer it gives what the rollups give.
func TestKPIsBySegment(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		f := seed(t, db)
		ctx := context.Background()
		str := func(s string) *string { return &s }
		f.segment("c1-c3", "c1@example.com", "c3@example.com")
		f.segment("everyone", "c1@example.com", "c2@example.com", "c3@example.com", "c5@example.com", "c7@example.com")
		f.segment("nobody")
		ny, err := time.LoadLocation("America/New_York")
		require.NoError(t, err)
		eur := map[string]int64{"EUR": 5000}
		usd := map[string]int64{"USD": 3000}

		// c1 received m1, m4 and m6; c3 received m3. o1 (EUR, to m1) and
		// o2 (USD, to m3) are theirs, both goals of welcome.
		cases := []struct {
			name     string
			loc      *time.Location
			from, to string
			want     []wantBucket
		}{
			{"day utc", time.UTC, "2026-10-30 00:00", "2026-11-03 00:00", []wantBucket{
				{"2026-10-30", 24, kpi.Counters{}, nil},
				{"2026-10-31", 24, cM1, eur},
				{"2026-11-01", 24, cM3, usd},
				{"2026-11-02", 24, sum(cM4, cM6), nil},
			}},
			{"day new york", ny, "2026-10-30 04:00", "2026-11-03 05:00", []wantBucket{
				{"2026-10-30", 24, cM1, eur},
				{"2026-10-31", 24, kpi.Counters{}, nil},
				{"2026-11-01", 25, sum(cM3, cM4), usd},
				{"2026-11-02", 24, cM6, nil},
			}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				out, err := kpi.Compute(ctx, db, kpi.Query{Filter: kpi.Filter{Segment: str("c1-c3")}, From: ts(tc.from), To: ts(tc.to),
					Interval: kpi.IntervalDay, Location: tc.loc})
				require.NoError(t, err)
				require.Len(t, out, 1)
				require.Equal(t, sum(cM1, cM3, cM4, cM6), out[0].Total.Counters)
				require.Equal(t, map[string]int64{"EUR": 5000, "USD": 3000}, out[0].Total.Revenue)
				require.Len(t, out[0].Buckets, len(tc.want))
				for i, w := range tc.want {
					b := out[0].Buckets[i]
					require.Equal(t, w.start, b.Start.Format("2006-01-02"))
					require.Equal(t, w.hours, b.End.Sub(b.Start).Hours(), "bucket %s", w.start)
					require.Equal(t, w.counters, b.Counters, "bucket %s", w.start)
					require.Equal(t, w.revenue, b.Revenue, "bucket %s", w.start)
				}
			})
		}

		// With other filters and groups.
		out, err := kpi.Compute(ctx, db, kpi.Query{Filter: kpi.Filter{Segment: str("c1-c3"), Variant: str("A")}, GroupBy: []kpi.Dim{kpi.DimStep},
			From: ts("2026-10-01 00:00"), To: ts("2026-12-01 00:00")})
		require.NoError(t, err)
		require.Len(t, out, 2)
		require.Equal(t, "survey-reminder", out[0].Key)
		require.Equal(t, cM6, out[0].Total.Counters)
		require.Equal(t, "welcome", out[1].Key)
		require.Equal(t, sum(cM1, cM3), out[1].Total.Counters)
		require.Equal(t, map[string]int64{"EUR": 5000, "USD": 3000}, out[1].Total.Revenue)

		out, err = kpi.Compute(ctx, db, kpi.Query{Filter: kpi.Filter{Segment: str("nobody")}, From: ts("2026-10-01 00:00"), To: ts("2026-12-01 00:00")})
		require.NoError(t, err)
		require.Len(t, out, 1)
		require.Equal(t, kpi.Counters{}, out[0].Total.Counters)

		_, err = kpi.Compute(ctx, db, kpi.Query{Filter: kpi.Filter{Segment: str("no-such")}, From: ts("2026-10-01 00:00"), To: ts("2026-12-01 00:00")})
		require.ErrorIs(t, err, kpi.ErrUnknownSegment)
		require.ErrorContains(t, err, `"no-such"`)

		// A segment of every customer gives the rollups' numbers, by day,
		// week and month, in UTC and New York.
		for _, loc := range []*time.Location{time.UTC, ny} {
			for _, iv := range []kpi.Interval{kpi.IntervalNone, kpi.IntervalDay, kpi.IntervalWeek, kpi.IntervalMonth} {
				q := kpi.Query{From: ts("2026-10-01 00:00"), To: ts("2027-01-01 00:00"), Interval: iv, Location: loc,
					GroupBy: []kpi.Dim{kpi.DimScenario, kpi.DimVariant}}
				want, err := kpi.Compute(ctx, db, q)
				require.NoError(t, err)
				q.Segment = str("everyone")
				got, err := kpi.Compute(ctx, db, q)
				require.NoError(t, err)
				require.Equal(t, want, got, "%s %s", loc, iv)
			}
		}
	})
}

// TestDailyRollups: the daily rollups hold the hourly ones summed by UTC
// day, and a query answered from each gives the same numbers.
func TestDailyRollups(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		seed(t, db)
		ctx := context.Background()
		var hourly, daily []struct {
			Program, Variant string
			Sent, Opens      int64
			Conversions      int64
		}
		require.NoError(t, db.NewRaw(`SELECT program, variant, SUM(sent) AS sent, SUM(unique_opens) AS opens, SUM(conversions) AS conversions
FROM kpi_hourly GROUP BY program, variant ORDER BY program, variant`).Scan(ctx, &hourly))
		require.NoError(t, db.NewRaw(`SELECT program, variant, SUM(sent) AS sent, SUM(unique_opens) AS opens, SUM(conversions) AS conversions
FROM kpi_daily GROUP BY program, variant ORDER BY program, variant`).Scan(ctx, &daily))
		require.NotEmpty(t, hourly)
		require.Equal(t, hourly, daily)
		var days int
		require.NoError(t, db.NewRaw("SELECT COUNT(DISTINCT day) FROM kpi_daily WHERE day < ?", ts("2026-12-01 00:00")).Scan(ctx, &days))
		require.Equal(t, 4, days, "10-30, 10-31, 11-01 and 11-02: orders count on the day of their message")

		// From midnight to midnight reads the daily rows, from 01:00 the
		// hourly ones: the same messages give the same answer.
		a, err := kpi.Compute(ctx, db, kpi.Query{From: ts("2026-10-30 00:00"), To: ts("2026-11-03 00:00"), GroupBy: []kpi.Dim{kpi.DimVariant}})
		require.NoError(t, err)
		b, err := kpi.Compute(ctx, db, kpi.Query{From: ts("2026-10-30 01:00"), To: ts("2026-11-02 23:00"), GroupBy: []kpi.Dim{kpi.DimVariant}})
		require.NoError(t, err)
		require.Equal(t, a, b)
	})
}

// TestRebuild: a database whose messages, events and orders were stored
// before the rollups existed (no rollups, no per-message facts, no
// attribution) gets, from Backfill and Rebuild, the numbers the live
// counters gave; a second run changes nothing, and so does a rebuild of
// one day over live rollups.
func TestRebuild(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		f := seed(t, db)
		ctx := context.Background()
		ny, err := time.LoadLocation("America/New_York")
		require.NoError(t, err)
		queries := []kpi.Query{
			{From: ts("2026-10-01 00:00"), To: ts("2027-01-01 00:00"), Interval: kpi.IntervalDay, GroupBy: []kpi.Dim{kpi.DimScenario, kpi.DimStep, kpi.DimVariant, kpi.DimCampaign}},
			{From: ts("2026-10-01 04:00"), To: ts("2027-01-01 05:00"), Interval: kpi.IntervalWeek, Location: ny, GroupBy: []kpi.Dim{kpi.DimVariant}},
			{From: ts("2026-10-01 00:00"), To: ts("2027-01-01 00:00")},
		}
		snapshot := func() [][]*kpi.Series {
			var out [][]*kpi.Series
			for _, q := range queries {
				s, err := kpi.Compute(ctx, db, q)
				require.NoError(t, err)
				out = append(out, s)
			}
			return out
		}
		want := snapshot()
		cM7 := c(1, 0, 0, 0, 1, 0, 1, 0, 0, 1, 1) // clicked (the open it implies), o7 of 0 EUR
		require.Equal(t, sum(cM5, cM1, cM2, cM3, cM4, cM6, cM7), want[2][0].Total.Counters)
		var lines []string
		progress := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
		a := &kpi.Attributor{GoalMatches: func(_ context.Context, _ bun.IDB, scenario string, _ *commerce.Order) (bool, error) {
			return scenario == "welcome", nil
		}}

		// A rebuild of one day over the live rollups changes nothing.
		n, err := kpi.Rebuild(ctx, db.DB, ts("2026-10-31 00:00"), ts("2026-11-01 00:00"), progress)
		require.NoError(t, err)
		require.Equal(t, int64(2), n, "m1 and m2")
		require.Equal(t, want, snapshot())

		// As before the rollups migration.
		for _, q := range []string{"DELETE FROM kpi_hourly", "DELETE FROM kpi_hourly_revenue", "DELETE FROM kpi_daily", "DELETE FROM kpi_daily_revenue",
			"UPDATE messages SET first_open_at = NULL, first_click_at = NULL, kpi_flags = 0",
			"UPDATE orders SET attribution = NULL, attributed_message_id = NULL, attributed_at = NULL, attributed_goal = NULL"} {
			_, err := db.ExecContext(ctx, q)
			require.NoError(t, err)
		}
		empty := snapshot()
		require.Equal(t, kpi.Counters{}, empty[2][0].Total.Counters)

		for run := 0; run < 2; run++ {
			lines = nil
			n, err := a.Backfill(ctx, db.DB, f.now, progress)
			require.NoError(t, err)
			if run == 0 {
				require.Equal(t, 5, n, "o1, o2, o3, o4 and o7")
				require.Contains(t, lines, "attributed 5 orders")
			} else {
				require.Zero(t, n, "every order is attributed now")
			}
			from, to, ok, err := kpi.Bounds(ctx, db)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, ts("2026-10-30 00:00"), from)
			require.Equal(t, ts("2026-12-16 00:00"), to)
			msgs, err := kpi.Rebuild(ctx, db.DB, from, to, progress)
			require.NoError(t, err)
			require.Equal(t, int64(7), msgs)
			require.Contains(t, lines, "2026-10-31: 2 messages")
			require.Equal(t, want, snapshot(), "run %d", run+1)
		}

		// Orders attributed before the goal was kept get it decided.
		_, err = db.ExecContext(ctx, "UPDATE orders SET attributed_goal = NULL")
		require.NoError(t, err)
		lines = nil
		_, err = a.Backfill(ctx, db.DB, f.now, progress)
		require.NoError(t, err)
		require.Contains(t, lines, "decided the goal of 3 orders attributed before")
		_, err = kpi.Rebuild(ctx, db.DB, ts("2026-10-31 00:00"), ts("2026-11-02 00:00"), progress)
		require.NoError(t, err)
		require.Equal(t, want, snapshot())

		_, err = kpi.Rebuild(ctx, db.DB, ts("2026-11-02 00:00"), ts("2026-11-01 00:00"), progress)
		require.ErrorContains(t, err, "must be after")
	})
}

// TestCube: every question a cube holds is answered as Compute answers it.
func TestCube(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		seed(t, db)
		ctx := context.Background()
		ny, err := time.LoadLocation("America/New_York")
		require.NoError(t, err)
		periods := []struct {
			loc      *time.Location
			from, to string
		}{{time.UTC, "2026-10-26 00:00", "2026-12-21 00:00"}, {ny, "2026-10-26 04:00", "2026-12-21 05:00"}, {time.UTC, "2026-10-30 06:00", "2026-11-02 13:00"}}
		groups := [][]kpi.Dim{nil, {kpi.DimScenario}, {kpi.DimVariant}, {kpi.DimScenario, kpi.DimVariant}, {kpi.DimCampaign}, {kpi.DimVariant, kpi.DimScenario}}
		for _, p := range periods {
			cube, err := kpi.NewCube(ctx, db, kpi.Query{From: ts(p.from), To: ts(p.to), Location: p.loc})
			require.NoError(t, err)
			for _, iv := range []kpi.Interval{kpi.IntervalNone, kpi.IntervalDay, kpi.IntervalWeek, kpi.IntervalMonth} {
				for _, g := range groups {
					q := kpi.Query{From: ts(p.from), To: ts(p.to), Location: p.loc, Interval: iv, GroupBy: g}
					want, err := kpi.Compute(ctx, db, q)
					require.NoError(t, err)
					got, ok := cube.Derive(q)
					require.True(t, ok)
					require.Equal(t, want, got, "%s %s %s %v", p.loc, p.from, iv, g)
				}
			}
		}
		cube, err := kpi.NewCube(ctx, db, kpi.Query{From: ts("2026-10-26 00:00"), To: ts("2026-12-21 00:00")})
		require.NoError(t, err)
		str := func(s string) *string { return &s }
		for _, q := range []kpi.Query{
			{From: ts("2026-10-26 00:00"), To: ts("2026-12-20 00:00")},
			{From: ts("2026-10-26 00:00"), To: ts("2026-12-21 00:00"), Location: ny},
			{From: ts("2026-10-26 00:00"), To: ts("2026-12-21 00:00"), Filter: kpi.Filter{Scenario: str("welcome")}},
			{From: ts("2026-10-26 00:00"), To: ts("2026-12-21 00:00"), GroupBy: []kpi.Dim{kpi.DimProgram}},
		} {
			_, ok := cube.Derive(q)
			require.False(t, ok, "%+v", q)
		}
	})
}

func TestCubeRefusesWhatItCannotCut(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		kolkata, err := time.LoadLocation("Asia/Kolkata")
		require.NoError(t, err)
		c, err := kpi.NewCube(context.Background(), db, kpi.Query{From: ts("2026-10-01 00:00"), To: ts("2026-10-02 00:00"), Location: kolkata})
		require.NoError(t, err)
		require.Nil(t, c)
		c, err = kpi.NewCube(context.Background(), db, kpi.Query{From: ts("2020-01-01 00:00"), To: ts("2026-01-01 00:00")})
		require.NoError(t, err)
		require.Nil(t, c)
	})
}
