// Command segment measures segment evaluation. On PostgreSQL it builds
// -customers customers and -events customer events in a schema of its own,
// and times a full recompute of the sunset segment (the SQL set, then the
// diff against the stored members) against hand-written SQL of the same
// strategy in the same process, for the rollup rule and for an event-count
// rule; it prints both times and the ratio. On SQLite it times
// previewSegment's work (count and a sample of 10) on -sqlite-customers.
//
//	go run ./bench/segment -url "$REFRAIN_BENCH_POSTGRES_URL"
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/segment"
	"github.com/refrain-dev/refrain/plugin/store"
)

const (
	sunsetRule = `consent == "subscribed" && created_at < now - days(90) && (last_open_at == null || last_open_at < now - days(90)) && (last_order_at == null || last_order_at < now - days(180))`
	sunsetSQL  = `SELECT id FROM customers WHERE consent_state = 'subscribed' AND created_at < ? AND (last_open_at IS NULL OR last_open_at < ?) AND (last_order_at IS NULL OR last_order_at < ?) ORDER BY id`
	eventsRule = `consent == "subscribed" && events("order.created", days(180)) == 0 && events("page.viewed", days(30)) == 0`
	eventsSQL  = `SELECT c.id FROM customers AS c WHERE c.consent_state = 'subscribed'
	AND (SELECT COUNT(*) FROM customer_events AS e WHERE e.customer_id = c.id AND e.type = 'order.created' AND e.occurred_at >= ?) = 0
	AND (SELECT COUNT(*) FROM customer_events AS e WHERE e.customer_id = c.id AND e.type = 'page.viewed' AND e.occurred_at >= ?) = 0 ORDER BY c.id`
)

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func main() {
	url := flag.String("url", os.Getenv("REFRAIN_BENCH_POSTGRES_URL"), "PostgreSQL URL (a schema of its own is created and dropped); empty skips PostgreSQL")
	customers := flag.Int("customers", 1_000_000, "customers on PostgreSQL")
	events := flag.Int("events", 10_000_000, "customer events on PostgreSQL")
	sqliteCustomers := flag.Int("sqlite-customers", 100_000, "customers on SQLite for the preview")
	runs := flag.Int("runs", 5, "timed runs of each query (the best is kept)")
	flag.Parse()
	ctx := context.Background()
	if err := sqlitePreview(ctx, *sqliteCustomers, *runs); err != nil {
		log.Fatal(err)
	}
	if *url != "" {
		if err := postgres(ctx, *url, *customers, *events, *runs); err != nil {
			log.Fatal(err)
		}
	}
}

// fill writes n customers with spread dates and consent, the same on both
// databases (generate_series or a recursive CTE).
func fill(ctx context.Context, db bun.IDB, n int) error {
	// Chunks keep each statement under the driver's read timeout.
	for from := 1; from <= n; from += 100_000 {
		if err := fillRange(ctx, db, from, min(n, from+99_999)); err != nil {
			return err
		}
	}
	return nil
}

func fillRange(ctx context.Context, db bun.IDB, from, to int) error {
	series := "generate_series(?, ?) AS s(i)"
	ts := func(expr string) string { return "(?::timestamptz - (" + expr + ") * interval '1 day')" }
	if store.DialectOf(db) == store.SQLite {
		series = "(WITH RECURSIVE r(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM r WHERE i < ?) SELECT i FROM r) AS s"
		ts = func(expr string) string {
			return "strftime('%Y-%m-%d %H:%M:%S+00:00', ?, '-' || (" + expr + ") || ' days')"
		}
	}
	q := `INSERT INTO customers (public_id, email, email_normalized, source, consent_state, stage, orders_count, total_spent_minor,
		created_at, updated_at, last_open_at, last_order_at, time_zone)
		SELECT 'c' || i, 'c' || i || '@example.com', 'c' || i || '@example.com',
		CASE WHEN i % 7 = 0 THEN 'store' ELSE 'online' END,
		CASE WHEN i % 5 = 0 THEN 'unsubscribed' ELSE 'subscribed' END, 'SUBSCRIBER', i % 4, (i % 4) * 2500,
		` + ts("i % 500") + `, ` + ts("0") + `,
		CASE WHEN i % 3 = 0 THEN NULL ELSE ` + ts("(i * 7) % 200") + ` END,
		CASE WHEN i % 4 = 0 THEN NULL ELSE ` + ts("(i * 13) % 400") + ` END,
		CASE i % 3 WHEN 0 THEN 'Europe/Paris' WHEN 1 THEN 'America/New_York' END
		FROM ` + series
	_, err := db.NewRaw(q, now, now, now, now, from, to).Exec(ctx)
	return err
}

