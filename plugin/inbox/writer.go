package inbox

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/uptrace/bun"
)

// Writer stores deliveries with group commit: deliveries that arrive while
// an insert is under way are gathered into the next multi-row INSERT, so N
// concurrent webhooks cost one round trip and one commit instead of N. Each
// caller still returns only once its own row is committed, so the
// acknowledgement guarantee of Store holds. There is no timer: a lone
// delivery is written at once, and batches form only under load.
//
// Writing is done by the callers themselves (the first to find no insert in
// flight leads; when its batch is done it hands the lead to the next waiter),
// so no background goroutine has to be running for Store to work.
type Writer struct {
	db       bun.IDB
	clock    clock.Clock
	maxBatch int

	mu      sync.Mutex
	queue   []*pending
	leading bool
}

type pending struct {
	d      Delivery
	at     time.Time
	event  *Event
	isNew  bool
	err    error
	done   chan struct{}
	leadCh chan struct{}
}

// NewWriter returns a group-commit writer over db. maxBatch caps the rows of
// one INSERT (default 200).
func NewWriter(db bun.IDB, clk clock.Clock, maxBatch int) *Writer {
	if maxBatch <= 0 {
		maxBatch = 200
	}
	return &Writer{db: db, clock: clk, maxBatch: maxBatch}
}

// Store records a delivery like the package function Store, batched with
// concurrent calls. It returns the stored event and whether it is new.
func (w *Writer) Store(ctx context.Context, d Delivery) (*Event, bool, error) {
	if d.Source == "" || d.DedupeKey == "" {
		return nil, false, fmt.Errorf("store delivery: source and dedupe key are required")
	}
	p := &pending{d: d, at: w.clock.Now(), done: make(chan struct{}), leadCh: make(chan struct{}, 1)}
	w.mu.Lock()
	w.queue = append(w.queue, p)
	lead := !w.leading
	if lead {
		w.leading = true
	}
	w.mu.Unlock()
	if !lead {
		select {
		case <-p.done:
			return p.event, p.isNew, p.err
		case <-p.leadCh:
			// The previous leader handed over with our row still queued.
		}
	}
	w.flushOnce()
	<-p.done
	return p.event, p.isNew, p.err
}

// flushOnce writes one batch from the head of the queue, then hands the
// lead to the next queued caller, or gives it up when the queue is empty.
func (w *Writer) flushOnce() {
	w.mu.Lock()
	n := len(w.queue)
	if n > w.maxBatch {
		n = w.maxBatch
	}
	batch := w.queue[:n:n]
	w.queue = w.queue[n:]
	w.mu.Unlock()

	w.write(batch)
	for _, p := range batch {
		close(p.done)
	}

	w.mu.Lock()
	if len(w.queue) == 0 {
		w.leading = false
		w.mu.Unlock()
		return
	}
	next := w.queue[0]
	w.mu.Unlock()
	next.leadCh <- struct{}{}
}

// write inserts a batch in one statement and fills in each caller's result.
// It runs on a context of its own: one caller giving up must not fail the
// others' rows.
func (w *Writer) write(batch []*pending) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
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
