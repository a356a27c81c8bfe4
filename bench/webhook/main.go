// Command webhook measures verified webhook ingest on PostgreSQL against
// pgbench in the same run.
//
// It starts the plugin on a fresh PostgreSQL schema, serves it over loopback
// HTTP, and posts Shopify's orders/create sample, signed, with a unique
// X-Shopify-Event-Id per request, from 32 concurrent clients for the given
// duration: each 200 means the raw delivery was verified and committed to
// the inbox. It then runs a paced phase at a fixed rate (1,000 deliveries a
// second by default) and reports its latency. Finally it runs pgbench with
// 32 clients, each transaction inserting one row of the same body into a
// scratch table, and prints both rates and their ratio.
//
//	go run ./bench/webhook -pg 'postgres://postgres@127.0.0.1:5432/refrain_test?sslmode=disable'
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/refrain-dev/refrain/plugin"
	"github.com/refrain-dev/refrain/plugin/store"
	"github.com/uptrace/bun"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	pg       string
	fixture  string
	clients  int
	duration time.Duration
	rate     int
	pgbench  string
	conns    int
}

func run() error {
	var o options
	flag.StringVar(&o.pg, "pg", envOr("REFRAIN_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/refrain_test?sslmode=disable"), "PostgreSQL URL")
	flag.StringVar(&o.fixture, "fixture", filepath.Join("..", "shared", "fixtures", "webhooks", "shopify_orders_create.json"), "the body to post")
	flag.IntVar(&o.clients, "clients", 32, "concurrent clients (and pgbench clients)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each phase")
	flag.IntVar(&o.rate, "rate", 1000, "deliveries per second of the paced phase")
	flag.StringVar(&o.pgbench, "pgbench", "", "pgbench binary (default: PATH, then /usr/lib/postgresql/15/bin/pgbench)")
	flag.IntVar(&o.conns, "conns", 32, "database connections of the plugin (REFRAIN_DATABASE_MAX_CONNS)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the ingest phase to this file")
	flag.Parse()

	ctx := context.Background()
	body, err := os.ReadFile(o.fixture)
	if err != nil {
		return fmt.Errorf("read fixture (run from the repository root): %w", err)
	}
	schema, err := freshSchema(ctx, o.pg)
	if err != nil {
		return err
	}
	fmt.Printf("schema %s, body %d bytes, %d clients, %s per phase\n", schema, len(body), o.clients, o.duration)

	const secret = "bench-shopify-secret"
	db, err := store.Open(ctx, o.pg, &store.Options{SearchPath: schema, MaxOpenConns: o.conns})
	if err != nil {
		return err
	}
	defer db.Close()
	cfg := plugin.DefaultConfig()
	cfg.DatabaseURL = o.pg
	cfg.ShopifySecret = secret
	// Ingest only: processing is asynchronous and is not what is measured.
	cfg.InboxWorkers = 0
	p, err := plugin.New(ctx, cfg, plugin.WithDB(db), plugin.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	target := "http://" + ln.Addr().String() + "/webhooks/shopify"

	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	sig := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, DisableCompression: true}}
	var seq atomic.Int64
	post := func() (time.Duration, error) {
		req, _ := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Shopify-Topic", "orders/create")
		req.Header.Set("X-Shopify-Hmac-Sha256", sig)
		req.Header.Set("X-Shopify-Event-Id", "bench-"+strconv.FormatInt(seq.Add(1), 10))
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("status %d", resp.StatusCode)
		}
		return time.Since(start), nil
	}

	// Warm up connections and caches.
	if _, _, err := closedLoop(post, o.clients, time.Second); err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	lat, rate, err := closedLoop(post, o.clients, o.duration)
	pprof.StopCPUProfile()
	if err != nil {
		return err
	}
	fmt.Printf("ingest, %d clients:   %8.0f deliveries/s   p50 %6.2f ms   p99 %6.2f ms   (%d deliveries)\n",
		o.clients, rate, ms(pct(lat, 50)), ms(pct(lat, 99)), len(lat))

	paced, achieved, err := pacedLoop(post, o.rate, o.duration)
	if err != nil {
		return err
	}
	fmt.Printf("ingest, paced %d/s: %8.0f deliveries/s   p50 %6.2f ms   p99 %6.2f ms   (%d deliveries)\n",
		o.rate, achieved, ms(pct(paced, 50)), ms(pct(paced, 99)), len(paced))

	var stored int
	if err := db.NewRaw("SELECT count(*) FROM inbound_events").Scan(ctx, &stored); err != nil {
		return err
	}
	fmt.Printf("inbox rows committed: %d\n", stored)

	wire, err := pgbench(ctx, o, db, schema, body, true)
	if err != nil {
		return err
	}
	server, err := pgbench(ctx, o, db, schema, body, false)
	if err != nil {
		return err
	}
	fmt.Printf("pgbench, %d clients:  %8.0f tps  body sent as a parameter (-M prepared)\n", o.clients, wire)
	fmt.Printf("pgbench, %d clients:  %8.0f tps  body copied server-side (INSERT ... SELECT)\n", o.clients, server)
	ref := max(wire, server)
	fmt.Printf("ratio ingest / pgbench: %.0f%% of the faster pgbench (%.0f%% of the other); target at least 50%%\n",
		100*rate/ref, 100*rate/min(wire, server))
	if _, err := db.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
		return fmt.Errorf("drop bench schema: %w", err)
	}
	return nil
}

