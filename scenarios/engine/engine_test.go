package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/store"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
	"github.com/refrain-dev/refrain/scenarios/engine"
)

// eventMailer "sends" by appending a customer event in the step's
// transaction, without an idempotency key: a step that committed twice
// would leave two events. failFirst makes the first calls fail after
// writing, as a worker dying mid-step would.
type eventMailer struct {
	calls     atomic.Int64
	failFirst int64
}

func (m *eventMailer) Send(ctx context.Context, db bun.IDB, msg engine.Message) (string, error) {
	n := m.calls.Add(1)
	if _, _, err := customer.AppendEvent(ctx, db, time.Now(), msg.CustomerPK, customer.EventInput{Type: "test.sent",
		Properties: map[string]any{"key": msg.IdempotencyKey}}); err != nil {
		return "", err
	}
	if n <= m.failFirst {
		return "", errors.New("worker died")
	}
	return fmt.Sprintf("msg-%d", n), nil
}

const twoSends = `id: two-sends
title: Two sends
objective: maintain
trigger: manual
steps:
  - id: a
    send: anything
  - wait: 1h
  - id: b
    send: anything
`

var start = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

func newEngine(t *testing.T, db *bun.DB, clk clock.Clock, m engine.Mailer, worker string) *engine.Engine {
	t.Helper()
	e, err := engine.New(engine.Options{DB: db, Clock: clk, Mailer: m, WorkerID: worker, Batch: 200, Lease: time.Minute})
	require.NoError(t, err)
	return e
}

func customers(t *testing.T, db bun.IDB, n int) []int64 {
	t.Helper()
	ctx := context.Background()
	var ids []int64
	for i := 0; i < n; i += 1000 {
		var batch []*customer.Customer
		for j := i; j < n && j < i+1000; j++ {
			email := fmt.Sprintf("c%d@example.com", j)
			batch = append(batch, &customer.Customer{PublicID: customer.NewPublicID(), Email: &email, EmailNormalized: &email,
				Source: customer.SourceOnline, ConsentState: customer.ConsentSubscribed, ConsentProof: map[string]any{},
				Attributes: map[string]any{}, Preferences: map[string]any{}, Tags: []string{}, Stage: "SUBSCRIBER",
				CreatedAt: start, UpdatedAt: start})
		}
		_, err := db.NewInsert().Model(&batch).Exec(ctx)
		require.NoError(t, err)
		for _, c := range batch {
			ids = append(ids, c.PK)
		}
	}
	return ids
}

func sentCount(t *testing.T, db bun.IDB) (total, distinct int) {
	t.Helper()
	var evs []*customer.Event
	require.NoError(t, db.NewSelect().Model(&evs).Where("type = ?", "test.sent").Scan(context.Background()))
	seen := map[string]bool{}
	for _, e := range evs {
		seen[fmt.Sprint(e.Properties["key"])] = true
	}
	return len(evs), len(seen)
}

// TestCrashMidStep: a worker claims an enrollment and dies inside the step
// (its transaction never commits). Its lease runs out, another worker
// takes the enrollment over, and the step runs once.
func TestCrashMidStep(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		clk := clock.NewVirtual(start)
		dying := &eventMailer{failFirst: 1}
		a := newEngine(t, db.DB, clk, dying, "worker-a")
		b := newEngine(t, db.Reopen(t), clk, &eventMailer{}, "worker-b")
		_, _, err := a.Upsert(ctx, db.DB, "two-sends.yaml", []byte(twoSends), "test", "")
		require.NoError(t, err)
		ids := customers(t, db.DB, 1)
		en, err := a.Enroll(ctx, db.DB, "two-sends", ids[0])
		require.NoError(t, err)

		claimed, err := a.Claim(ctx)
		require.NoError(t, err)
		require.Equal(t, []int64{en.ID}, claimed)
		_, err = a.Advance(ctx, en.ID)
		require.ErrorContains(t, err, "worker died")
		total, _ := sentCount(t, db.DB)
		require.Zero(t, total, "nothing of the dead step committed")

		// While the lease holds, the other worker finds nothing to claim.
		got, err := b.Claim(ctx)
		require.NoError(t, err)
		require.Empty(t, got)

		clk.Advance(61 * time.Second)
		n, err := b.AdvanceDue(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n, "b sent a and now waits")
		// The dead worker's late retry finds its lease gone.
		_, err = a.Advance(ctx, en.ID)
		require.ErrorIs(t, err, engine.ErrLeaseLost)

		clk.Advance(time.Hour)
		require.NoError(t, b.Drain(ctx))
		total, distinct := sentCount(t, db.DB)
		require.Equal(t, 2, total)
		require.Equal(t, 2, distinct)
		runs, err := engine.StepRuns(ctx, db.DB, en.ID)
		require.NoError(t, err)
		require.Len(t, runs, 3)
		for _, r := range runs {
			require.Equal(t, "worker-b", *r.Worker)
		}
		got2, err := engine.GetEnrollment(ctx, db.DB, en.ID)
		require.NoError(t, err)
		require.Equal(t, engine.StateCompleted, got2.State)
	})
}

