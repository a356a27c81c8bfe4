// Command dashboard measures the dashboard's GraphQL request on PostgreSQL
// with 10,000,000 message events: every program's KPIs per day over 90
// days, its A/B results and holdout uplift, through the real handler
// (HTTP handler, GraphQL execution, JSON), 200 times, p50 and p99. As the
// reference measured in the same run, a hand-written SQL query computes the
// same per-program daily numbers straight from the hourly rollups, 200
// times: the ratio is what the API layer costs on top of the rollups. The
// period is whole UTC days, so both read the daily rollups (kpi_daily); the
// same hand-written query over the hourly rollups is timed too, for scale.
// It also times, once, the same totals computed from the raw events, which
// is what the rollups avoid.
//
// Data is generated in the database (generate_series) in a schema of its
// own, dropped at the end: 100,000 customers, 2,500,000 messages over 120
// days across the library's programs (two with A/B variants), four events
// per message (delivered, opened, clicked, a second open; some machine
// opens), and the rollups built from them as the tracking path keeps them.
//
//	go run ./bench/dashboard [-db postgres://...] [-messages 2500000] [-requests 200]
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/refrain-dev/refrain/plugin"
	"github.com/refrain-dev/refrain/plugin/store"
)

const adminKey = "bench-admin-key-0123456789abcdefghijkl"

var cpuProfile string

