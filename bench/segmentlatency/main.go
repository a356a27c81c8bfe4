// Command segmentlatency measures how long a change to a customer takes to
// become a segment membership change, with several replicas of the built
// binary on one PostgreSQL database, through HTTP only.
//
// Two paths are timed, each for -n customers sent at -rate per second,
// spread over the replicas in turn:
//
//   - an event: trackEvent (GraphQL, admin key) writes wishlist.added for a
//     new customer; the segment `events("wishlist.added", days(30)) > 0`
//     takes it in when a replica's refresh follower reads the event log
//     (REFRAIN_SEGMENT_REFRESH_POLL);
//   - a webhook: a signed Shopify orders/create for a new customer; the
//     segment `orders_count > 0` takes it in inside the inbox transaction
//     that applies the order.
//
// The latency of each customer is from the moment its request was sent to
// the entered_at of its membership (segment_history; both clocks are this
// machine's). The reference, in the same run, is the request itself: its
// round trip until the replica answered. The program prints p50, p95, p99
// and max of both, their ratio, and checks that every customer entered
// exactly once (one history row, one segment.entered event) although every
// replica ran the followers and sweeps.
//
//	go run ./bench/segmentlatency [-pg postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable] [-n 300] [-rate 20] [-replicas 2]
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/store"
)

const (
	adminKey      = "bench-segment-latency-admin-key-0123456789"
	jwtSecret     = "bench-segment-latency-jwt-secret-0123456789abcdef"
	shopifySecret = "bench-segment-latency-shopify-secret"
)

type options struct {
	pg       string
	n        int
	rate     float64
	replicas int
	fixtures string
	poll     string
}