// both times a and b alternately, runs times each, and keeps the best of
// each, so that load from elsewhere on the machine falls on both.
func both(runs int, a, b func() error) (time.Duration, time.Duration, error) {
	var ba, bb time.Duration
	for i := 0; i < runs; i++ {
		da, err := best(1, a)
		if err != nil {
			return 0, 0, err
		}
		db, err := best(1, b)
		if err != nil {
			return 0, 0, err
		}
		if i == 0 || da < ba {
			ba = da
		}
		if i == 0 || db < bb {
			bb = db
		}
	}
	return ba, bb, nil
}

func best(runs int, fn func() error) (time.Duration, error) {
	var b time.Duration
	for i := 0; i < runs; i++ {
		start := time.Now()
		if err := fn(); err != nil {
			return 0, err
		}
		if d := time.Since(start); i == 0 || d < b {
			b = d
		}
	}
	return b, nil
}

func sqlitePreview(ctx context.Context, n, runs int) error {
	dir, err := os.MkdirTemp("", "bench-segment")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "bench.db"), nil)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := migrate(ctx, db); err != nil {
		return err
	}
	if err := fill(ctx, db, n); err != nil {
		return fmt.Errorf("fill sqlite: %w", err)
	}
	var count, hand int
	d, h, err := both(runs, func() error {
		var err error
		count, err = preview(ctx, db, sunsetRule)
		return err
	}, func() error {
		c90, c180 := now.AddDate(0, 0, -90), now.AddDate(0, 0, -180)
		return db.NewRaw(`SELECT COUNT(*) FROM customers WHERE consent_state = 'subscribed' AND created_at < ? AND (last_open_at IS NULL OR last_open_at < ?) AND (last_order_at IS NULL OR last_order_at < ?)`,
			c90, c90, c180).Scan(ctx, &hand)
	})
	if err != nil {
		return err
	}
	if hand != count {
		return fmt.Errorf("sqlite: the rule counts %d, the hand-written SQL %d", count, hand)
	}
	fmt.Printf("sqlite previewSegment (sunset, %d customers): %d match, %s (hand-written count %s, ratio %.2f)\n",
		n, count, d.Round(time.Millisecond), h.Round(time.Millisecond), float64(d)/float64(h))
	// A rule on the customers' own clocks runs refrain_local, a Go function,
	// on every row: timed against the hand-written sunset count above.
	const localRule = `consent == "subscribed" && weekday(created_at) >= 6 && hour(last_order_at) < 12`
	var local int
	dl, err := best(runs, func() error {
		var err error
		local, err = preview(ctx, db, localRule)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Printf("sqlite previewSegment (local time %s, %d customers): %d match, %s (%.2fx the hand-written sunset count)\n",
		localRule, n, local, dl.Round(time.Millisecond), float64(dl)/float64(h))
	return nil
}

// preview does what previewSegment does: parse, count, sample 10.
func preview(ctx context.Context, db bun.IDB, rule string) (int, error) {
	r, err := segment.Parse(rule)
	if err != nil {
		return 0, err
	}
	count, err := r.Count(ctx, db, now)
	if err != nil {
		return 0, err
	}
	var ids []int64
	return count, r.Query(db, now).Column("c.id").OrderExpr("c.id").Limit(10).Scan(ctx, &ids)
}

func migrate(ctx context.Context, db *bun.DB) error {
	m, err := store.NewMigrator(db)
	if err != nil {
		return err
	}
	_, err = m.Up(ctx)
	return err
}

func postgres(ctx context.Context, url string, customers, events, runs int) error {
	admin, err := store.Open(ctx, url, nil)
	if err != nil {
		return err
	}
	defer admin.Close()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	schema := "bench_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		return err
	}
	defer admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	sep := "?"
	if slices.Contains([]byte(url), '?') {
		sep = "&"
	}
	db, err := store.Open(ctx, url+sep+"search_path="+schema, &store.Options{SearchPath: schema, MaxOpenConns: 4, Timeout: 30 * time.Minute})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := migrate(ctx, db); err != nil {
		return err
	}
	start := time.Now()
	if err := fill(ctx, db, customers); err != nil {
		return fmt.Errorf("fill customers: %w", err)
	}
	for from := 1; from <= events; from += 500_000 {
		if _, err := db.NewRaw(`INSERT INTO customer_events (customer_id, type, occurred_at, properties, source, created_at)
			SELECT (i % ?) + 1, CASE WHEN i % 4 = 0 THEN 'order.created' ELSE 'page.viewed' END,
			?::timestamptz - ((i * 17) % 730) * interval '1 day', '{}', 'bench', ?
			FROM generate_series(?, ?) AS s(i)`, customers, now, now, from, min(events, from+499_999)).Exec(ctx); err != nil {
			return fmt.Errorf("fill events: %w", err)
		}
	}
	if _, err := db.ExecContext(ctx, "ANALYZE"); err != nil {
		return err
	}
	fmt.Printf("postgres: %d customers and %d events built in %s\n", customers, events, time.Since(start).Round(time.Second))
	sunset, err := segment.GetByName(ctx, db, "sunset")
	if err != nil {
		return err
	}
	for _, c := range []struct {
		name, rule, hand string
		args             []any
	}{
		{"rollup rule (sunset)", sunsetRule, sunsetSQL, []any{now.AddDate(0, 0, -90), now.AddDate(0, 0, -90), now.AddDate(0, 0, -180)}},
		{"event-count rule", eventsRule, eventsSQL, []any{now.AddDate(0, 0, -180), now.AddDate(0, 0, -30)}},
	} {
		if _, err := segment.Upsert(ctx, db, now, sunset.ID, "sunset", c.rule); err != nil {
			return err
		}
		// The stored members are the current answer (bulk, outside the
		// timing), so a recompute finds no change, as in steady state.
		if _, err := db.NewRaw("DELETE FROM segment_members WHERE segment_id = ?", sunset.ID).Exec(ctx); err != nil {
			return err
		}
		if _, err := db.NewRaw("INSERT INTO segment_members (segment_id, customer_id, entered_at) SELECT ?, id, ? FROM ("+c.hand+") AS m",
			append([]any{sunset.ID, now}, c.args...)...).Exec(ctx); err != nil {
			return err
		}
		var changes, size int
		seg, hand, err := both(runs, func() error {
			ch, err := segment.Recompute(ctx, db, now, &segment.Segment{ID: sunset.ID, Name: "sunset", Rule: c.rule})
			changes = len(ch)
			return err
		}, func() error {
			var want, have []int64
			if err := db.NewRaw(c.hand, c.args...).Scan(ctx, &want); err != nil {
				return err
			}
			if err := db.NewRaw("SELECT customer_id FROM segment_members WHERE segment_id = ? ORDER BY customer_id", sunset.ID).Scan(ctx, &have); err != nil {
				return err
			}
			size = len(want)
			if !slices.Equal(want, have) {
				return fmt.Errorf("hand-written diff found changes")
			}
			return nil
		})
		if err != nil {
			return err
		}
		if changes != 0 {
			return fmt.Errorf("%s: the recompute changed %d memberships; the rule and the hand-written SQL disagree", c.name, changes)
		}
		fmt.Printf("postgres full recompute, %s: %d members; segment %s, hand-written SQL %s, ratio %.2f\n",
			c.name, size, seg.Round(time.Millisecond), hand.Round(time.Millisecond), float64(seg)/float64(hand))
	}
	return nil
}
