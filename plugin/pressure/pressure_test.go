package pressure_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/pressure"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

var (
	t0    = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	h     = time.Hour
	quiet = pressure.QuietHours{Start: 21 * 60, End: 8 * 60}
)

func defaults() pressure.Rules {
	return pressure.Rules{Cap: 3, Window: 7 * 24 * h, MinGap: 16 * h, Quiet: quiet, OnCapped: pressure.OnCappedDefer, MaxDelay: 48 * h}
}

func TestEvaluate(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	r := defaults()
	cases := []struct {
		name     string
		rules    func(*pressure.Rules)
		now      time.Time
		loc      *time.Location
		sent     []time.Time
		first    time.Time
		reserved []pressure.Reservation
		want     pressure.Decision
		until    time.Time
		reason   string
	}{
		{name: "free", now: t0, want: pressure.Send, reason: "within the policy"},
		{name: "cap reached defers until the oldest leaves the window", now: t0,
			sent: []time.Time{t0.Add(-6 * 24 * h), t0.Add(-3 * 24 * h), t0.Add(-24 * h)},
			want: pressure.Deferred, until: t0.Add(24 * h), reason: "cap 3 in 7d reached (3 sent)"},
		{name: "a message out of the window does not count", now: t0,
			sent: []time.Time{t0.Add(-8 * 24 * h), t0.Add(-3 * 24 * h), t0.Add(-24 * h)}, want: pressure.Send},
		{name: "min gap", now: t0, sent: []time.Time{t0.Add(-10 * h)},
			want: pressure.Deferred, until: t0.Add(6 * h), reason: "min gap 16h since the last message at 2026-06-01T02:00:00Z"},
		{name: "min gap ends in quiet hours: the end of the quiet hours", now: t0.Add(6 * h), sent: []time.Time{t0.Add(-4 * h)},
			want: pressure.Deferred, until: time.Date(2026, 6, 2, 8, 0, 0, 0, time.UTC)},
		{name: "quiet hours in the customer's zone", now: time.Date(2026, 6, 1, 20, 30, 0, 0, time.UTC), loc: paris,
			want: pressure.Deferred, until: time.Date(2026, 6, 2, 6, 0, 0, 0, time.UTC), reason: "quiet hours 21:00-08:00 in Europe/Paris"},
		{name: "early morning is quiet too", now: time.Date(2026, 6, 1, 5, 0, 0, 0, time.UTC),
			want: pressure.Deferred, until: time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)},
		{name: "skip rule", rules: func(r *pressure.Rules) { r.OnCapped = pressure.OnCappedSkip }, now: t0, sent: []time.Time{t0.Add(-h)},
			want: pressure.Skipped, reason: "min gap 16h since the last message at 2026-06-01T11:00:00Z"},
		{name: "override rule", rules: func(r *pressure.Rules) { r.OnCapped = pressure.OnCappedOverride }, now: t0, sent: []time.Time{t0.Add(-h)},
			want: pressure.Overridden, reason: "override: min gap 16h since the last message at 2026-06-01T11:00:00Z"},
		{name: "past the max delay", now: t0, first: t0.Add(-40 * h),
			sent: []time.Time{t0.Add(-6 * 24 * h), t0.Add(-5 * 24 * h), t0.Add(-2 * h)},
			want: pressure.Skipped, reason: "deferred past the max delay of 48h: cap 3 in 7d reached (3 sent); min gap 16h since the last message at 2026-06-01T10:00:00Z"},
		{name: "a reservation that the step would push over the cap", now: t0,
			sent:     []time.Time{t0.Add(-3 * 24 * h)},
			rules:    func(r *pressure.Rules) { r.Cap = 2 },
			reserved: []pressure.Reservation{{At: t0.Add(24 * h), Campaign: "summer", Priority: 90}},
			want:     pressure.Deferred, until: t0.Add(44 * h),
			reason: "slot reserved for campaign summer (priority 90) at 2026-06-02T12:00:00Z; then quiet hours 21:00-08:00"},
		{name: "a reservation with room left", now: t0,
			reserved: []pressure.Reservation{{At: t0.Add(48 * h), Campaign: "summer", Priority: 90}}, want: pressure.Send},
		{name: "a reservation closer than the min gap", now: t0,
			reserved: []pressure.Reservation{{At: t0.Add(10 * h), Campaign: "flash", Priority: 90}},
			want:     pressure.Deferred, until: t0.Add(26 * h)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rr := r
			if c.rules != nil {
				c.rules(&rr)
			}
			loc := c.loc
			if loc == nil {
				loc = time.UTC
			}
			got := pressure.Evaluate(rr, c.now, loc, c.sent, c.first, c.reserved)
			require.Equal(t, c.want, got.Decision, got.Reason)
			if !c.until.IsZero() {
				require.Equal(t, c.until, got.Until)
			}
			if c.reason != "" {
				require.Equal(t, c.reason, got.Reason)
			}
		})
	}
}

