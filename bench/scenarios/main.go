// Command scenarios measures the scenario engine on PostgreSQL: due steps
// per second when each step loads the customer, checks the exit rule,
// renders the template and writes the message row (through the real mail
// outbox), against a bare claim-and-update loop over the same enrollments
// table in the same run. It prints both rates, their ratio, and the p99
// lag from a step's due time to its start.
//
//	go run ./bench/scenarios -url postgres://postgres@127.0.0.1:5432/refrain_bench?sslmode=disable -n 5000 -workers 4
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/kpi"
	"github.com/refrain-dev/refrain/plugin/mail/link"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
	"github.com/refrain-dev/refrain/plugin/mail/template"
	"github.com/refrain-dev/refrain/plugin/store"
	"github.com/refrain-dev/refrain/scenarios/engine"
	"github.com/refrain-dev/refrain/scenarios/library/templates"
)

const definition = `id: bench
title: Bench
objective: build
trigger: manual
exit_when: consent == "unsubscribed"
steps:
  - id: mail
    send: welcome-discount-survey
    values:
      discount_code: BENCH10
      survey_url: ${survey_url}
`

func main() {
	url := flag.String("url", os.Getenv("REFRAIN_BENCH_POSTGRES_URL"), "PostgreSQL URL (a schema of its own is created and dropped)")
	n := flag.Int("n", 5000, "due enrollments per run")
	workers := flag.Int("workers", 4, "concurrent workers (engine instances)")
	batch := flag.Int("batch", 100, "claim batch size")
	flag.Parse()
	if *url == "" {
		log.Fatal("give -url or REFRAIN_BENCH_POSTGRES_URL")
	}
	if err := run(context.Background(), *url, *n, *workers, *batch); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, url string, n, workers, batch int) error {
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
	db, err := store.Open(ctx, url+"&search_path="+schema, &store.Options{SearchPath: schema, MaxOpenConns: workers * 2})
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

	tpl, err := template.New(nil)
	if err != nil {
		return err
	}
	if err := tpl.Load(templates.FS); err != nil {
		return err
	}
	signer, err := link.New([]byte("bench-secret-bench-secret-bench-secret!!"))
	if err != nil {
		return err
	}
	svc, err := outbox.New(outbox.Options{DB: db, Engine: tpl, Signer: signer, Sender: outbox.Local{}, Reconciler: outbox.Local{},
		Config: outbox.Config{From: "Bench <bench@example.com>", PublicURL: "https://refrain.example", StoreName: "Bench"}, Sends: kpi.Recorder{}})
	if err != nil {
		return err
	}
	engines := make([]*engine.Engine, workers)
	for i := range engines {
		engines[i], err = engine.New(engine.Options{DB: db, Clock: clock.Real{}, Mailer: mailer{svc}, Templates: tpl,
			StoreURL: "https://store.example", Batch: batch, Lease: time.Minute, WorkerID: fmt.Sprintf("bench-%d", i)})
		if err != nil {
			return err
		}
	}
	row, _, err := engines[0].Upsert(ctx, db, "bench.yaml", []byte(definition), "bench", engine.StatusActive)
	if err != nil {
		return err
	}
	pks, err := seedCustomers(ctx, db, n)
	if err != nil {
		return err
	}

	// The engine: every due enrollment runs its send step.
	due, err := seedEnrollments(ctx, db, row, pks, "full")
	if err != nil {
		return err
	}
	start := time.Now()
	parallel(workers, func(i int) error {
		for {
			k, err := engines[i].AdvanceDue(ctx)
			if err != nil {
				return err
			}
			if k == 0 {
				return nil
			}
		}
	})
	full := time.Since(start)
	var runs []*engine.StepRun
	if err := db.NewSelect().Model(&runs).Scan(ctx); err != nil {
		return err
	}
	msgs, err := db.NewSelect().Model((*outbox.Message)(nil)).Count(ctx)
	if err != nil {
		return err
	}
	if len(runs) != n || int(msgs) != n {
		return fmt.Errorf("engine ran %d steps and wrote %d messages for %d enrollments", len(runs), msgs, n)
	}
	lags := make([]time.Duration, 0, len(runs))
	for _, r := range runs {
		lags = append(lags, r.RanAt.Sub(due))
	}
	slices.Sort(lags)

	// The reference: claim the same way, then only move each row on.
	bareDue, err := seedEnrollments(ctx, db, row, pks, "bare")
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var bareLags []time.Duration
	start = time.Now()
	parallel(workers, func(i int) error {
		for {
			ids, err := engines[i].Claim(ctx)
			if err != nil {
				return err
			}
			if len(ids) == 0 {
				return nil
			}
			for _, id := range ids {
				started := time.Now()
				err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
					_, err := tx.NewUpdate().Model((*engine.Enrollment)(nil)).Set("state = ?", engine.StateCompleted).
						Set("next_run_at = NULL").Set("locked_by = NULL").Set("locked_until = NULL").Set("finished_at = ?", started).
						Set("updated_at = ?", started).Where("id = ?", id).Exec(ctx)
					return err
				})
				if err != nil {
					return err
				}
				mu.Lock()
				bareLags = append(bareLags, started.Sub(bareDue))
				mu.Unlock()
			}
		}
	})
	bare := time.Since(start)
	slices.Sort(bareLags)

	fullRate := float64(n) / full.Seconds()
	bareRate := float64(n) / bare.Seconds()
	fmt.Printf("PostgreSQL, %d due enrollments, %d workers, batch %d\n", n, workers, batch)
	fmt.Printf("engine (load customer, exit rule, render, write message): %8.0f steps/s  (%s), p99 lag due->started %s\n",
		fullRate, full.Round(time.Millisecond), p99(lags).Round(time.Millisecond))
	fmt.Printf("bare claim-and-update loop:                               %8.0f rows/s   (%s), p99 lag due->started %s\n",
		bareRate, bare.Round(time.Millisecond), p99(bareLags).Round(time.Millisecond))
	fmt.Printf("ratio bare/engine: %.2f\n", bareRate/fullRate)
	return nil
}