func main() {
	var o options
	flag.StringVar(&o.pg, "pg", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL URL of a database to create the bench database from (it is created and dropped)")
	flag.IntVar(&o.n, "n", 300, "customers per path")
	flag.Float64Var(&o.rate, "rate", 20, "requests per second per path")
	flag.IntVar(&o.replicas, "replicas", 2, "replicas of refrain serve")
	flag.StringVar(&o.fixtures, "fixtures", "testdata/webhooks", "the webhook fixtures directory")
	flag.StringVar(&o.poll, "refresh-poll", "2s", "REFRAIN_SEGMENT_REFRESH_POLL of the replicas")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type replica struct {
	url string
	cmd *exec.Cmd
}

// sample is one customer's request: when it was sent and answered.
type sample struct {
	key        string // the customer's email
	sent, done time.Time
}

func run(o options) error {
	if o.n <= 0 || o.rate <= 0 || o.replicas <= 0 {
		return fmt.Errorf("-n, -rate and -replicas must be positive")
	}
	order, err := os.ReadFile(filepath.Join(o.fixtures, "shopify_orders_create.json"))
	if err != nil {
		return fmt.Errorf("read the Shopify order fixture (run from the repository root): %w", err)
	}
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "refrain-seglat-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "refrain")
	build := exec.Command("go", "build", "-o", bin, "./cmd/refrain")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/refrain: %w", err)
	}

	admin, err := store.Open(ctx, o.pg, nil)
	if err != nil {
		return err
	}
	defer admin.Close()
	dbName := fmt.Sprintf("refrain_seglat_%d", time.Now().Unix())
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+dbName); err != nil {
		return fmt.Errorf("create database %s: %w", dbName, err)
	}
	defer func() {
		_, _ = admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+dbName+" WITH (FORCE)")
	}()
	u, err := url.Parse(o.pg)
	if err != nil {
		return err
	}
	u.Path = "/" + dbName
	dbURL := u.String()

	var reps []*replica
	defer func() {
		for _, r := range reps {
			_ = r.cmd.Process.Signal(syscall.SIGTERM)
			_ = r.cmd.Wait()
		}
	}()
	for i := 0; i < o.replicas; i++ {
		r, err := start(bin, dbURL, o.poll, filepath.Join(tmp, fmt.Sprintf("replica-%d.log", i)))
		if err != nil {
			return err
		}
		reps = append(reps, r)
	}
	db, err := store.Open(ctx, dbURL, nil)
	if err != nil {
		return err
	}
	defer db.Close()

	for name, rule := range map[string]string{"wishlisters": `events("wishlist.added", days(30)) > 0`, "buyers": `orders_count > 0`} {
		var out struct {
			Refrain struct {
				UpsertSegment struct {
					UserErrors []struct{ Message string } `json:"userErrors"`
				} `json:"upsertSegment"`
			} `json:"refrain"`
		}
		if err := graphql(reps[0].url, `mutation($n: String!, $r: String!) { refrain { upsertSegment(input: { name: $n, rule: $r }) { userErrors { message } } } }`,
			map[string]any{"n": name, "r": rule}, &out); err != nil {
			return err
		}
		if ue := out.Refrain.UpsertSegment.UserErrors; len(ue) > 0 {
			return fmt.Errorf("segment %s: %s", name, ue[0].Message)
		}
	}
	fmt.Printf("%d replicas of refrain serve on PostgreSQL, REFRAIN_SEGMENT_REFRESH_POLL=%s; %d customers per path at %.0f/s\n", o.replicas, o.poll, o.n, o.rate)

	run := fmt.Sprintf("%d", time.Now().Unix())
	events := pace(o, reps, func(i int, base string) (string, error) {
		email := fmt.Sprintf("wish-%s-%d@bench.test", run, i)
		var out struct {
			Refrain struct {
				TrackEvent struct {
					UserErrors []struct{ Message string } `json:"userErrors"`
				} `json:"trackEvent"`
			} `json:"refrain"`
		}
		err := graphql(base, `mutation($e: String!) { refrain { trackEvent(input: { email: $e, type: "wishlist.added" }) { userErrors { message } } } }`,
			map[string]any{"e": email}, &out)
		if err == nil && len(out.Refrain.TrackEvent.UserErrors) > 0 {
			err = fmt.Errorf("trackEvent: %s", out.Refrain.TrackEvent.UserErrors[0].Message)
		}
		return email, err
	})
	webhooks := pace(o, reps, func(i int, base string) (string, error) {
		email := fmt.Sprintf("buy-%s-%d@bench.test", run, i)
		body, err := orderBody(order, email, int64(8_000_000_000+i))
		if err != nil {
			return "", err
		}
		return email, shopify(base, "orders/create", body)
	})
	if events.err != nil {
		return events.err
	}
	if webhooks.err != nil {
		return webhooks.err
	}

	fmt.Println()
	fmt.Println("| path | requests | request round trip p50 / p95 | event to membership p50 / p95 / p99 / max | p95 ratio to the round trip | entered once |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, p := range []struct {
		name, segment string
		res           paced
	}{{"trackEvent (refresh follower)", "wishlisters", events}, {"Shopify orders/create (inbox transaction)", "buyers", webhooks}} {
		lat, once, err := memberships(ctx, db, p.segment, p.res.samples)
		if err != nil {
			return err
		}
		rt := make([]time.Duration, len(p.res.samples))
		for i, s := range p.res.samples {
			rt[i] = s.done.Sub(s.sent)
		}
		slices.Sort(rt)
		slices.Sort(lat)
		fmt.Printf("| %s | %d | %s / %s | %s / %s / %s / %s | %.1fx | %s |\n", p.name, len(p.res.samples),
			ms(q(rt, 0.5)), ms(q(rt, 0.95)), ms(q(lat, 0.5)), ms(q(lat, 0.95)), ms(q(lat, 0.99)), ms(lat[len(lat)-1]),
			float64(q(lat, 0.95))/float64(q(rt, 0.95)), once)
		if q(lat, 0.95) > 5*time.Second {
			fmt.Printf("  %s: p95 %s is over the 5 s target\n", p.name, ms(q(lat, 0.95)))
		}
	}
	return nil
}

type paced struct {
	samples []sample
	err     error
}

// pace sends o.n requests at o.rate, in turn to each replica.
func pace(o options, reps []*replica, send func(i int, base string) (string, error)) paced {
	var (
		mu  sync.Mutex
		out paced
		wg  sync.WaitGroup
	)
	tick := time.NewTicker(time.Duration(float64(time.Second) / o.rate))
	defer tick.Stop()
	for i := 0; i < o.n; i++ {
		<-tick.C
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sent := time.Now()
			key, err := send(i, reps[i%len(reps)].url)
			done := time.Now()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if out.err == nil {
					out.err = err
				}
				return
			}
			out.samples = append(out.samples, sample{key: key, sent: sent, done: done})
		}(i)
	}
	wg.Wait()
	return out
}

