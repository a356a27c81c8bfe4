package inbox_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/inbox"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestStoreDedupes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		d := inbox.Delivery{Source: "shopify", Topic: "orders/create", DedupeKey: "evt-1",
			Headers: map[string]string{"X-Shopify-Topic": "orders/create"}, Body: []byte(`{"id":1}`)}
		first, isNew, err := inbox.Store(ctx, db, t0, d)
		require.NoError(t, err)
		require.True(t, isNew)
		again, isNew, err := inbox.Store(ctx, db, t0.Add(time.Minute), d)
		require.NoError(t, err)
		require.False(t, isNew)
		require.Equal(t, first.ID, again.ID)
		d.Source = "saleor"
		_, isNew, err = inbox.Store(ctx, db, t0, d)
		require.NoError(t, err)
		require.True(t, isNew, "dedupe keys are per source")

		got, err := inbox.Get(ctx, db, first.ID)
		require.NoError(t, err)
		require.Equal(t, []byte(`{"id":1}`), got.Body)
		require.Equal(t, "orders/create", got.Headers["X-Shopify-Topic"])
		require.Equal(t, inbox.StatusPending, got.Status)
	})
}

func TestWorkerRetriesThenFails(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		clk := clock.NewVirtual(t0)
		ok, _, err := inbox.Store(ctx, db, t0, inbox.Delivery{Source: "s", DedupeKey: "ok", Body: []byte("ok")})
		require.NoError(t, err)
		flaky, _, err := inbox.Store(ctx, db, t0, inbox.Delivery{Source: "s", DedupeKey: "flaky", Body: []byte("flaky")})
		require.NoError(t, err)
		bad, _, err := inbox.Store(ctx, db, t0, inbox.Delivery{Source: "s", DedupeKey: "bad", Body: []byte("bad")})
		require.NoError(t, err)
		skip, _, err := inbox.Store(ctx, db, t0, inbox.Delivery{Source: "s", DedupeKey: "skip", Body: []byte("skip")})
		require.NoError(t, err)

		flakyCalls := 0
		h := func(ctx context.Context, tx bun.Tx, e *inbox.Event) error {
			switch string(e.Body) {
			case "flaky":
				flakyCalls++
				if flakyCalls < 3 {
					return errors.New("store API timed out")
				}
			case "bad":
				return &inbox.PermanentError{Err: errors.New("payload is not JSON")}
			case "skip":
				return inbox.ErrIgnore
			}
			return nil
		}
		w := inbox.NewWorker(db.DB, clk, quiet(), h, inbox.WorkerOptions{BaseBackoff: 10 * time.Second, MaxAttempts: 5})
		n, err := w.ProcessDue(ctx)
		require.NoError(t, err)
		require.Equal(t, 4, n)

		status := func(id int64) (inbox.Status, int, string) {
			e, err := inbox.Get(ctx, db, id)
			require.NoError(t, err)
			msg := ""
			if e.LastError != nil {
				msg = *e.LastError
			}
			return e.Status, e.Attempts, msg
		}
		s, _, _ := status(ok.ID)
		require.Equal(t, inbox.StatusDone, s)
		s, _, msg := status(bad.ID)
		require.Equal(t, inbox.StatusFailed, s)
		require.Contains(t, msg, "payload is not JSON")
		s, _, _ = status(skip.ID)
		require.Equal(t, inbox.StatusIgnored, s)
		s, attempts, msg := status(flaky.ID)
		require.Equal(t, inbox.StatusPending, s)
		require.Equal(t, 1, attempts)
		require.Contains(t, msg, "timed out")

		// Not due yet: the backoff holds it.
		n, err = w.ProcessDue(ctx)
		require.NoError(t, err)
		require.Zero(t, n)
		clk.Advance(11 * time.Second)
		_, err = w.ProcessDue(ctx)
		require.NoError(t, err)
		s, attempts, _ = status(flaky.ID)
		require.Equal(t, inbox.StatusPending, s)
		require.Equal(t, 2, attempts)
		clk.Advance(21 * time.Second)
		_, err = w.ProcessDue(ctx)
		require.NoError(t, err)
		s, attempts, _ = status(flaky.ID)
		require.Equal(t, inbox.StatusDone, s)
		require.Equal(t, 3, attempts)

		// A failed event can be replayed.
		_, err = inbox.Replay(ctx, db, clk.Now(), bad.ID)
		require.NoError(t, err)
		s, attempts, _ = status(bad.ID)
		require.Equal(t, inbox.StatusPending, s)
		require.Zero(t, attempts)
		_, err = inbox.Replay(ctx, db, clk.Now(), 999999)
		require.Error(t, err)

		counts, err := inbox.Counts(ctx, db)
		require.NoError(t, err)
		require.Equal(t, map[inbox.Status]int{inbox.StatusDone: 2, inbox.StatusIgnored: 1, inbox.StatusPending: 1}, counts)
	})
}

