// Command campaign measures a campaign to 1,000,000 customers on
// PostgreSQL through a local Mailgun-compatible sink (the batch API with
// recipient-variables), and, in the same run, listmonk sending the same
// number of subscribers through its postback messenger to the same sink.
//
// Refrain runs in a child process (so that its peak memory is its own):
// the campaign is created and scheduled, then the sender fixes the
// audience and sends batches of 1,000 (pressure decision for the batch and
// its message rows in one transaction, one shared body per locale, then one
// provider call per locale), several in flight, until the campaign is SENT. listmonk
// is an already-built binary given by -listmonk, run from its source
// directory (-listmonk-dir, for its queries, schema and static files) on a
// database of its own; it is installed there, given the subscribers, a list
// and a running campaign, and the postback messenger pointed at the sink
// with concurrency 20, message rate 1000 and batch size 5000. Rates are
// counted at the sink, from the first recipient to the last; peak memory is
// VmHWM of each sender process. Refrain's is given twice: while scheduling
// (scheduleCampaign answers with the forecast warnings, computed over the
// audience) and while sending (the peak is reset once the campaign is
// scheduled and the scheduling garbage returned to the system).
//
//	go run ./bench/campaign -n 1000000 [-pg URL] [-listmonk /tmp/listmonk/listmonk -listmonk-dir /tmp/listmonk]
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