// memberships waits (up to a minute) for every customer of samples to be
// in segment, then returns each one's latency, from its request to its
// entry, and whether each entered exactly once.
func memberships(ctx context.Context, db *bun.DB, segment string, samples []sample) ([]time.Duration, string, error) {
	type row struct {
		Email     string    `bun:"email"`
		EnteredAt time.Time `bun:"entered_at"`
		Rows      int       `bun:"rows"`
		Events    int       `bun:"events"`
	}
	var rows []row
	deadline := time.Now().Add(time.Minute)
	for {
		rows = rows[:0]
		err := db.NewRaw(`SELECT c.email, MIN(h.entered_at) AS entered_at, COUNT(*) AS rows,
			(SELECT COUNT(*) FROM customer_events AS e WHERE e.customer_id = c.id AND e.type = 'segment.entered'
				AND e.properties->>'segment' = ?) AS events
			FROM segment_history AS h JOIN segments AS s ON s.id = h.segment_id JOIN customers AS c ON c.id = h.customer_id
			WHERE s.name = ? GROUP BY c.id, c.email`, segment, segment).Scan(ctx, &rows)
		if err != nil {
			return nil, "", fmt.Errorf("read %s memberships: %w", segment, err)
		}
		if len(rows) >= len(samples) {
			break
		}
		if time.Now().After(deadline) {
			return nil, "", fmt.Errorf("segment %s: %d of %d customers entered after a minute", segment, len(rows), len(samples))
		}
		time.Sleep(200 * time.Millisecond)
	}
	entered := map[string]row{}
	for _, r := range rows {
		entered[r.Email] = r
	}
	var lat []time.Duration
	once := 0
	for _, s := range samples {
		r, ok := entered[s.key]
		if !ok {
			return nil, "", fmt.Errorf("segment %s: %s never entered", segment, s.key)
		}
		lat = append(lat, r.EnteredAt.Sub(s.sent))
		if r.Rows == 1 && r.Events == 1 {
			once++
		}
	}
	verdict := fmt.Sprintf("%d of %d", once, len(samples))
	return lat, verdict, nil
}

func q(xs []time.Duration, p float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	i := int(p*float64(len(xs))+0.5) - 1
	return xs[max(0, min(i, len(xs)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func start(bin, dbURL, poll, logPath string) (*replica, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("REFRAIN_LISTEN=127.0.0.1:%d", port),
		"REFRAIN_DATABASE_URL="+dbURL,
		"REFRAIN_ADMIN_API_KEY="+adminKey,
		"REFRAIN_JWT_SECRET="+jwtSecret,
		"REFRAIN_SHOPIFY_SECRET="+shopifySecret,
		"REFRAIN_SEGMENT_REFRESH_POLL="+poll,
		"REFRAIN_PRESSURE_QUIET_HOURS=none",
		"REFRAIN_LOG_FORMAT=json",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &replica{url: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd}
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(r.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return nil, fmt.Errorf("replica at %s not ready after a minute; see %s", r.url, logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func graphql(base, query string, vars map[string]any, out any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, base+"/graphql", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var res struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return fmt.Errorf("graphql: status %d: %s", resp.StatusCode, raw)
	}
	if len(res.Errors) > 0 {
		return fmt.Errorf("graphql: %s", res.Errors[0].Message)
	}
	return json.Unmarshal(res.Data, out)
}

// orderBody is the Shopify fixture order for a new customer.
func orderBody(fixture []byte, email string, id int64) ([]byte, error) {
	var body map[string]any
	if err := json.Unmarshal(fixture, &body); err != nil {
		return nil, err
	}
	now := time.Now().UTC().Format(time.RFC3339)
	body["id"], body["email"], body["contact_email"] = id, email, email
	body["admin_graphql_api_id"] = fmt.Sprintf("gid://shopify/Order/%d", id)
	body["created_at"], body["processed_at"], body["updated_at"] = now, now, now
	body["financial_status"], body["cancelled_at"] = "paid", nil
	if c, ok := body["customer"].(map[string]any); ok {
		c["id"], c["email"], c["admin_graphql_api_id"] = id, email, fmt.Sprintf("gid://shopify/Customer/%d", id)
	}
	return json.Marshal(body)
}

func shopify(base, topic string, body []byte) error {
	mac := hmac.New(sha256.New, []byte(shopifySecret))
	mac.Write(body)
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	req, err := http.NewRequest(http.MethodPost, base+"/webhooks/shopify", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Shopify-Topic", topic)
	req.Header.Set("X-Shopify-Event-Id", hex.EncodeToString(id))
	req.Header.Set("X-Shopify-Shop-Domain", "bench.myshopify.com")
	req.Header.Set("X-Shopify-Hmac-Sha256", base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("shopify %s: status %d: %s", topic, resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	return nil
}