// A worker that dies after claiming leaves its lease to expire; another
// worker then takes the event, and the effect happens once.
func TestExpiredLeaseIsTakenOver(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		clk := clock.NewVirtual(t0)
		e, _, err := inbox.Store(ctx, db, t0, inbox.Delivery{Source: "s", DedupeKey: "k", Body: []byte("x")})
		require.NoError(t, err)
		claimed, err := inbox.Claim(ctx, db.DB, clk.Now(), "dead-worker", 10, time.Minute)
		require.NoError(t, err)
		require.Len(t, claimed, 1)

		calls := 0
		w := inbox.NewWorker(db.DB, clk, quiet(), func(context.Context, bun.Tx, *inbox.Event) error { calls++; return nil },
			inbox.WorkerOptions{ID: "live-worker", Lease: time.Minute})
		n, err := w.ProcessDue(ctx)
		require.NoError(t, err)
		require.Zero(t, n, "the lease still holds")
		clk.Advance(61 * time.Second)
		n, err = w.ProcessDue(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Equal(t, 1, calls)
		got, err := inbox.Get(ctx, db, e.ID)
		require.NoError(t, err)
		require.Equal(t, inbox.StatusDone, got.Status)
		require.Equal(t, 2, got.Attempts)
	})
}

// Two workers on one PostgreSQL process 10,000 rows: each exactly once.
func TestTwoWorkersExactlyOnce(t *testing.T) {
	db := storetest.Postgres(t)
	ctx := context.Background()
	const total = 10000
	_, err := db.ExecContext(ctx, "CREATE TABLE test_effects (inbound_id BIGINT NOT NULL, worker TEXT NOT NULL)")
	require.NoError(t, err)
	rows := make([]*inbox.Event, 0, 1000)
	for i := 0; i < total; i++ {
		rows = append(rows, &inbox.Event{Source: "standard", Topic: "order.created", DedupeKey: "d-" + strconv.Itoa(i),
			Headers: map[string]string{}, Body: []byte(fmt.Sprintf(`{"n":%d}`, i)), Status: inbox.StatusPending,
			ReceivedAt: t0, NextAttemptAt: t0})
		if len(rows) == cap(rows) {
			_, err := db.NewInsert().Model(&rows).Exec(ctx)
			require.NoError(t, err)
			rows = rows[:0]
		}
	}
	clk := clock.NewVirtual(t0.Add(time.Second))
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		replica := db.Reopen(t)
		id := fmt.Sprintf("replica-%d", i)
		w := inbox.NewWorker(replica, clk, quiet(), func(ctx context.Context, tx bun.Tx, e *inbox.Event) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO test_effects (inbound_id, worker) VALUES (?, ?)", e.ID, id)
			return err
		}, inbox.WorkerOptions{ID: id, Batch: 100})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n, err := w.ProcessDue(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	var effects, distinct, workers int
	require.NoError(t, db.NewRaw("SELECT count(*), count(DISTINCT inbound_id), count(DISTINCT worker) FROM test_effects").Scan(ctx, &effects, &distinct, &workers))
	require.Equal(t, total, effects)
	require.Equal(t, total, distinct)
	require.Equal(t, 2, workers, "both workers took a share")
	counts, err := inbox.Counts(ctx, db)
	require.NoError(t, err)
	require.Equal(t, map[inbox.Status]int{inbox.StatusDone: total}, counts)
}

// Concurrent deliveries through the group-commit writer: every caller gets
// its own committed row, duplicates are recognised within and across
// batches, and no row is lost.
func TestWriterGroupCommit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		w := inbox.NewWriter(db.DB, clock.NewVirtual(t0), 16)
		const n = 300
		type result struct {
			id    int64
			isNew bool
			err   error
		}
		results := make([]result, 2*n)
		var wg sync.WaitGroup
		for i := 0; i < 2*n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				// Every delivery is sent twice: i and i+n share a dedupe key.
				k := i % n
				e, isNew, err := w.Store(ctx, inbox.Delivery{Source: "shopify", Topic: "orders/create",
					DedupeKey: fmt.Sprintf("evt-%d", k), Body: []byte(fmt.Sprintf(`{"n":%d}`, k))})
				r := result{isNew: isNew, err: err}
				if e != nil {
					r.id = e.ID
				}
				results[i] = r
			}(i)
		}
		wg.Wait()
		for k := 0; k < n; k++ {
			a, b := results[k], results[k+n]
			require.NoError(t, a.err)
			require.NoError(t, b.err)
			require.Equal(t, a.id, b.id, "both copies name the same row")
			require.NotZero(t, a.id)
			require.True(t, a.isNew != b.isNew, "exactly one copy of %d is new", k)
		}
		var rows int
		require.NoError(t, db.NewRaw("SELECT count(*) FROM inbound_events").Scan(ctx, &rows))
		require.Equal(t, n, rows)
		got, err := inbox.Get(ctx, db, results[7].id)
		require.NoError(t, err)
		require.Equal(t, `{"n":7}`, string(got.Body))
		_, _, err = w.Store(ctx, inbox.Delivery{Source: "shopify"})
		require.Error(t, err)
	})
}
