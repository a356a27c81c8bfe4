// Package inbox keeps every verified webhook delivery before it is
// acknowledged, and lets workers on every replica process the stored
// deliveries exactly once in effect: a worker claims due rows under a lease,
// runs the handler and marks the row in the handler's own transaction, so a
// crash either leaves the row to be claimed again when the lease runs out or
// commits the effect and the mark together.
//
// It stores raw bodies and knows no platform: it must not import
// plugin/storefront, a storefront adapter, plugin/commerce, graph, net/http
// or the assembly. The storefront edge hands it deliveries and a handler.
package inbox

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/store"
	"github.com/uptrace/bun"
)

// Status is where an inbound event is in its processing.
type Status string

// Inbound event statuses.
const (
	StatusPending    Status = "PENDING"
	StatusProcessing Status = "PROCESSING"
	StatusDone       Status = "DONE"
	StatusIgnored    Status = "IGNORED"
	StatusFailed     Status = "FAILED"
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	switch s {
	case StatusPending, StatusProcessing, StatusDone, StatusIgnored, StatusFailed:
		return true
	}
	return false
}

// Event is one stored delivery.
type Event struct {
	bun.BaseModel `bun:"table:inbound_events"`

	ID            int64             `bun:"id,pk,autoincrement"`
	Source        string            `bun:"source,notnull"`
	Topic         string            `bun:"topic,notnull"`
	DedupeKey     string            `bun:"dedupe_key,notnull"`
	Headers       map[string]string `bun:"headers,notnull,type:jsonb"`
	Body          []byte            `bun:"body,notnull"`
	Status        Status            `bun:"status,notnull"`
	Attempts      int               `bun:"attempts,notnull"`
	LastError     *string           `bun:"last_error"`
	ReceivedAt    time.Time         `bun:"received_at,notnull"`
	NextAttemptAt time.Time         `bun:"next_attempt_at,notnull"`
	LockedBy      *string           `bun:"locked_by"`
	LockedUntil   *time.Time        `bun:"locked_until"`
	ProcessedAt   *time.Time        `bun:"processed_at"`
}

// Delivery is what Store records.
type Delivery struct {
	Source    string
	Topic     string
	DedupeKey string
	Headers   map[string]string
	Body      []byte
}