// closedLoop runs clients goroutines posting back to back for d and returns
// every latency and the rate achieved.
func closedLoop(post func() (time.Duration, error), clients int, d time.Duration) ([]time.Duration, float64, error) {
	var (
		mu    sync.Mutex
		all   []time.Duration
		first error
		wg    sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(deadline) {
				l, err := post()
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
				mine = append(mine, l)
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all, float64(len(all)) / time.Since(start).Seconds(), first
}

// pacedLoop sends rate deliveries a second for d, each on schedule in its
// own goroutine (an open loop, so a slow answer does not delay the next send).
func pacedLoop(post func() (time.Duration, error), rate int, d time.Duration) ([]time.Duration, float64, error) {
	var (
		mu    sync.Mutex
		all   []time.Duration
		first error
		wg    sync.WaitGroup
	)
	n := int(d.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := range n {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := post()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = err
				}
				return
			}
			all = append(all, l)
		}()
	}
	wg.Wait()
	return all, float64(len(all)) / time.Since(start).Seconds(), first
}

// freshSchema creates an empty schema for this run.
func freshSchema(ctx context.Context, pg string) (string, error) {
	admin, err := store.Open(ctx, pg, &store.Options{MaxOpenConns: 1})
	if err != nil {
		return "", fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer admin.Close()
	var b [4]byte
	_, _ = rand.Read(b[:])
	schema := "bench_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", fmt.Errorf("create bench schema: %w", err)
	}
	return schema, nil
}

// pgbench inserts one row of the same body per transaction into a scratch
// table with as many clients and returns the transactions per second.
func pgbench(ctx context.Context, o options, db *bun.DB, schema string, body []byte, overWire bool) (float64, error) {
	bin := o.pgbench
	if bin == "" {
		if path, err := exec.LookPath("pgbench"); err == nil {
			bin = path
		} else {
			bin = "/usr/lib/postgresql/15/bin/pgbench"
		}
	}
	// The same columns the inbox writes for a delivery and the same body:
	// either sent over the wire as a parameter of each transaction (-D, -M
	// prepared), or copied server-side from a one-row template table.
	for _, q := range []string{
		"DROP TABLE IF EXISTS bench_scratch",
		"CREATE TABLE bench_scratch (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, " +
			"dedupe_key TEXT NOT NULL, body BYTEA NOT NULL, received_at TIMESTAMPTZ NOT NULL DEFAULT now(), UNIQUE (dedupe_key))",
		"CREATE TABLE IF NOT EXISTS bench_template (body BYTEA NOT NULL)",
		"TRUNCATE bench_template",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return 0, fmt.Errorf("prepare pgbench tables: %w", err)
		}
	}
	if _, err := db.NewRaw("INSERT INTO bench_template (body) VALUES (?)", body).Exec(ctx); err != nil {
		return 0, fmt.Errorf("prepare pgbench template: %w", err)
	}
	insert := "INSERT INTO bench_scratch (dedupe_key, body) SELECT 'k' || :k, body FROM bench_template ON CONFLICT (dedupe_key) DO NOTHING;\n"
	args := []string{"-n"}
	if overWire {
		insert = "INSERT INTO bench_scratch (dedupe_key, body) VALUES ('k' || :k, convert_to(:body, 'UTF8')) ON CONFLICT (dedupe_key) DO NOTHING;\n"
		args = append(args, "-M", "prepared", "-D", "body="+string(body))
	}
	script, err := os.CreateTemp("", "refrain-pgbench-*.sql")
	if err != nil {
		return 0, err
	}
	defer os.Remove(script.Name())
	_, _ = script.WriteString("\\set k random(1, 9000000000000)\n" + insert)
	if err := script.Close(); err != nil {
		return 0, err
	}
	u, err := url.Parse(o.pg)
	if err != nil {
		return 0, fmt.Errorf("parse -pg: %w", err)
	}
	args = append(args, "-c", strconv.Itoa(o.clients), "-j", "4", "-T", strconv.Itoa(int(o.duration.Seconds())),
		"-f", script.Name(), "-h", u.Hostname(), "-p", u.Port(), "-U", u.User.Username(), strings.TrimPrefix(u.Path, "/"))
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "PGOPTIONS=-c search_path="+schema)
	if pw, ok := u.User.Password(); ok {
		cmd.Env = append(cmd.Env, "PGPASSWORD="+pw)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("run %s (apt-get install postgresql-contrib): %w\n%s", bin, err, out)
	}
	m := regexp.MustCompile(`tps = ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no tps in pgbench output:\n%s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

func pct(ls []time.Duration, p float64) time.Duration {
	if len(ls) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ls...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