// TestTwoEnginesShareDueEnrollments: two engines on their own pools
// advance the same due enrollments at once; every step runs once.
func TestTwoEnginesShareDueEnrollments(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		n := 10000
		if store.DialectOf(db.DB) == store.SQLite {
			n = 1000 // one writer at a time: the interesting case is PostgreSQL
		}
		clk := clock.NewVirtual(start)
		m := &eventMailer{}
		engines := []*engine.Engine{newEngine(t, db.DB, clk, m, "one"), newEngine(t, db.Reopen(t), clk, m, "two")}
		row, _, err := engines[0].Upsert(ctx, db.DB, "two-sends.yaml", []byte(twoSends), "test", "")
		require.NoError(t, err)
		ids := customers(t, db.DB, n)
		for i := 0; i < n; i += 1000 {
			var batch []*engine.Enrollment
			for _, id := range ids[i:min(i+1000, n)] {
				batch = append(batch, &engine.Enrollment{ScenarioID: row.ID, Version: row.Version, CustomerPK: id, EntryKey: "once",
					State: engine.StateActive, Step: "a", StepStartedAt: start, NextRunAt: &start, Context: map[string]any{},
					EnteredAt: start, UpdatedAt: start})
			}
			_, err := db.NewInsert().Model(&batch).Exec(ctx)
			require.NoError(t, err)
		}
		advance := func() {
			var wg sync.WaitGroup
			for _, e := range engines {
				wg.Add(1)
				go func(e *engine.Engine) {
					defer wg.Done()
					for {
						k, err := e.AdvanceDue(ctx)
						require.NoError(t, err)
						if k == 0 {
							return
						}
					}
				}(e)
			}
			wg.Wait()
		}
		advance()
		clk.Advance(time.Hour)
		advance()
		total, distinct := sentCount(t, db.DB)
		require.Equal(t, 2*n, total)
		require.Equal(t, 2*n, distinct)
		var byWorker []struct {
			Worker string `bun:"worker"`
			N      int    `bun:"n"`
		}
		require.NoError(t, db.NewSelect().Model((*engine.StepRun)(nil)).ColumnExpr("worker, COUNT(*) AS n").Group("worker").Scan(ctx, &byWorker))
		sum := 0
		for _, w := range byWorker {
			sum += w.N
		}
		require.Equal(t, 3*n, sum)
		c, err := engine.CountEnrollments(ctx, db.DB, row.ID)
		require.NoError(t, err)
		require.Equal(t, n, c.Completed)
		t.Logf("%s: step runs by worker %+v", store.DialectOf(db.DB), byWorker)
	})
}

const onPoke = `id: on-poke
title: On poke
objective: maintain
trigger:
  event: test.poke
steps:
  - id: a
    send: anything
`

// TestFollowerWaitsForSlowWriter: on PostgreSQL an event can take a lower
// id than another and commit after it. The follower must not move its
// cursor over the slow one: both customers are enrolled. (SQLite has one
// writer at a time, so the case cannot arise there.)
func TestFollowerWaitsForSlowWriter(t *testing.T) {
	db := storetest.Postgres(t)
	ctx := context.Background()
	clk := clock.NewVirtual(start)
	e := newEngine(t, db.Reopen(t), clk, &eventMailer{}, "follower")
	_, _, err := e.Upsert(ctx, db.DB, "on-poke.yaml", []byte(onPoke), "test", "")
	require.NoError(t, err)
	_, err = e.FollowEvents(ctx) // the cursor starts at the end of the log
	require.NoError(t, err)
	ids := customers(t, db.DB, 2)

	slow, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	first, _, err := customer.AppendEvent(ctx, slow, start, ids[0], customer.EventInput{Type: "test.poke"})
	require.NoError(t, err)
	second, _, err := customer.AppendEvent(ctx, db.Reopen(t), start, ids[1], customer.EventInput{Type: "test.poke"})
	require.NoError(t, err)
	require.Less(t, first.ID, second.ID, "the slow writer holds the lower id")

	done := make(chan error, 1)
	go func() { _, err := e.FollowEvents(ctx); done <- err }()
	time.Sleep(200 * time.Millisecond) // let the follower run; a follower that skips would have by now
	require.NoError(t, slow.Commit())
	require.NoError(t, <-done)
	_, err = e.FollowEvents(ctx)
	require.NoError(t, err)

	var enrolled []int64
	require.NoError(t, db.NewSelect().Table("enrollments").Column("customer_id").Order("customer_id").Scan(ctx, &enrolled))
	require.Equal(t, ids, enrolled, "both pokes started the scenario")
}