// Store records a delivery. It returns the stored event and whether it is
// new; a redelivery (same source and dedupe key) stores nothing and returns
// the first one with false.
func Store(ctx context.Context, db bun.IDB, now time.Time, d Delivery) (*Event, bool, error) {
	if d.Source == "" || d.DedupeKey == "" {
		return nil, false, errors.New("store delivery: source and dedupe key are required")
	}
	e := &Event{Source: d.Source, Topic: d.Topic, DedupeKey: d.DedupeKey, Headers: d.Headers, Body: d.Body,
		Status: StatusPending, ReceivedAt: now, NextAttemptAt: now}
	if e.Headers == nil {
		e.Headers = map[string]string{}
	}
	if e.Body == nil {
		e.Body = []byte{}
	}
	res, err := db.NewInsert().Model(e).On("CONFLICT (source, dedupe_key) DO NOTHING").Exec(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("store delivery: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return e, true, nil
	}
	first := new(Event)
	if err := db.NewSelect().Model(first).Column("id", "source", "topic", "dedupe_key", "status", "received_at").
		Where("source = ? AND dedupe_key = ?", d.Source, d.DedupeKey).Scan(ctx); err != nil {
		return nil, false, fmt.Errorf("load first delivery: %w", err)
	}
	return first, false, nil
}

// Get loads one inbound event.
func Get(ctx context.Context, db bun.IDB, id int64) (*Event, error) {
	e := new(Event)
	err := db.NewSelect().Model(e).Where("id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("inbound event %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load inbound event %d: %w", id, err)
	}
	return e, nil
}

// Filter narrows a listing.
type Filter struct {
	Status Status
	Source string
}

// Page is one page of inbound events, newest first.
type Page struct {
	Events      []*Event
	HasNextPage bool
}

// List lists inbound events, newest first, after the event with id after (0: from the newest).
func List(ctx context.Context, db bun.IDB, f Filter, first int, after int64) (Page, error) {
	var es []*Event
	q := db.NewSelect().Model(&es)
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	if f.Source != "" {
		q = q.Where("source = ?", f.Source)
	}
	if after > 0 {
		q = q.Where("id < ?", after)
	}
	if err := q.Order("id DESC").Limit(int64(first) + 1).Scan(ctx); err != nil {
		return Page{}, fmt.Errorf("list inbound events: %w", err)
	}
	p := Page{Events: es}
	if len(es) > first {
		p.Events, p.HasNextPage = es[:first], true
	}
	return p, nil
}

// Replay puts an event back in the queue, whatever its status, so it is
// processed again with a fresh attempt count.
func Replay(ctx context.Context, db bun.IDB, now time.Time, id int64) (*Event, error) {
	res, err := db.NewUpdate().Model((*Event)(nil)).
		Set("status = ?", StatusPending).Set("attempts = 0").Set("next_attempt_at = ?", now).
		Set("locked_by = NULL").Set("locked_until = NULL").Set("last_error = NULL").
		Where("id = ?", id).Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("replay inbound event %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, fmt.Errorf("inbound event %d: %w", id, store.ErrNotFound)
	}
	return Get(ctx, db, id)
}

// ErrIgnore, returned by a Handler, marks the event IGNORED (a topic Refrain
// does not act on) instead of DONE.
var ErrIgnore = errors.New("ignored")

// PermanentError, returned by a Handler, fails the event at once: retrying
// cannot help (a payload that will never parse).
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Handler applies one event's effects within tx. The worker marks the event
// in the same transaction, so effects and mark commit together.
type Handler func(ctx context.Context, tx bun.Tx, e *Event) error

// WorkerOptions tunes a worker. Zero values take the defaults.
type WorkerOptions struct {
	// Batch is how many events one claim takes. Default 50.
	Batch int
	// Lease is how long a claim holds before another worker may take the
	// event again. Default 2 minutes.
	Lease time.Duration
	// MaxAttempts before an event is parked as FAILED. Default 8.
	MaxAttempts int
	// BaseBackoff is the first retry delay, doubled per attempt and capped
	// at one hour. Default 10 seconds.
	BaseBackoff time.Duration
	// Poll is how long an idle worker waits before looking again. Default 1 second.
	Poll time.Duration
	// ID names the worker in locked_by. Default a random id.
	ID string
}

func (o *WorkerOptions) defaults() {
	if o.Batch <= 0 {
		o.Batch = 50
	}
	if o.Lease <= 0 {
		o.Lease = 2 * time.Minute
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.BaseBackoff <= 0 {
		o.BaseBackoff = 10 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.ID == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		o.ID = "w-" + hex.EncodeToString(b[:])
	}
}

// Worker processes the inbox.
type Worker struct {
	db      *bun.DB
	clock   clock.Clock
	logger  *slog.Logger
	handler Handler
	opts    WorkerOptions
	// Wake, when sent to, makes an idle worker look at once (a delivery just arrived).
	Wake chan struct{}
}

// NewWorker returns a worker that runs handler on due events.
func NewWorker(db *bun.DB, clk clock.Clock, logger *slog.Logger, handler Handler, opts WorkerOptions) *Worker {
	opts.defaults()
	return &Worker{db: db, clock: clk, logger: logger, handler: handler, opts: opts, Wake: make(chan struct{}, 1)}
}

// Run processes events until ctx is done.
func (w *Worker) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		n, err := w.ProcessDue(ctx)
		if err != nil && ctx.Err() == nil {
			w.logger.ErrorContext(ctx, "inbox worker pass failed", "err", err, "worker", w.opts.ID)
		}
		if n > 0 && err == nil {
			continue
		}
		t.Reset(w.opts.Poll)
		select {
		case <-ctx.Done():
			return nil
		case <-w.Wake:
		case <-t.C:
		}
	}
}

// ProcessDue claims one batch of due events and processes them. It returns
// how many it claimed.
func (w *Worker) ProcessDue(ctx context.Context) (int, error) {
	claimed, err := Claim(ctx, w.db, w.clock.Now(), w.opts.ID, w.opts.Batch, w.opts.Lease)
	if err != nil {
		return 0, err
	}
	for _, e := range claimed {
		if err := w.process(ctx, e); err != nil {
			return len(claimed), err
		}
	}
	return len(claimed), nil
}

