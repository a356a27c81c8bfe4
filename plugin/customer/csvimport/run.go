// Package csvimport imports customers from a CSV file: the engine behind
// `refrain import customers FILE.csv`. It streams the file row by row,
// validates and normalises each row, and upserts customers by normalised
// email in batches, one transaction per batch, so that a crash loses at most
// the batches in flight and a re-run completes the import without changing
// what is already stored.
//
// On PostgreSQL each batch costs one SELECT of the rows already stored, one
// COPY of the new rows straight into customers and, when some stored rows
// change, one set-based UPDATE. On SQLite it is one SELECT, one multi-row
// INSERT and one set-based UPDATE in an immediate transaction.
//
// It must not import plugin/storefront or a storefront adapter,
// plugin/commerce, graph, net/http or the assembly.
package csvimport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"sync"
	"time"

	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/store"
	"github.com/uptrace/bun"
)

// Defaults of Options.
const (
	// DefaultBatchSize is the number of rows written per transaction. At
	// 1,000 rows a first import of a million rows on PostgreSQL runs as fast
	// as at 5,000, but a re-run (one lookup per batch, nothing written) is a
	// third slower; bench/import measures both.
	DefaultBatchSize = 5000
	// DefaultMaxRejections is the number of rejected rows listed in a Report.
	DefaultMaxRejections = 10000
	// DefaultProgressInterval is the shortest time between two Progress calls.
	DefaultProgressInterval = 100 * time.Millisecond
	// ConsentMethod is the consent method recorded for consent taken from a file.
	ConsentMethod = "import"
)

// maxAttempts bounds how often a batch is retried after another writer
// changed or created one of its customers between our read and our write.
const maxAttempts = 3

// Options tunes an import. The zero value imports for real with the defaults.
type Options struct {
	// DryRun reads the file and the stored customers and reports what an
	// import would do, without writing anything.
	DryRun bool
	// BatchSize is the number of rows read, looked up and written per
	// transaction. Default DefaultBatchSize (5,000 rows).
	BatchSize int
	// Workers is the number of batches written at the same time on
	// PostgreSQL, each on a connection of its own. Default 1. SQLite has a
	// single writer and always uses 1.
	Workers int
	// Clock gives the time recorded as updated_at, consent time and, when
	// the file has none, created_at. Default clock.Real.
	Clock clock.Clock
	// Progress, when set, is called with the progress of the read at most
	// once per DefaultProgressInterval, and once more at the end with
	// Finished set. Calls never overlap.
	Progress func(Progress)
	// TotalBytes is the size of the input, used for the percentage and the
	// ETA. Default: the size of r when r is a regular file (or has a Len
	// method, as bytes.Reader and strings.Reader do), else unknown.
	TotalBytes int64
	// Logger receives one debug line per batch and a summary. Default: discard.
	Logger *slog.Logger
	// Source is the sign-up source of new customers and the consent source
	// recorded with consent from the file. Default customer.SourceImport.
	Source customer.Source
	// Name is the file name recorded in the consent proof. Optional.
	Name string
	// MaxRejections is the number of rejected rows listed in the Report; the
	// others are only counted. Default DefaultMaxRejections (10,000).
	MaxRejections int
}

func (o Options) withDefaults() Options {
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Source == "" {
		o.Source = customer.SourceImport
	}
	if o.MaxRejections <= 0 {
		o.MaxRejections = DefaultMaxRejections
	}
	return o
}

// Report says what an import did, or with DryRun what it would do.
type Report struct {
	// Rows is the number of data rows read (the header excluded).
	Rows int
	// Imported is the number of customers created.
	Imported int
	// Updated is the number of stored customers changed.
	Updated int
	// Unchanged is the number of rows that matched a stored customer whose
	// stored values they would not change.
	Unchanged int
	// Skipped is the number of rejected rows.
	Skipped int
	// Rejected lists the first MaxRejections rejected rows, in file order.
	Rejected []Rejection
	// RejectedNotListed is the number of rejected rows left out of Rejected.
	RejectedNotListed int
	// DryRun is set when nothing was written.
	DryRun bool
	// Duration is the wall time of the import.
	Duration time.Duration
}

// Rejection is a row the import refused.
type Rejection struct {
	// Line is the line of the file the row starts on; the header is line 1.
	Line int
	// Email is the email field as given, possibly empty.
	Email string
	// Reason says why the row was refused.
	Reason string
}

