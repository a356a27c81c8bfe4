package inbox

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// Writer stores deliveries with group commit: deliveries that arrive while
// inserts are under way are gathered into the next multi-row INSERT, so N
// concurrent webhooks cost a few round trips and commits instead of N. Each
// caller still returns only once its own row is committed, so the
// acknowledgement guarantee of Store holds. There is no timer: a lone
// delivery is written at once, and batches form only under load.
//
// Writing is done by the callers themselves: up to maxInFlight callers lead
// at once, each writing one batch from the head of the queue; a leader whose
// batch is committed hands its lead to the next caller still queued (or gives
// it up when none is), so no background goroutine has to be running for
// Store to work. Several batches in flight let PostgreSQL overlap their
// WAL writes, which one batch at a time cannot.
type Writer struct {
	db          bun.IDB
	clock       clock.Clock
	maxBatch    int
	maxInFlight int

	mu       sync.Mutex
	queue    []*pending
	inFlight int
}

type pending struct {
	d     Delivery
	at    time.Time
	event *Event
	isNew bool
	err   error
	done  chan struct{}
	// lead receives the lead from a leader whose batch is done; handed
	// (set and sent under Writer.mu) at most once.
	lead   chan struct{}
	handed bool
}

// NewWriter returns a group-commit writer over db. maxBatch caps the rows of
// one INSERT (default 200); batches in flight at once are capped at 4, or 1
// on SQLite, whose single connection writes one at a time anyway.
func NewWriter(db bun.IDB, clk clock.Clock, maxBatch int) *Writer {
	if maxBatch <= 0 {
		maxBatch = 200
	}
	inFlight := 4
	if db.Dialect().Name() == dialect.SQLite {
		inFlight = 1
	}
	return &Writer{db: db, clock: clk, maxBatch: maxBatch, maxInFlight: inFlight}
}

// Store records a delivery like the package function Store, batched with
// concurrent calls. It returns the stored event and whether it is new.
func (w *Writer) Store(ctx context.Context, d Delivery) (*Event, bool, error) {
	if d.Source == "" || d.DedupeKey == "" {
		return nil, false, fmt.Errorf("store delivery: source and dedupe key are required")
	}
	p := &pending{d: d, at: w.clock.Now(), done: make(chan struct{}), lead: make(chan struct{}, 1)}
	w.mu.Lock()
	w.queue = append(w.queue, p)
	lead := w.inFlight < w.maxInFlight
	if lead {
		w.inFlight++
	}
	w.mu.Unlock()
	if !lead {
		select {
		case <-p.done:
			// Another leader wrote our row. If the lead was handed to us
			// meanwhile (it is handed under the lock, so the flag tells),
			// take it and do the leader's work before returning.
			w.mu.Lock()
			handed := p.handed
			w.mu.Unlock()
			if !handed {
				return p.event, p.isNew, p.err
			}
			<-p.lead
		case <-p.lead:
		}
	}
	w.flushOnce()
	<-p.done
	return p.event, p.isNew, p.err
}

// flushOnce writes one batch from the head of the queue, then hands the
// lead to the next queued caller not yet holding one, or gives it up.
func (w *Writer) flushOnce() {
	w.mu.Lock()
	n := len(w.queue)
	if n > w.maxBatch {
		n = w.maxBatch
	}
	batch := w.queue[:n:n]
	w.queue = w.queue[n:]
	w.mu.Unlock()

	if len(batch) > 0 {
		w.write(batch)
		for _, p := range batch {
			close(p.done)
		}
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	for _, next := range w.queue {
		if !next.handed {
			next.handed = true
			next.lead <- struct{}{} // buffered, sent once: never blocks
			return
		}
	}
	w.inFlight--
}

// write inserts a batch in one statement and fills in each caller's result.
// It runs on a context of its own: one caller giving up must not fail the
// others' rows.
func (w *Writer) write(batch []*pending) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Rows in key order: two batches in flight that share keys (a delivery
	// and its redelivery) then take the unique index entries in the same
	// order, so one waits for the other instead of both deadlocking.
	sort.SliceStable(batch, func(i, j int) bool {
		if batch[i].d.Source != batch[j].d.Source {
			return batch[i].d.Source < batch[j].d.Source
		}
		return batch[i].d.DedupeKey < batch[j].d.DedupeKey
	})
	rows := make([]*Event, len(batch))
	for i, p := range batch {
		e := &Event{Source: p.d.Source, Topic: p.d.Topic, DedupeKey: p.d.DedupeKey, Headers: p.d.Headers, Body: p.d.Body,
			Status: StatusPending, ReceivedAt: p.at, NextAttemptAt: p.at}
		if e.Headers == nil {
			e.Headers = map[string]string{}
		}
		if e.Body == nil {
			e.Body = []byte{}
		}
		rows[i] = e
	}
	var inserted []struct {
		ID        int64  `bun:"id"`
		Source    string `bun:"source"`
		DedupeKey string `bun:"dedupe_key"`
	}
	_, err := w.db.NewInsert().Model(&rows).On("CONFLICT (source, dedupe_key) DO NOTHING").
		Returning("id, source, dedupe_key").Exec(ctx, &inserted)
	if err != nil {
		for _, p := range batch {
			p.err = fmt.Errorf("store delivery: %w", err)
		}
		return
	}
	type key struct{ source, dedupe string }
	ids := make(map[key]int64, len(inserted))
	for _, r := range inserted {
		ids[key{r.Source, r.DedupeKey}] = r.ID
	}
	for i, p := range batch {
		k := key{p.d.Source, p.d.DedupeKey}
		if id, ok := ids[k]; ok {
			rows[i].ID = id
			p.event, p.isNew = rows[i], true
			// A second copy of the same delivery in this batch is a duplicate.
			delete(ids, k)
			continue
		}
		first := new(Event)
		if err := w.db.NewSelect().Model(first).Column("id", "source", "topic", "dedupe_key", "status", "received_at").
			Where("source = ? AND dedupe_key = ?", p.d.Source, p.d.DedupeKey).Scan(ctx); err != nil {
			p.err = fmt.Errorf("load first delivery: %w", err)
			continue
		}
		p.event = first
	}
}