// Claim takes up to n due events for worker: PENDING events whose next
// attempt is due, and PROCESSING events whose lease has run out (their
// worker died). On PostgreSQL concurrent claimers skip each other's rows
// (FOR UPDATE SKIP LOCKED); SQLite has one writer.
func Claim(ctx context.Context, db *bun.DB, now time.Time, worker string, n int, lease time.Duration) ([]*Event, error) {
	var out []*Event
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var ids []int64
		q := tx.NewSelect().Model((*Event)(nil)).Column("id").
			WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
				return q.Where("status = ? AND next_attempt_at <= ?", StatusPending, now).
					WhereOr("status = ? AND locked_until < ?", StatusProcessing, now)
			}).
			Order("id ASC").Limit(int64(n))
		q = store.SkipLocked(q)
		if err := q.Scan(ctx, &ids); err != nil {
			return fmt.Errorf("select due inbound events: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		until := now.Add(lease)
		if _, err := tx.NewUpdate().Model((*Event)(nil)).
			Set("status = ?", StatusProcessing).Set("locked_by = ?", worker).Set("locked_until = ?", until).
			Set("attempts = attempts + 1").
			Where("id IN (?)", bun.List(ids)).Exec(ctx); err != nil {
			return fmt.Errorf("claim inbound events: %w", err)
		}
		return tx.NewSelect().Model(&out).Where("id IN (?)", bun.List(ids)).Order("id ASC").Scan(ctx)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (w *Worker) process(ctx context.Context, e *Event) error {
	err := w.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		herr := w.handler(ctx, tx, e)
		if herr != nil && !errors.Is(herr, ErrIgnore) {
			return herr
		}
		status := StatusDone
		if errors.Is(herr, ErrIgnore) {
			status = StatusIgnored
		}
		return markDone(ctx, tx, w.clock.Now(), e.ID, w.opts.ID, status)
	})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// The handler failed and its transaction rolled back: record the failure
	// outside it, with the next attempt backed off, or park it as FAILED.
	var perm *PermanentError
	final := errors.As(err, &perm) || e.Attempts >= w.opts.MaxAttempts
	w.logger.WarnContext(ctx, "inbound event failed", "id", e.ID, "source", e.Source, "topic", e.Topic,
		"attempt", e.Attempts, "final", final, "err", err)
	return markFailed(ctx, w.db, w.clock.Now(), e, w.opts, err, final)
}

// markDone marks an event processed, only if this worker still holds it.
func markDone(ctx context.Context, tx bun.IDB, now time.Time, id int64, worker string, status Status) error {
	res, err := tx.NewUpdate().Model((*Event)(nil)).
		Set("status = ?", status).Set("processed_at = ?", now).Set("locked_until = NULL").Set("last_error = NULL").
		Where("id = ? AND status = ? AND locked_by = ?", id, StatusProcessing, worker).Exec(ctx)
	if err != nil {
		return fmt.Errorf("mark inbound event %d %s: %w", id, status, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		// Our lease ran out and another worker took the event: roll back our
		// effects and let theirs count.
		return fmt.Errorf("mark inbound event %d: lease lost to another worker", id)
	}
	return nil
}

func markFailed(ctx context.Context, db bun.IDB, now time.Time, e *Event, o WorkerOptions, cause error, final bool) error {
	msg := cause.Error()
	if len(msg) > 2000 {
		msg = msg[:2000]
	}
	status, next := StatusPending, now.Add(Backoff(o.BaseBackoff, e.Attempts))
	if final {
		status, next = StatusFailed, now
	}
	_, err := db.NewUpdate().Model((*Event)(nil)).
		Set("status = ?", status).Set("next_attempt_at = ?", next).Set("last_error = ?", msg).
		Set("locked_until = NULL").
		Where("id = ? AND locked_by = ?", e.ID, o.ID).Exec(ctx)
	if err != nil {
		return fmt.Errorf("record failure of inbound event %d: %w", e.ID, err)
	}
	return nil
}

// Backoff is the delay before retry number attempt: base doubled per
// attempt, capped at one hour.
func Backoff(base time.Duration, attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := float64(base) * math.Pow(2, float64(attempt-1))
	if d > float64(time.Hour) {
		return time.Hour
	}
	return time.Duration(d)
}

// Counts returns how many events are in each status.
func Counts(ctx context.Context, db bun.IDB) (map[Status]int, error) {
	var rows []struct {
		Status Status `bun:"status"`
		N      int    `bun:"n"`
	}
	if err := db.NewSelect().Model((*Event)(nil)).ColumnExpr("status, count(*) AS n").Group("status").Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("count inbound events: %w", err)
	}
	out := map[Status]int{}
	for _, r := range rows {
		out[r.Status] = r.N
	}
	return out, nil
}

// FormatID renders an event id for GraphQL.
func FormatID(id int64) string { return strconv.FormatInt(id, 10) }
