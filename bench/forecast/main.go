// Command forecast measures the pressure forecast of a year ahead on
// 100,000 customers on PostgreSQL: a third of them with a first order (the
// customer-anniversary program), every one with a waiting welcome
// enrollment, a quarter with a cart-abandonment one, a campaign to
// everyone each month and one to a tag each week. As a reference in the
// same run it times the bare reads the forecast starts from (campaign
// audiences, enrollments, yearly dates, recent messages), counted in the
// database. The target is under 5 seconds. With -check it also
// runs the forecast one customer at a time (no cohorts, untimed) and fails
// unless both give the same projection.
//
//	go run ./bench/forecast [-n 100000] [-pg URL] [-check]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"runtime/pprof"
	"time"

	"github.com/refrain-dev/refrain/plugin"
	"github.com/refrain-dev/refrain/plugin/campaign"
	"github.com/refrain-dev/refrain/plugin/store"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	n := flag.Int("n", 100000, "customers")
	pg := flag.String("pg", envOr("REFRAIN_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/refrain_test?sslmode=disable"), "PostgreSQL URL")
	check := flag.Bool("check", false, "also run the forecast one customer at a time and compare")
	flag.Parse()
	ctx := context.Background()
	admin, err := store.Open(ctx, *pg, &store.Options{MaxOpenConns: 1})
	if err != nil {
		return err
	}
	defer admin.Close()
	schema := fmt.Sprintf("bench_forecast_%d", time.Now().UnixNano())
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		return err
	}
	defer admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	db, err := store.Open(ctx, *pg, &store.Options{SearchPath: schema, MaxOpenConns: 4})
	if err != nil {
		return err
	}
	defer db.Close()
	cfg := plugin.DefaultConfig()
	cfg.DatabaseURL = *pg
	cfg.PublicURL = "https://refrain.bench.example"
	cfg.ScenariosLibrary = "welcome,cart-abandonment,customer-anniversary"
	p, err := plugin.New(ctx, cfg, plugin.WithDB(db), plugin.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return err
	}
	start := time.Now()
	now := time.Now().UTC().Truncate(time.Hour)
	zones := `(ARRAY[NULL, 'Europe/Paris', 'America/New_York', 'Asia/Tokyo'])[1 + g % 4]`
	for lo := 1; lo <= *n; lo += 50000 {
		hi := min(lo+49999, *n)
		if _, err := db.ExecContext(ctx, `INSERT INTO customers (public_id, email, email_normalized, first_name, locale, time_zone,
			source, consent_state, stage, hygiene_status, tags, first_order_at, orders_count, created_at, updated_at)
			SELECT 'cus_f' || g, 'f' || g || '@bench.example', 'f' || g || '@bench.example', 'F' || g, 'en', `+zones+`,
			'import', 'subscribed', 'SUBSCRIBER', 'OK', CASE WHEN g % 3 = 0 THEN '["vip"]'::jsonb ELSE '[]'::jsonb END,
			CASE WHEN g % 3 = 0 THEN ?::timestamptz - (g % 700) * interval '1 day' END, CASE WHEN g % 3 = 0 THEN 1 ELSE 0 END, ?, ?
			FROM generate_series(?, ?) AS g`, now, now, now, lo, hi); err != nil {
			return fmt.Errorf("seed customers: %w", err)
		}
	}
	// Waiting enrollments: welcome at its D+3 step, cart-abandonment for a quarter.
	for _, q := range []string{
		`INSERT INTO enrollments (scenario_id, version, customer_id, entry_key, state, step, step_started_at, next_run_at, context, entered_at, updated_at)
			SELECT 'welcome', s.version, c.id, 'once', 'active', 'discount-survey', ?, ?::timestamptz + (c.id % 72) * interval '1 hour', '{}', ?, ?
			FROM customers c, scenarios s WHERE s.id = 'welcome'`,
		`INSERT INTO enrollments (scenario_id, version, customer_id, entry_key, state, step, step_started_at, next_run_at, context, entered_at, updated_at)
			SELECT 'cart-abandonment', s.version, c.id, 'cart', 'active', 'reminder-24h', ?, ?::timestamptz + (c.id % 24) * interval '1 hour', '{}', ?, ?
			FROM customers c, scenarios s WHERE s.id = 'cart-abandonment' AND c.id % 4 = 0`,
	} {
		if _, err := db.ExecContext(ctx, q, now, now, now.Add(-24*time.Hour), now); err != nil {
			return fmt.Errorf("seed enrollments: %w", err)
		}
		fmt.Println("  enrollments seeded")
		if false {
		}
	}
	svc := p.Campaigns()
	for i := range 52 {
		name, tmpl, seg := fmt.Sprintf("Week %d", i), "welcome", "tag:vip"
		if i%4 == 0 {
			seg = "all"
		}
		c, err := svc.Create(ctx, campaign.Input{Name: &name, Template: &tmpl, Audience: &seg})
		if err != nil {
			return err
		}
		at := now.Add(time.Duration(i)*7*24*time.Hour + 10*time.Hour)
		// Straight to SCHEDULED: the warnings of scheduleCampaign run a
		// forecast each, which is not what is timed here.
		if _, err := db.NewUpdate().Model((*campaign.Campaign)(nil)).Set("status = ?", campaign.StatusScheduled).
			Set("scheduled_at = ?", at).Where("id = ?", c.ID).Exec(ctx); err != nil {
			return err
		}
	}
	if _, err := db.ExecContext(ctx, "ANALYZE customers"); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "ANALYZE enrollments"); err != nil {
		return err
	}
	fmt.Printf("seeded %d customers, %d-ish enrollments and 52 campaigns in %s (not timed)\n", *n, *n+*n/4, time.Since(start).Round(time.Millisecond))

	// Reference: the bare reads.
	start = time.Now()
	var rows int
	for _, q := range []string{
		`SELECT count(*) FROM (SELECT c.id, c.time_zone FROM customers c WHERE c.email_normalized IS NOT NULL AND c.consent_state = 'subscribed') t`,
		`SELECT count(*) FROM (SELECT e.id, e.customer_id, c.time_zone, e.scenario_id, e.version, e.step, e.next_run_at FROM enrollments e JOIN customers c ON c.id = e.customer_id WHERE e.state = 'active') t`,
		`SELECT count(*) FROM (SELECT c.id, c.time_zone, c.first_order_at FROM customers c WHERE c.first_order_at IS NOT NULL) t`,
	} {
		var k int
		if err := db.QueryRowContext(ctx, q).Scan(&k); err != nil {
			return fmt.Errorf("reference: %w", err)
		}
		rows += k
	}
	var audiences int
	for range 52 {
		var k int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT c.id, c.time_zone FROM customers c WHERE c.email_normalized IS NOT NULL AND c.consent_state = 'subscribed' AND c.tags @> '["vip"]') t`).Scan(&k); err != nil {
			return err
		}
		audiences += k
	}
	ref := time.Since(start)

	if path := os.Getenv("BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	start = time.Now()
	fc, err := p.Forecaster().Forecast(ctx, now, now.AddDate(1, 0, 0), "")
	if err != nil {
		return fmt.Errorf("forecast: %w", err)
	}
	took := time.Since(start)
	if *check {
		one := *p.Forecaster()
		one.PerCustomer = true
		each, err := one.Forecast(ctx, now, now.AddDate(1, 0, 0), "")
		if err != nil {
			return fmt.Errorf("forecast one by one: %w", err)
		}
		each.Cohorts = fc.Cohorts
		if !reflect.DeepEqual(each, fc) {
			return fmt.Errorf("check: the forecast by cohorts differs from the one customer by customer")
		}
		fmt.Println("check:     the same projection simulated one customer at a time")
	}
	var sends, over, deferred, skipped int
	var expected float64
	for _, d := range fc.Days {
		sends += d.Sends
		over += d.OverCap
		expected += d.Expected
		for _, pd := range d.Programs {
			deferred += pd.Deferred
			skipped += pd.Skipped
		}
	}
	fmt.Printf("forecast:  %d days on %d customers in %s (target 5 s): %d sends, %d deferrals, %d skips, %d customer-days over the cap, %.0f expected; %d customers in %d cohorts\n",
		len(fc.Days), *n, took.Round(time.Millisecond), sends, deferred, skipped, over, expected, fc.Customers, fc.Cohorts)
	fmt.Printf("reference: the bare reads (%d rows, 52 tag audiences of %d rows in all) in %s\n", rows, audiences, ref.Round(time.Millisecond))
	fmt.Printf("ratio:     the forecast takes %.1fx the time of its bare reads\n", took.Seconds()/ref.Seconds())
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