func p99(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := len(d) * 99 / 100
	if i >= len(d) {
		i = len(d) - 1
	}
	return d[i]
}

func parallel(n int, fn func(i int) error) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := fn(i); err != nil {
				log.Fatal(err)
			}
		}(i)
	}
	wg.Wait()
}

type mailer struct{ svc *outbox.Service }

func (m mailer) Send(ctx context.Context, db bun.IDB, msg engine.Message) (string, error) {
	out, _, err := m.svc.Enqueue(ctx, db, outbox.EnqueueInput{CustomerPK: msg.CustomerPK, Template: msg.Template, Kind: "marketing",
		Values: msg.Values, Program: msg.Program, Scenario: msg.Program, Step: msg.Step, IdempotencyKey: msg.IdempotencyKey})
	if err != nil {
		return "", err
	}
	return out.ID, nil
}

func seedCustomers(ctx context.Context, db *bun.DB, n int) ([]int64, error) {
	now := time.Now().UTC()
	var pks []int64
	for i := 0; i < n; i += 1000 {
		var cs []*customer.Customer
		for j := i; j < n && j < i+1000; j++ {
			email := fmt.Sprintf("bench%d@example.com", j)
			first := fmt.Sprintf("Customer%d", j)
			cs = append(cs, &customer.Customer{PublicID: customer.NewPublicID(), Email: &email, EmailNormalized: &email, FirstName: &first,
				Source: customer.SourceOnline, ConsentState: customer.ConsentSubscribed, ConsentProof: map[string]any{},
				Attributes: map[string]any{}, Preferences: map[string]any{}, Tags: []string{}, Stage: "SUBSCRIBER", CreatedAt: now, UpdatedAt: now})
		}
		if _, err := db.NewInsert().Model(&cs).Exec(ctx); err != nil {
			return nil, err
		}
		for _, c := range cs {
			pks = append(pks, c.PK)
		}
	}
	return pks, nil
}

// seedEnrollments makes one due enrollment per customer and returns the due time.
func seedEnrollments(ctx context.Context, db *bun.DB, row *engine.Scenario, pks []int64, key string) (time.Time, error) {
	due := time.Now().UTC()
	for i := 0; i < len(pks); i += 1000 {
		var es []*engine.Enrollment
		for _, pk := range pks[i:min(i+1000, len(pks))] {
			es = append(es, &engine.Enrollment{ScenarioID: row.ID, Version: row.Version, CustomerPK: pk, EntryKey: key,
				State: engine.StateActive, Step: "mail", StepStartedAt: due, NextRunAt: &due, Context: map[string]any{},
				EnteredAt: due, UpdatedAt: due})
		}
		if _, err := db.NewInsert().Model(&es).Exec(ctx); err != nil {
			return time.Time{}, err
		}
	}
	return due, nil
}