func TestParse(t *testing.T) {
	q, err := pressure.ParseQuietHours("21:00-08:00")
	require.NoError(t, err)
	require.Equal(t, quiet, q)
	_, err = pressure.ParseQuietHours("21h-8h")
	require.ErrorContains(t, err, `"21h" is not a time of day HH:MM`)
	o, err := pressure.ParseOverrides("cart-abandonment:on_capped=override; sunset:on_capped=skip,cap=1,window=14d")
	require.NoError(t, err)
	require.Equal(t, pressure.OnCappedOverride, *o["cart-abandonment"].OnCapped)
	got := defaults().Apply(o["sunset"])
	require.Equal(t, 1, got.Cap)
	require.Equal(t, 14*24*h, got.Window)
	require.Equal(t, pressure.OnCappedSkip, got.OnCapped)
	_, err = pressure.ParseOverrides("welcome:gap=1h")
	require.ErrorContains(t, err, `program welcome: unknown key "gap"`)
	_, err = pressure.ParseOverrides("welcome:on_capped=later")
	require.ErrorContains(t, err, `on_capped "later": want defer, skip or override`)
}

// sendIfAllowed is what a sender does: decide and write the message in one transaction.
func sendIfAllowed(ctx context.Context, db *bun.DB, p *pressure.Policy, now time.Time, pk int64, key string) (pressure.Result, error) {
	var res pressure.Result
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		res, err = p.Decide(ctx, tx, now, pressure.Request{CustomerPK: pk, Program: "p-" + key, Key: key, Priority: 50})
		if err != nil || !res.Decision.Goes() {
			return err
		}
		_, err = tx.NewRaw(`INSERT INTO messages (public_id, idempotency_key, customer_id, recipient, template, kind,
			subject, html, text, state, next_attempt_at, created_at, updated_at)
			VALUES (?, ?, ?, 'a@example.com', 't', 'marketing', '', '', '', 'sent', ?, ?, ?)`,
			"msg_"+key, key, pk, now, now, now).Exec(ctx)
		return err
	})
	return res, err
}