func main() {
	dbURL := flag.String("db", envOr("REFRAIN_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/refrain_test?sslmode=disable"), "PostgreSQL URL")
	messages := flag.Int("messages", 2500000, "messages to generate (four events each)")
	requests := flag.Int("requests", 200, "timed requests of each kind")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the timed dashboard requests to this file")
	flag.Parse()
	cpuProfile = *profile
	if err := run(*dbURL, *messages, *requests); err != nil {
		log.Fatal(err)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run(dbURL string, messages, requests int) error {
	ctx := context.Background()
	admin, err := store.Open(ctx, dbURL, nil)
	if err != nil {
		return err
	}
	defer admin.Close()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	schema := "bench_dashboard_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		return err
	}
	defer func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			log.Printf("drop schema %s: %v", schema, err)
		}
	}()
	db, err := store.Open(ctx, dbURL, &store.Options{SearchPath: schema, MaxOpenConns: 8})
	if err != nil {
		return err
	}
	defer db.Close()

	now := time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	cfg := plugin.DefaultConfig()
	cfg.DatabaseURL = dbURL
	cfg.AdminAPIKey = adminKey
	p, err := plugin.New(ctx, cfg, plugin.WithDB(db), plugin.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		return err
	}
	defer p.Close()

	// Loading runs statements of minutes: a pool of its own without the
	// service's 10 s read timeout.
	loader := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dbURL), pgdriver.WithTimeout(time.Hour),
		pgdriver.WithConnParams(map[string]any{"search_path": schema}))), pgdialect.New())
	defer loader.Close()
	t := time.Now()
	if err := load(ctx, loader, messages, now); err != nil {
		return err
	}
	var events int64
	if err := loader.NewRaw("SELECT count(*) FROM message_events").Scan(ctx, &events); err != nil {
		return err
	}
	var rollups, daily int64
	if err := db.NewRaw("SELECT count(*) FROM kpi_hourly").Scan(ctx, &rollups); err != nil {
		return err
	}
	if err := db.NewRaw("SELECT count(*) FROM kpi_daily").Scan(ctx, &daily); err != nil {
		return err
	}
	fmt.Printf("loaded %d messages, %d message events, %d hourly and %d daily rollup rows in %s\n", messages, events, rollups, daily,
		time.Since(t).Round(time.Second))

	from, to := now.Add(-90*24*time.Hour), now
	body, _ := json.Marshal(map[string]any{"query": plugin.DashboardQuery,
		"variables": map[string]any{"from": from.Format(time.RFC3339), "to": to.Format(time.RFC3339), "timeZone": "UTC"}})
	h := p.Handler()
	request := func() (map[string]int64, error) {
		req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+adminKey)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var out struct {
			Errors []struct{ Message string }
			Data   struct {
				Refrain struct {
					Programs []struct {
						ID    string
						Stats struct {
							Total     struct{ Sent, UniqueOpens, UniqueClicks int64 }
							Intervals []json.RawMessage
						}
					}
				}
			}
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			return nil, fmt.Errorf("decode answer (%d): %w", rec.Code, err)
		}
		if len(out.Errors) > 0 {
			return nil, fmt.Errorf("dashboard query: %s", out.Errors[0].Message)
		}
		sums := map[string]int64{}
		for _, pr := range out.Data.Refrain.Programs {
			if len(pr.Stats.Intervals) != 90 {
				return nil, fmt.Errorf("program %s: %d intervals, want 90", pr.ID, len(pr.Stats.Intervals))
			}
			sums[pr.ID] = pr.Stats.Total.Sent*1e6 + pr.Stats.Total.UniqueOpens*1e3 + pr.Stats.Total.UniqueClicks
		}
		return sums, nil
	}
	reference := func(table string) (map[string]int64, error) {
		tcol := map[string]string{"kpi_daily": "day", "kpi_hourly": "hour"}[table]
		var rows []struct {
			Program      string    `bun:"program"`
			Day          time.Time `bun:"day"`
			Sent         int64     `bun:"sent"`
			Delivered    int64     `bun:"delivered"`
			HardBounces  int64     `bun:"hard_bounces"`
			SoftBounces  int64     `bun:"soft_bounces"`
			Opens        int64     `bun:"unique_opens"`
			MachineOpens int64     `bun:"machine_opens"`
			Clicks       int64     `bun:"unique_clicks"`
			Unsubscribes int64     `bun:"unsubscribes"`
			Complaints   int64     `bun:"complaints"`
			Conversions  int64     `bun:"conversions"`
		}
		err := db.NewRaw(`SELECT program, date_trunc('day', `+tcol+` AT TIME ZONE 'UTC') AS day,
  SUM(sent) AS sent, SUM(delivered) AS delivered, SUM(hard_bounces) AS hard_bounces, SUM(soft_bounces) AS soft_bounces,
  SUM(unique_opens) AS unique_opens, SUM(machine_opens) AS machine_opens, SUM(unique_clicks) AS unique_clicks,
  SUM(unsubscribes) AS unsubscribes, SUM(complaints) AS complaints, SUM(conversions) AS conversions
FROM `+table+` WHERE `+tcol+` >= ? AND `+tcol+` < ? GROUP BY program, day ORDER BY program, day`, from, to).Scan(ctx, &rows)
		if err != nil {
			return nil, err
		}
		sums := map[string]int64{}
		for _, r := range rows {
			sums[r.Program] += r.Sent*1e6 + r.Opens*1e3 + r.Clicks
		}
		return sums, nil
	}

	// The two must agree before they are timed.
	got, err := request()
	if err != nil {
		return err
	}
	want, err := reference("kpi_daily")
	if err != nil {
		return err
	}
	hourly, err := reference("kpi_hourly")
	if err != nil {
		return err
	}
	for prog, v := range want {
		if got[prog] != v || hourly[prog] != v {
			return fmt.Errorf("program %s: the API says %d, the daily rollups %d, the hourly ones %d", prog, got[prog], v, hourly[prog])
		}
	}
	fmt.Printf("the dashboard and the hand-written query agree on %d programs\n", len(want))

	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	api, err := timeIt(requests, func() error { _, err := request(); return err })
	if cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return err
	}
	ref, err := timeIt(requests, func() error { _, err := reference("kpi_daily"); return err })
	if err != nil {
		return err
	}
	hourlyRef, err := timeIt(requests, func() error { _, err := reference("kpi_hourly"); return err })
	if err != nil {
		return err
	}
	t = time.Now()
	var raw int64
	if err := loader.NewRaw(`SELECT count(DISTINCT e.message_id) FROM message_events e JOIN messages m ON m.id = e.message_id
WHERE e.kind = 'opened' AND NOT e.machine_open AND m.sent_at >= ? AND m.sent_at < ?`, from, to).Scan(ctx, &raw); err != nil {
		return err
	}
	rawTook := time.Since(t)

	fmt.Printf("dashboard query (GraphQL, %d programs x 90 days, A/B, holdout), %d requests: p50 %s  p99 %s\n",
		len(want), requests, ms(api[0]), ms(api[1]))
	fmt.Printf("hand-written SQL over the daily rollups (same per-program daily counters), %d runs: p50 %s  p99 %s\n",
		requests, ms(ref[0]), ms(ref[1]))
	fmt.Printf("the same hand-written SQL over the hourly rollups, for scale, %d runs: p50 %s  p99 %s\n",
		requests, ms(hourlyRef[0]), ms(hourlyRef[1]))
	fmt.Printf("ratio dashboard / hand-written: p50 %.2fx  p99 %.2fx\n", float64(api[0])/float64(ref[0]), float64(api[1])/float64(ref[1]))
	fmt.Printf("for scale, unique human opens of the period counted from the raw events, once: %s (%d)\n", ms(rawTook), raw)
	return nil
}

