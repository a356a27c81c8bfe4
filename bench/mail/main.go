// Command mail measures Refrain's campaign sending path: it renders and
// hands 100,000 personalised messages to a local Mailgun-compatible sink
// in batches of 1,000 through outbox.Service.SendBatch (which also writes
// one message row per recipient to SQLite, as production does), and prints
// messages per second and the peak resident memory of the process. As a
// reference measured in the same run, it replays the last batch request,
// already rendered and encoded, to the same sink as fast as one client can:
// the gap between the two is Refrain's own cost (rendering, personalising,
// row writes, request encoding).
//
//	go run ./bench/mail [-n 100000] [-batch 1000]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/kpi"
	"github.com/refrain-dev/refrain/plugin/mail"
	"github.com/refrain-dev/refrain/plugin/mail/link"
	"github.com/refrain-dev/refrain/plugin/mail/mailgun"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
	"github.com/refrain-dev/refrain/plugin/mail/template"
	"github.com/refrain-dev/refrain/plugin/store"
	"github.com/refrain-dev/refrain/scenarios/library/templates"
	"github.com/uptrace/bun"
)

// sink answers like Mailgun's POST /v3/<domain>/messages after reading the
// whole body, and keeps the last request for the reference replay.
type sink struct {
	requests   atomic.Int64
	recipients atomic.Int64
	mu         sync.Mutex
	lastBody   []byte
	lastType   string
	keep       bool
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.requests.Add(1)
	s.recipients.Add(int64(bytes.Count(body, []byte(`name="to"`))))
	if s.keep {
		s.mu.Lock()
		s.lastBody, s.lastType = body, r.Header.Get("Content-Type")
		s.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id":"<%d.bench@mg.bench.example>","message":"Queued. Thank you."}`, s.requests.Load())
}

func main() {
	n := flag.Int("n", 100000, "messages to send")
	batch := flag.Int("batch", mail.MaxBatchRecipients, "recipients per provider call")
	flag.Parse()
	if err := run(*n, *batch); err != nil {
		log.Fatal(err)
	}
}

func run(n, batchSize int) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "refrain-bench-mail")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "bench.db"), nil)
	if err != nil {
		return err
	}
	defer db.Close()
	m, err := store.NewMigrator(db)
	if err != nil {
		return err
	}
	if _, err := m.Up(ctx); err != nil {
		return err
	}

	start := time.Now()
	pks, err := seed(ctx, db, n)
	if err != nil {
		return err
	}
	fmt.Printf("seeded %d customers in %s (not timed below)\n", n, time.Since(start).Round(time.Millisecond))

	sk := &sink{keep: true}
	srv := httptest.NewServer(sk)
	defer srv.Close()
	sender, err := mailgun.New(mailgun.Config{APIKey: "key-bench", Domain: "mg.bench.example", APIBase: srv.URL}, &http.Client{}, nil, nil)
	if err != nil {
		return err
	}
	engine, err := template.New(nil)
	if err != nil {
		return err
	}
	if err := engine.Load(templates.FS); err != nil {
		return err
	}
	signer, err := link.New([]byte(strings.Repeat("b", 32)))
	if err != nil {
		return err
	}
	svc, err := outbox.New(outbox.Options{DB: db, Clock: clock.Real{}, Engine: engine, Signer: signer, Sender: sender,
		Reconciler: sender, Provider: "mailgun", Config: outbox.Config{From: "Bench Shop <news@bench.example>",
			PublicURL: "https://bench.example", StoreName: "Bench Shop", Tracking: true}, Sends: kpi.Recorder{}})
	if err != nil {
		return err
	}

	start = time.Now()
	sent := 0
	for i := 0; i < len(pks); i += batchSize {
		res, err := svc.SendBatch(ctx, outbox.BatchInput{CustomerPKs: pks[i:min(i+batchSize, len(pks))], Template: "welcome",
			Kind: mail.KindMarketing, Campaign: "bench", Values: map[string]string{"discount_code": "BENCH10"},
			IdempotencyPrefix: "bench"})
		if err != nil {
			return err
		}
		sent += res.Sent
	}
	took := time.Since(start)
	rate := float64(sent) / took.Seconds()
	fmt.Printf("refrain:   %d messages in %d calls in %s: %.0f messages/s (render, personalise, write rows, encode, send)\n",
		sent, sk.requests.Load(), took.Round(time.Millisecond), rate)
	if int(sk.recipients.Load()) != sent {
		return fmt.Errorf("sink saw %d recipients, want %d", sk.recipients.Load(), sent)
	}

	// Reference: the same request, pre-rendered and pre-encoded, replayed.
	sk.mu.Lock()
	body, ctype := sk.lastBody, sk.lastType
	sk.keep = false
	sk.mu.Unlock()
	// Replay as many calls as Refrain made, each carrying the recipients of
	// the kept request (batches split by locale, so calls may be smaller
	// than batchSize).
	calls := int(sk.requests.Load())
	perCall := bytes.Count(body, []byte(`name="to"`))
	client := &http.Client{}
	start = time.Now()
	for range calls {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v3/mg.bench.example/messages", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", ctype)
		req.SetBasicAuth("api", "key-bench")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	refTook := time.Since(start)
	refRate := float64(calls*perCall) / refTook.Seconds()
	fmt.Printf("reference: %d pre-rendered calls of %d recipients (%d KiB each) in %s: %.0f messages/s (sink and HTTP alone)\n",
		calls, perCall, len(body)/1024, refTook.Round(time.Millisecond), refRate)
	fmt.Printf("ratio:     refrain runs at %.2f of the reference rate (%.1fx slower)\n", rate/refRate, refRate/rate)
	fmt.Printf("peak RSS:  %s (VmHWM of the whole process, seeding included)\n", peakRSS())
	return nil
}

// seed inserts n subscribed customers with names and locales, in chunks.
func seed(ctx context.Context, db *bun.DB, n int) ([]int64, error) {
	now := time.Now().UTC()
	locales := []string{"en", "fr", "en-GB", "es"}
	pks := make([]int64, 0, n)
	for start := 0; start < n; start += 500 {
		chunk := make([]*customer.Customer, 0, 500)
		for i := start; i < min(start+500, n); i++ {
			email := "customer" + strconv.Itoa(i) + "@bench.example"
			first, last, loc := "Customer"+strconv.Itoa(i), "Bench", locales[i%len(locales)]
			chunk = append(chunk, &customer.Customer{PublicID: customer.NewPublicID(), Email: &email, EmailNormalized: &email,
				FirstName: &first, LastName: &last, Locale: &loc, Source: customer.SourceImport,
				ConsentState: customer.ConsentSubscribed, ConsentProof: map[string]any{}, Attributes: map[string]any{},
				Preferences: map[string]any{}, Tags: []string{}, Stage: "SUBSCRIBER", CreatedAt: now, UpdatedAt: now})
		}
		if _, err := db.NewInsert().Model(&chunk).Exec(ctx); err != nil {
			return nil, fmt.Errorf("seed customers: %w", err)
		}
		for _, c := range chunk {
			pks = append(pks, c.PK)
		}
	}
	return pks, nil
}

// peakRSS reads the peak resident set size (VmHWM) from /proc/self/status.
func peakRSS() string {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, err := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			if err != nil {
				return strings.TrimSpace(line)
			}
			return fmt.Sprintf("%.1f MiB", float64(kb)/1024)
		}
	}
	return "unknown"
}