func TestDecideRecordsAndRaces(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		email := "racer@example.com"
		c, _, err := customer.Upsert(ctx, db.DB, t0, customer.Profile{Email: &email, CreatedAt: &t0})
		require.NoError(t, err)
		p := &pressure.Policy{Default: defaults()}
		p.Default.MinGap, p.Default.MaxDelay = 0, 6*24*h
		// Two slots used, one left.
		for i, at := range []time.Time{t0.Add(-48 * h), t0.Add(-24 * h)} {
			res, err := sendIfAllowed(ctx, db.DB, p, at, c.PK, "early"+string(rune('a'+i)))
			require.NoError(t, err)
			require.Equal(t, pressure.Send, res.Decision)
		}
		// Two replicas race for the last slot, each on its own connection pool.
		other := db.Reopen(t)
		var wg sync.WaitGroup
		results := make([]pressure.Result, 8)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				conn := db.DB
				if i%2 == 1 {
					conn = other
				}
				var err error
				results[i], err = sendIfAllowed(ctx, conn, p, t0, c.PK, "race"+string(rune('a'+i)))
				require.NoError(t, err)
			}()
		}
		wg.Wait()
		sent := 0
		for _, r := range results {
			if r.Decision.Goes() {
				sent++
			} else {
				require.Equal(t, pressure.Deferred, r.Decision)
				require.Equal(t, "cap 3 in 7d reached (3 sent)", r.Reason)
			}
		}
		require.Equal(t, 1, sent, "exactly one racer gets the last slot")
		n, err := db.NewSelect().Table("messages").Where("customer_id = ?", c.PK).Count(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 3, n)

		// Every decision is recorded, newest first, with paging.
		page, err := pressure.Decisions(ctx, db.DB, c.PK, 5, "")
		require.NoError(t, err)
		require.Len(t, page.Records, 5)
		require.True(t, page.HasMore)
		rest, err := pressure.Decisions(ctx, db.DB, c.PK, 50, page.EndCursor)
		require.NoError(t, err)
		require.Len(t, rest.Records, 5)
		require.False(t, rest.HasMore)
		require.Equal(t, pressure.Send, rest.Records[len(rest.Records)-1].Decision)

		st, err := p.StatusOf(ctx, db.DB, t0, c.PK)
		require.NoError(t, err)
		require.Equal(t, 3, st.SentInWindow)
		require.Equal(t, 3, st.Cap)
		require.Equal(t, t0.Add(5*24*h), st.NextAllowedAt.UTC())

		// A deferred message keeps its first deferral: asked again 4 days
		// later with a max delay of 4 days, it is skipped (the slot frees
		// 5 days after its first deferral), while a new message waits.
		p.Default.MaxDelay = 4 * 24 * h
		loser := "racea"
		if results[0].Decision.Goes() {
			loser = "raceb"
		}
		res, err := sendIfAllowed(ctx, db.DB, p, t0.Add(4*24*h), c.PK, loser)
		require.NoError(t, err)
		require.Equal(t, pressure.Skipped, res.Decision)
		require.Equal(t, "deferred past the max delay of 96h: cap 3 in 7d reached (3 sent)", res.Reason)
		res, err = sendIfAllowed(ctx, db.DB, p, t0.Add(4*24*h), c.PK, "fresh")
		require.NoError(t, err)
		require.Equal(t, pressure.Deferred, res.Decision)
		require.Equal(t, t0.Add(5*24*h), res.Until)
	})
}

// queryLog records the statements run on a connection pool.
type queryLog struct {
	mu      sync.Mutex
	queries []string
}

func (l *queryLog) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

func (l *queryLog) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	l.mu.Lock()
	l.queries = append(l.queries, e.Query)
	l.mu.Unlock()
}

var readsLookedUp = regexp.MustCompile(`FROM "?(pressure_decisions|messages)"?`)