func timeIt(n int, fn func() error) ([2]time.Duration, error) {
	ds := make([]time.Duration, n)
	for i := range ds {
		t := time.Now()
		if err := fn(); err != nil {
			return [2]time.Duration{}, err
		}
		ds[i] = time.Since(t)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return [2]time.Duration{ds[n/2], ds[(n*99)/100-1]}, nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// load generates the data set in the database and builds the rollups from
// it as the tracking path would have (one row per hour and dimensions).
func load(ctx context.Context, db *bun.DB, messages int, now time.Time) error {
	start := now.Add(-120 * 24 * time.Hour)
	steps := []struct {
		what string
		sql  string
		args []any
	}{
		{"customers", `INSERT INTO customers (public_id, email, email_normalized, created_at, updated_at)
SELECT 'cus_b' || i, 'c' || i || '@bench.example', 'c' || i || '@bench.example', ?, ? FROM generate_series(1, 100000) i`, []any{start, start}},
		{"messages", `INSERT INTO messages (public_id, idempotency_key, customer_id, recipient, template, kind, subject, html, text,
  program, scenario, step, variant, state, next_attempt_at, sent_at, created_at, updated_at)
SELECT 'msg_b' || i, 'b:' || i, 1 + i % 100000, 'c' || (1 + i % 100000) || '@bench.example', 't', 'marketing', 's', '', '',
  p.id, p.id, 'step-' || (i % 3),
  CASE WHEN p.id IN ('welcome', 'cart-abandonment') THEN (ARRAY['A', 'B'])[1 + i % 2] END,
  'sent', ts, ts, ts, ts
FROM generate_series(1, ?) i
CROSS JOIN LATERAL (SELECT ?::timestamptz + (i::float8 / ?) * interval '120 days' AS ts) t
JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM scenarios) p ON p.n = i % (SELECT count(*) FROM scenarios)`,
			[]any{messages, start, messages}},
		{"message events", `INSERT INTO message_events (provider_event_id, provider, message_id, customer_id, kind, occurred_at, machine_open, raw, created_at)
SELECT 'mailgun:b' || m.id || ':' || k, 'mailgun', m.id, m.customer_id,
  (ARRAY['delivered', 'opened', 'clicked', 'opened'])[k], m.sent_at + k * interval '1 minute',
  k = 2 AND m.id % 7 = 0, '{}', m.sent_at
FROM messages m CROSS JOIN generate_series(1, 4) k`, nil},
		{"first open and click marks", `UPDATE messages m SET first_open_at = m.sent_at + interval '2 minutes',
  first_click_at = m.sent_at + interval '3 minutes', kpi_flags = 1 | CASE WHEN m.id % 7 = 0 THEN 2 ELSE 0 END`, nil},
		{"rollups", `INSERT INTO kpi_hourly (hour, program, scenario, step, variant, campaign, sent, delivered, unique_opens, machine_opens, unique_clicks)
SELECT date_trunc('hour', m.sent_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', COALESCE(m.program, ''), COALESCE(m.scenario, ''),
  COALESCE(m.step, ''), COALESCE(m.variant, ''), COALESCE(m.campaign, ''),
  count(*), count(*) FILTER (WHERE m.kpi_flags & 1 <> 0), count(m.first_open_at), count(*) FILTER (WHERE m.kpi_flags & 2 <> 0), count(m.first_click_at)
FROM messages m GROUP BY 1, 2, 3, 4, 5, 6`, nil},
		{"daily rollups", `INSERT INTO kpi_daily (day, program, scenario, step, variant, campaign, sent, delivered, unique_opens, machine_opens, unique_clicks)
SELECT date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', program, scenario, step, variant, campaign,
  SUM(sent), SUM(delivered), SUM(unique_opens), SUM(machine_opens), SUM(unique_clicks)
FROM kpi_hourly GROUP BY 1, 2, 3, 4, 5, 6`, nil},
		{"analyze", `ANALYZE`, nil},
	}
	// The dashboard never reads messages or events: their secondary
	// indexes are dropped for the load (10,000,000 index insertions
	// each would dominate it on a small machine). The rollups keep theirs.
	for _, idx := range []string{"messages_due_idx", "messages_customer_idx", "messages_recipient_idx", "messages_provider_message_idx",
		"message_events_message_idx", "message_events_kind_idx", "message_events_customer_kind_idx"} {
		if _, err := db.ExecContext(ctx, "DROP INDEX "+idx); err != nil {
			return fmt.Errorf("drop index %s for the load: %w", idx, err)
		}
	}
	for _, s := range steps {
		t := time.Now()
		if _, err := db.NewRaw(s.sql, s.args...).Exec(ctx); err != nil {
			return fmt.Errorf("load %s: %w", s.what, err)
		}
		fmt.Printf("  %-28s %s\n", s.what, time.Since(t).Round(time.Millisecond))
	}
	return nil
}