// TestStartFollowing: the service marks where it starts following the
// event log before it takes requests. An event recorded after that, but
// before the follower's first pass, fires its trigger (the follower would
// otherwise start at the end of the log on that pass and take the event
// for history); events from before the start do not, and a second start
// leaves the cursor where it is.
func TestStartFollowing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		clk := clock.NewVirtual(start)
		e := newEngine(t, db.DB, clk, &eventMailer{}, "w")
		_, _, err := e.Upsert(ctx, db.DB, "on-poke.yaml", []byte(onPoke), "test", "")
		require.NoError(t, err)
		ids := customers(t, db.DB, 3)
		_, _, err = customer.AppendEvent(ctx, db.DB, start, ids[0], customer.EventInput{Type: "test.poke"})
		require.NoError(t, err)
		require.NoError(t, e.StartFollowing(ctx))
		_, _, err = customer.AppendEvent(ctx, db.DB, start, ids[1], customer.EventInput{Type: "test.poke"})
		require.NoError(t, err)
		require.NoError(t, e.StartFollowing(ctx))
		_, err = e.FollowEvents(ctx)
		require.NoError(t, err)
		_, _, err = customer.AppendEvent(ctx, db.DB, start, ids[2], customer.EventInput{Type: "test.poke"})
		require.NoError(t, err)
		require.NoError(t, e.StartFollowing(ctx))
		_, err = e.FollowEvents(ctx)
		require.NoError(t, err)

		var enrolled []int64
		require.NoError(t, db.NewSelect().Table("enrollments").Column("customer_id").Order("customer_id").Scan(ctx, &enrolled))
		require.Equal(t, ids[1:], enrolled, "the pokes after the start, not the one before")
	})
}

// valuesMailer records the values of each send.
type valuesMailer struct{ values []map[string]string }

func (m *valuesMailer) Send(ctx context.Context, db bun.IDB, msg engine.Message) (string, error) {
	m.values = append(m.values, msg.Values)
	return fmt.Sprintf("msg-%d", len(m.values)), nil
}

// TestContextValuesEscapedInLinks: a context value placed in a link is
// escaped for the URL, so an order id cannot change the link's path or
// query; a value that is the placeholder alone is kept as it is.
func TestContextValuesEscapedInLinks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		clk := clock.NewVirtual(start)
		m := &valuesMailer{}
		e, err := engine.New(engine.Options{DB: db.DB, Clock: clk, Mailer: m, WorkerID: "w", StoreURL: "https://store.example"})
		require.NoError(t, err)
		_, _, err = e.Upsert(ctx, db.DB, "order-link.yaml", []byte(`id: order-link
title: Order link
objective: maintain
trigger:
  event: order.created
steps:
  - id: a
    send: anything
    values:
      order_url: ${store_url}/orders/${context.order_id}?n=${context.number}
      order_id: ${context.order_id}
      big: ${context.big}
`), "test", "")
		require.NoError(t, err)
		require.NoError(t, e.StartFollowing(ctx))
		ids := customers(t, db.DB, 1)
		_, _, err = customer.AppendEvent(ctx, db.DB, start, ids[0], customer.EventInput{Type: "order.created",
			Properties: map[string]any{"order_id": "7/../../admin?x=1&y=2", "number": "#1001 A", "big": 1234567}})
		require.NoError(t, err)
		_, err = e.FollowEvents(ctx)
		require.NoError(t, err)
		require.NoError(t, e.RunUntil(ctx, clk.Set, start.Add(time.Hour)))
		require.Len(t, m.values, 1)
		require.Equal(t, "https://store.example/orders/7%2F..%2F..%2Fadmin%3Fx%3D1%26y%3D2?n=%231001%20A", m.values[0]["order_url"])
		require.Equal(t, "7/../../admin?x=1&y=2", m.values[0]["order_id"])
		require.Equal(t, "1234567", m.values[0]["big"])
	})
}