type options struct {
	n           int
	pg          string
	schema      string
	role        string
	sink        string
	concurrency int
	listmonk    string
	listmonkDir string
	keep        bool
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run() error {
	var o options
	flag.IntVar(&o.n, "n", 1000000, "customers (and listmonk subscribers)")
	flag.StringVar(&o.pg, "pg", envOr("REFRAIN_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/refrain_test?sslmode=disable"), "PostgreSQL URL")
	flag.IntVar(&o.concurrency, "concurrency", 8, "Refrain campaign batches in flight (REFRAIN_CAMPAIGN_CONCURRENCY)")
	flag.StringVar(&o.listmonk, "listmonk", "", "path of a built listmonk binary (empty: skip the comparison)")
	flag.StringVar(&o.listmonkDir, "listmonk-dir", "", "listmonk source directory to run it from (default: the binary's directory)")
	flag.BoolVar(&o.keep, "keep", false, "keep the bench schema and database")
	flag.StringVar(&o.role, "role", "", "internal: sender runs Refrain's side in this process")
	flag.StringVar(&o.schema, "schema", "", "internal: the schema of the sender")
	flag.StringVar(&o.sink, "sink", "", "internal: the sink URL of the sender")
	flag.Parse()
	if o.role == "sender" {
		return sender(o)
	}
	return parent(o)
}

// sink counts the recipients of Mailgun batch calls and of listmonk postbacks.
type sink struct {
	recipients atomic.Int64
	calls      atomic.Int64
	mu         sync.Mutex
	first      time.Time
	last       time.Time
}

var toPart = []byte(`name="to"`)

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var n int
	switch {
	case strings.HasSuffix(r.URL.Path, "/messages"):
		n = bytes.Count(body, toPart)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"<%d.bench@mg.bench.example>","message":"Queued. Thank you."}`, s.calls.Load())
	case r.URL.Path == "/postback":
		var pb struct {
			Recipients []json.RawMessage `json:"recipients"`
		}
		if err := json.Unmarshal(body, &pb); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		n = len(pb.Recipients)
		w.WriteHeader(http.StatusOK)
	default:
		http.Error(w, "no route", http.StatusNotFound)
		return
	}
	s.calls.Add(1)
	now := time.Now()
	s.mu.Lock()
	if s.first.IsZero() {
		s.first = now
	}
	s.last = now
	s.mu.Unlock()
	s.recipients.Add(int64(n))
}

func (s *sink) reset() {
	s.mu.Lock()
	s.first, s.last = time.Time{}, time.Time{}
	s.mu.Unlock()
	s.recipients.Store(0)
	s.calls.Store(0)
}

func (s *sink) span() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last.Sub(s.first)
}

type result struct {
	name    string
	sent    int64
	calls   int64
	span    time.Duration
	wall    time.Duration
	peakKiB int64
	// schedPeakKiB is Refrain's peak while scheduling (the forecast
	// warnings), before the send; peakKiB is then the send's own.
	schedPeakKiB int64
}

func (r result) rate() float64 { return float64(r.sent) / r.span.Seconds() }

func parent(o options) error {
	ctx := context.Background()
	sk := &sink{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: sk, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	sinkURL := "http://" + ln.Addr().String()

	ref, err := runRefrain(ctx, o, sk, sinkURL)
	if err != nil {
		return err
	}
	fmt.Printf("refrain:  %d recipients in %d Mailgun batch calls, %s first to last (%s with the audience fixed at start): %.0f msg/s, peak RSS %.1f MiB sending (%.1f MiB while scheduling, with the forecast warnings)\n",
		ref.sent, ref.calls, ref.span.Round(time.Millisecond), ref.wall.Round(time.Millisecond), ref.rate(), float64(ref.peakKiB)/1024, float64(ref.schedPeakKiB)/1024)
	if o.listmonk == "" {
		fmt.Println("listmonk: skipped (no -listmonk binary given)")
		return nil
	}
	sk.reset()
	lm, err := runListmonk(ctx, o, sk, sinkURL)
	if err != nil {
		return fmt.Errorf("listmonk: %w", err)
	}
	fmt.Printf("listmonk: %d recipients in %d postback calls, %s first to last: %.0f msg/s, peak RSS %.1f MiB (concurrency 20, message rate 1000, batch 5000)\n",
		lm.sent, lm.calls, lm.span.Round(time.Millisecond), lm.rate(), float64(lm.peakKiB)/1024)
	fmt.Printf("ratio:    refrain sends %.2fx listmonk's rate with %.2fx its peak memory (%.2fx counting scheduling)\n", ref.rate()/lm.rate(),
		float64(ref.peakKiB)/float64(lm.peakKiB), float64(max(ref.peakKiB, ref.schedPeakKiB))/float64(lm.peakKiB))
	return nil
}

func runRefrain(ctx context.Context, o options, sk *sink, sinkURL string) (result, error) {
	admin, err := store.Open(ctx, o.pg, &store.Options{MaxOpenConns: 2})
	if err != nil {
		return result{}, err
	}
	defer admin.Close()
	schema := fmt.Sprintf("bench_campaign_%d", time.Now().UnixNano())
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		return result{}, err
	}
	if !o.keep {
		defer admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	}
	db, err := store.Open(ctx, o.pg, &store.Options{SearchPath: schema, MaxOpenConns: 4})
	if err != nil {
		return result{}, err
	}
	m, err := store.NewMigrator(db)
	if err != nil {
		return result{}, err
	}
	if _, err := m.Up(ctx); err != nil {
		return result{}, err
	}
	start := time.Now()
	// Subscribed customers with names and four locales, set-based, in
	// chunks (each statement stays under the driver's read timeout).
	for lo := 1; lo <= o.n; lo += 100000 {
		if _, err := db.ExecContext(ctx, `INSERT INTO customers (public_id, email, email_normalized, first_name, last_name, locale,
		source, consent_state, consent_at, stage, hygiene_status, created_at, updated_at)
		SELECT 'cus_bench' || g, 'customer' || g || '@bench.example', 'customer' || g || '@bench.example', 'Customer' || g, 'Bench',
		(ARRAY['en', 'fr', 'en-GB', 'es'])[1 + g % 4], 'import', 'subscribed', now(), 'SUBSCRIBER', 'OK', now(), now()
		FROM generate_series(?, ?) AS g`, lo, min(lo+99999, o.n)); err != nil {
			return result{}, fmt.Errorf("seed customers: %w", err)
		}
	}
	if _, err := db.ExecContext(ctx, "ANALYZE customers"); err != nil {
		return result{}, err
	}
	db.Close()
	fmt.Printf("seeded %d customers in %s (not timed)\n", o.n, time.Since(start).Round(time.Millisecond))

	exe, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	cmd := exec.CommandContext(ctx, exe, "-role", "sender", "-pg", o.pg, "-schema", schema, "-sink", sinkURL,
		"-n", strconv.Itoa(o.n), "-concurrency", strconv.Itoa(o.concurrency))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return result{}, err
	}
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	res := result{name: "refrain"}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "peak-kib "):
			res.peakKiB, _ = strconv.ParseInt(strings.TrimPrefix(line, "peak-kib "), 10, 64)
		case strings.HasPrefix(line, "schedule-peak-kib "):
			res.schedPeakKiB, _ = strconv.ParseInt(strings.Fields(line)[1], 10, 64)
		case strings.HasPrefix(line, "wall "):
			res.wall, _ = time.ParseDuration(strings.TrimPrefix(line, "wall "))
		default:
			fmt.Println("  sender:", line)
		}
	}
	if err := cmd.Wait(); err != nil {
		return result{}, fmt.Errorf("sender: %w", err)
	}
	res.sent, res.calls, res.span = sk.recipients.Load(), sk.calls.Load(), sk.span()
	if res.sent != int64(o.n) {
		return res, fmt.Errorf("the sink saw %d recipients, want %d", res.sent, o.n)
	}
	return res, nil
}

// sender is Refrain's side: the real plugin, the campaign created and
// scheduled through the service, the sender drained until SENT.
func sender(o options) error {
	ctx := context.Background()
	db, err := store.Open(ctx, o.pg, &store.Options{SearchPath: o.schema, MaxOpenConns: 2*o.concurrency + 4})
	if err != nil {
		return err
	}
	defer db.Close()
	cfg := plugin.DefaultConfig()
	cfg.DatabaseURL = o.pg
	cfg.PublicURL, cfg.StoreURL = "https://refrain.bench.example", "https://bench.example"
	cfg.MailgunAPIKey, cfg.MailgunDomain, cfg.MailgunAPIBase = "key-bench", "mg.bench.example", o.sink
	cfg.SigningSecret = strings.Repeat("b", 32)
	cfg.ScenariosLibrary = "none"
	cfg.CampaignConcurrency = o.concurrency
	// The policy is decided for every recipient; quiet hours would only
	// make the result depend on the time of day.
	cfg.PressureQuietHours = "none"
	cfg.LogLevel = "warn"
	p, err := plugin.New(ctx, cfg, plugin.WithDB(db), plugin.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
		plugin.WithHTTPClient(&http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}))
	if err != nil {
		return err
	}
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
	svc := p.Campaigns()
	name, tmpl, seg := "Bench", "welcome", "all"
	c, err := svc.Create(ctx, campaign.Input{Name: &name, Template: &tmpl, Audience: &seg, Values: map[string]string{"discount_code": "BENCH10"}})
	if err != nil {
		return err
	}
	if path := os.Getenv("BENCH_MEMPROFILE"); path != "" {
		// A heap profile half a minute into the send.
		go func() {
			time.Sleep(30 * time.Second)
			if f, err := os.Create(path); err == nil {
				_ = pprof.WriteHeapProfile(f)
				f.Close()
			}
		}()
	}
	now := time.Now()
	start := time.Now()
	_, warnings, err := svc.Schedule(ctx, c.ID, &now)
	if err != nil {
		return err
	}
	// scheduleCampaign answers with the forecast warnings; the peak up to
	// here is that of scheduling. Its garbage is then returned to the
	// system and the peak reset (clear_refs 5), so that the send has its own.
	fmt.Println("schedule-peak-kib", peakKiB("self"), len(warnings))
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return fmt.Errorf("reset the peak RSS: %w", err)
	}
	if err := svc.Drain(ctx); err != nil {
		return err
	}
	wall := time.Since(start)
	got, err := campaign.Get(ctx, db, c.ID)
	if err != nil {
		return err
	}
	if got.Status != campaign.StatusSent {
		return fmt.Errorf("campaign is %s after draining, want SENT", got.Status)
	}
	fmt.Println("audience", got.AudienceCount)
	fmt.Println("wall", wall)
	fmt.Println("peak-kib", peakKiB("self"))
	return nil
}

// peakKiB reads VmHWM of a process from /proc.
func peakKiB(pid string) int64 {
	raw, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return kb
		}
	}
	return 0
}

// runListmonk installs listmonk on a database of its own, gives it the
// subscribers, a list, a running campaign and the postback messenger, and
// runs it until the sink has seen every subscriber.
func runListmonk(ctx context.Context, o options, sk *sink, sinkURL string) (result, error) {
	dir := o.listmonkDir
	if dir == "" {
		dir = filepath.Dir(o.listmonk)
	}
	dbName := fmt.Sprintf("listmonk_bench_%d", time.Now().Unix())
	adminDB, err := store.Open(ctx, o.pg, &store.Options{MaxOpenConns: 1})
	if err != nil {
		return result{}, err
	}
	defer adminDB.Close()
	if _, err := adminDB.ExecContext(ctx, "CREATE DATABASE "+dbName); err != nil {
		return result{}, err
	}
	if !o.keep {
		defer adminDB.ExecContext(context.Background(), "DROP DATABASE "+dbName+" WITH (FORCE)")
	}
	host, port, user := "127.0.0.1", "5432", "postgres"
	if u, err := parsePG(o.pg); err == nil {
		host, port, user = u[0], u[1], u[2]
	}
	cfgPath := filepath.Join(os.TempDir(), dbName+".toml")
	cfg := fmt.Sprintf("[app]\naddress = \"127.0.0.1:0\"\n[db]\nhost = %q\nport = %s\nuser = %q\npassword = \"\"\ndatabase = %q\nssl_mode = \"disable\"\nmax_open = 25\nmax_idle = 25\nmax_lifetime = \"300s\"\nparams = \"\"\n",
		host, port, user, dbName)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return result{}, err
	}
	defer os.Remove(cfgPath)
	install := exec.CommandContext(ctx, o.listmonk, "--config", cfgPath, "--install", "--yes")
	install.Dir = dir
	install.Env = append(os.Environ(), "LISTMONK_ADMIN_USER=admin", "LISTMONK_ADMIN_PASSWORD=listmonkbench")
	if out, err := install.CombinedOutput(); err != nil {
		return result{}, fmt.Errorf("install: %v: %s", err, out)
	}
	lmURL := strings.Replace(o.pg, "/"+lastPath(o.pg), "/"+dbName, 1)
	db, err := store.Open(ctx, lmURL, &store.Options{MaxOpenConns: 2})
	if err != nil {
		return result{}, err
	}
	defer db.Close()
	messengers, _ := json.Marshal([]map[string]any{{"enabled": true, "name": "postback", "root_url": sinkURL + "/postback",
		"username": "", "password": "", "max_conns": 20, "retries": 1, "timeout": "30s"}})
	body := benchBody()
	start := time.Now()
	for _, q := range []string{
		`UPDATE settings SET value = '20' WHERE key = 'app.concurrency'`,
		`UPDATE settings SET value = '1000' WHERE key = 'app.message_rate'`,
		`UPDATE settings SET value = '5000' WHERE key = 'app.batch_size'`,
		`UPDATE settings SET value = '` + string(messengers) + `' WHERE key = 'messengers'`,
		`UPDATE settings SET value = 'false' WHERE key = 'app.check_updates'`,
		`INSERT INTO lists (uuid, name, type, optin) VALUES (gen_random_uuid(), 'bench', 'private', 'single')`,
		`INSERT INTO subscriber_lists (subscriber_id, list_id, status) SELECT s.id, l.id, 'confirmed' FROM subscribers s, lists l WHERE l.name = 'bench'`,
		`ANALYZE`,
	} {
		if strings.HasPrefix(q, "INSERT INTO subscriber_lists") {
			for lo := 1; lo <= o.n; lo += 100000 {
				if _, err := db.ExecContext(ctx, fmt.Sprintf(`INSERT INTO subscribers (uuid, email, name, attribs, status)
					SELECT gen_random_uuid(), 'customer' || g || '@bench.example', 'Customer' || g || ' Bench', '{}', 'enabled'
					FROM generate_series(%d, %d) AS g`, lo, min(lo+99999, o.n))); err != nil {
					return result{}, fmt.Errorf("prepare subscribers: %w", err)
				}
			}
		}
		if strings.HasPrefix(q, "INSERT INTO subscriber_lists") {
			for lo := 0; lo <= o.n+2; lo += 100000 {
				if _, err := db.ExecContext(ctx, q+fmt.Sprintf(" AND s.id > %d AND s.id <= %d", lo, lo+100000)); err != nil {
					return result{}, fmt.Errorf("prepare list: %w", err)
				}
			}
			continue
		}
		if _, err := db.ExecContext(ctx, q); err != nil {
			return result{}, fmt.Errorf("prepare: %w", err)
		}
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO campaigns (uuid, name, subject, from_email, body, content_type, status, messenger, template_id, type)
		VALUES (gen_random_uuid(), 'bench', 'Welcome, {{ .Subscriber.FirstName }}', 'Bench Shop <news@bench.example>', ?, 'html', 'running', 'postback',
		(SELECT id FROM templates WHERE is_default LIMIT 1), 'regular')`, body); err != nil {
		return result{}, fmt.Errorf("campaign: %w", err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO campaign_lists (campaign_id, list_id, list_name) SELECT c.id, l.id, l.name FROM campaigns c, lists l WHERE c.name = 'bench' AND l.name = 'bench'`); err != nil {
		return result{}, fmt.Errorf("campaign list: %w", err)
	}
	fmt.Printf("listmonk: seeded %d subscribers in %s (not timed)\n", o.n, time.Since(start).Round(time.Millisecond))
	cmd := exec.CommandContext(ctx, o.listmonk, "--config", cfgPath)
	cmd.Dir = dir
	logPath := filepath.Join(os.TempDir(), dbName+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return result{}, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	var peak int64
	deadline := time.Now().Add(30 * time.Minute)
	for sk.recipients.Load() < int64(o.n) {
		if time.Now().After(deadline) {
			return result{}, fmt.Errorf("the sink saw %d of %d recipients after 30 minutes (log: %s)", sk.recipients.Load(), o.n, logPath)
		}
		if cmd.ProcessState != nil {
			return result{}, fmt.Errorf("listmonk exited (log: %s)", logPath)
		}
		peak = max(peak, peakKiB(pid))
		time.Sleep(200 * time.Millisecond)
	}
	peak = max(peak, peakKiB(pid))
	return result{name: "listmonk", sent: sk.recipients.Load(), calls: sk.calls.Load(), span: sk.span(), peakKiB: peak}, nil
}

// benchBody is a campaign body of the size of Refrain's welcome mail.
func benchBody() string {
	var b strings.Builder
	b.WriteString(`<h1>Welcome, {{ .Subscriber.FirstName }}</h1><p>Thank you for joining Bench Shop.</p>`)
	for range 12 {
		b.WriteString(`<p>Our members get free shipping, early access to the sales and exclusive offers. Use the code BENCH10 on your next order.</p>`)
	}
	b.WriteString(`<p><a href="{{ UnsubscribeURL }}">Unsubscribe</a></p>`)
	return b.String()
}

func parsePG(raw string) ([3]string, error) {
	var out [3]string
	u := strings.TrimPrefix(strings.TrimPrefix(raw, "postgres://"), "postgresql://")
	at := strings.Index(u, "@")
	if at < 0 {
		return out, fmt.Errorf("no user in %q", raw)
	}
	user := strings.SplitN(u[:at], ":", 2)[0]
	hostPort := strings.SplitN(u[at+1:], "/", 2)[0]
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		host, port = hostPort, "5432"
	}
	return [3]string{host, port, user}, nil
}

func lastPath(raw string) string {
	u := strings.SplitN(raw, "?", 2)[0]
	return u[strings.LastIndex(u, "/")+1:]
}