// TestBatchLookupsUseIndexes: the reads DecideBatch makes for each
// customer of a batch (the pressure window in messages, earlier deferrals
// by message key) are index lookups. A batch of a thousand would otherwise
// scan the tables, growing fast during a campaign, a thousand times. The
// planner is told to avoid sequential scans, so a plan with one means no
// index serves the query (a partial index whose predicate the query does
// not match, say).
func TestBatchLookupsUseIndexes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		var pks []int64
		for _, e := range []string{"a@example.com", "b@example.com"} {
			c, _, err := customer.Upsert(ctx, db.DB, t0, customer.Profile{Email: &e, CreatedAt: &t0})
			require.NoError(t, err)
			pks = append(pks, c.PK)
		}
		conn := db.Reopen(t)
		log := &queryLog{}
		conn.AddQueryHook(log)
		p := &pressure.Policy{Default: defaults()}
		require.NoError(t, conn.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			_, err := p.DecideBatch(ctx, tx, t0, pressure.Request{Program: "spring", Campaign: "spring", Priority: 1}, pks,
				func(pk int64) string { return "campaign:spring:" + string(rune('0'+pk%10)) })
			return err
		}))
		checked := 0
		for _, q := range log.queries {
			if !strings.HasPrefix(strings.TrimSpace(q), "SELECT") || !readsLookedUp.MatchString(q) {
				continue
			}
			checked++
			var plan []string
			if db.SearchPath != "" {
				require.NoError(t, db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
					if _, err := tx.ExecContext(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
						return err
					}
					return tx.NewRaw("EXPLAIN "+q).Scan(ctx, &plan)
				}))
				require.NotContains(t, strings.Join(plan, "\n"), "Seq Scan", q)
				continue
			}
			var rows []struct {
				ID     int    `bun:"id"`
				Parent int    `bun:"parent"`
				NotU   int    `bun:"notused"`
				Detail string `bun:"detail"`
			}
			require.NoError(t, db.NewRaw("EXPLAIN QUERY PLAN "+q).Scan(ctx, &rows))
			for _, r := range rows {
				require.NotRegexp(t, `^SCAN (pressure_decisions|messages)\b`, r.Detail, q)
			}
		}
		require.Equal(t, 2, checked, "the window and deferral reads")
	})
}

// TestFrequencyPreference: a customer who chose "monthly" on the
// preference page gets one marketing message in 30 days, "weekly" one a
// week, whatever the global cap allows, in Decide and DecideBatch alike.
func TestFrequencyPreference(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		pks := map[string]int64{}
		for _, freq := range []string{"monthly", "weekly", "as_it_comes"} {
			email := freq + "@example.com"
			c, _, err := customer.Upsert(ctx, db.DB, t0, customer.Profile{Email: &email, CreatedAt: &t0})
			require.NoError(t, err)
			_, err = db.NewUpdate().Table("customers").Set("preferences = ?", `{"frequency":"`+freq+`"}`).Where("id = ?", c.PK).Exec(ctx)
			require.NoError(t, err)
			pks[freq] = c.PK
		}
		p := &pressure.Policy{Default: defaults()}
		p.Default.MinGap, p.Default.MaxDelay, p.Default.Quiet = 0, 60*24*h, pressure.QuietHours{}
		// A first campaign three days ago reached everyone.
		for freq, pk := range pks {
			res, err := sendIfAllowed(ctx, db.DB, p, t0.Add(-72*h), pk, "first-"+freq)
			require.NoError(t, err)
			require.Equal(t, pressure.Send, res.Decision)
		}
		for freq, want := range map[string]time.Duration{"monthly": 30 * 24 * h, "weekly": 7 * 24 * h} {
			res, err := sendIfAllowed(ctx, db.DB, p, t0, pks[freq], "second-"+freq)
			require.NoError(t, err)
			require.Equal(t, pressure.Deferred, res.Decision, freq)
			require.Equal(t, t0.Add(-72*h).Add(want), res.Until, freq)
		}
		res, err := sendIfAllowed(ctx, db.DB, p, t0, pks["as_it_comes"], "second-as")
		require.NoError(t, err)
		require.Equal(t, pressure.Send, res.Decision)

		var batch map[int64]pressure.Result
		require.NoError(t, db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			var err error
			batch, err = p.DecideBatch(ctx, tx, t0.Add(10*24*h), pressure.Request{Program: "c", Campaign: "c", Priority: 50},
				[]int64{pks["monthly"], pks["weekly"]}, func(pk int64) string { return fmt.Sprintf("third-%d", pk) })
			return err
		}))
		require.Equal(t, pressure.Deferred, batch[pks["monthly"]].Decision, "monthly: the next slot is 30 days after the first")
		require.Equal(t, pressure.Send, batch[pks["weekly"]].Decision, "weekly: a week has passed")
	})
}