// Progress is a snapshot of an import's progress through its input.
type Progress struct {
	// Rows is the number of data rows read so far.
	Rows int64
	// Bytes is the number of input bytes read so far.
	Bytes int64
	// TotalBytes is the size of the input, 0 when unknown.
	TotalBytes int64
	// Elapsed is the time since the import started.
	Elapsed time.Duration
	// Rate is the average number of rows read per second.
	Rate float64
	// Finished is set on the last call, once every batch is written.
	Finished bool
}

// Fraction returns the share of the input read, between 0 and 1, and false
// when the size of the input is unknown.
func (p Progress) Fraction() (float64, bool) {
	if p.TotalBytes <= 0 {
		return 0, false
	}
	return min(1, float64(p.Bytes)/float64(p.TotalBytes)), true
}

// ETA returns the estimated time left, and false when it cannot be estimated.
func (p Progress) ETA() (time.Duration, bool) {
	if p.TotalBytes <= 0 || p.Bytes <= 0 || p.Elapsed <= 0 {
		return 0, false
	}
	left := p.TotalBytes - p.Bytes
	if left <= 0 {
		return 0, true
	}
	return time.Duration(float64(p.Elapsed) * float64(left) / float64(p.Bytes)), true
}

// ErrMissingColumn is returned when the header lacks a required column.
var ErrMissingColumn = errors.New("missing column")

// Run imports the customers of the CSV file r into db. It returns an error
// only when the import cannot go on (an unreadable file, a header without
// an email column, a database failure); bad rows are listed in the Report.
// On error the Report holds what was done before the failure.
func Run(ctx context.Context, db *bun.DB, r io.Reader, opts Options) (Report, error) {
	opts = opts.withDefaults()
	start := time.Now()
	if opts.TotalBytes <= 0 {
		opts.TotalBytes = sizeOf(r)
	}
	p, err := newParser(r, opts)
	if err != nil {
		return Report{}, err
	}
	workers := opts.Workers
	if !store.ConcurrentWriters(db) {
		workers = 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		mu       sync.Mutex
		rep      = Report{DryRun: opts.DryRun}
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
	}

	batches := make(chan []row, workers)
	var parseDone sync.WaitGroup
	parseDone.Add(1)
	go func() {
		defer parseDone.Done()
		defer close(batches)
		if err := p.run(ctx, start, batches); err != nil {
			fail(err)
		}
	}()

	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := newWriter(ctx, db, opts)
			if err != nil {
				fail(err)
				for range batches {
				}
				return
			}
			defer w.close()
			for b := range batches {
				if ctx.Err() != nil {
					continue
				}
				c, err := w.apply(ctx, b)
				if err != nil {
					fail(fmt.Errorf("import rows from line %d: %w", b[0].line, err))
					continue
				}
				mu.Lock()
				rep.Imported += c.imported
				rep.Updated += c.updated
				rep.Unchanged += c.unchanged
				mu.Unlock()
				opts.Logger.DebugContext(ctx, "import batch written", slog.Int("first_line", b[0].line),
					slog.Int("rows", len(b)), slog.Int("imported", c.imported), slog.Int("updated", c.updated),
					slog.Int("unchanged", c.unchanged))
			}
		}()
	}
	wg.Wait()
	parseDone.Wait()

	rep.Rows = p.rows
	rep.Skipped = p.skipped
	rep.Rejected = p.rejected
	rep.RejectedNotListed = p.skipped - len(p.rejected)
	rep.Duration = time.Since(start)
	if opts.Progress != nil {
		opts.Progress(p.progress(start, true))
	}
	if firstErr != nil {
		return rep, firstErr
	}
	opts.Logger.InfoContext(ctx, "customer import done", slog.Int("rows", rep.Rows), slog.Int("imported", rep.Imported),
		slog.Int("updated", rep.Updated), slog.Int("unchanged", rep.Unchanged), slog.Int("skipped", rep.Skipped),
		slog.Bool("dry_run", rep.DryRun), slog.Duration("duration", rep.Duration))
	return rep, nil
}

// sizeOf returns the size of r when it can tell without reading, else 0.
func sizeOf(r io.Reader) int64 {
	switch v := r.(type) {
	case interface{ Stat() (fs.FileInfo, error) }:
		if fi, err := v.Stat(); err == nil && fi.Mode().IsRegular() {
			return fi.Size()
		}
	case interface{ Len() int }:
		return int64(v.Len())
	}
	return 0
}
