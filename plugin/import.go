package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/refrain-dev/refrain/plugin/customer/csvimport"
)

// ImportOptions configures ImportCustomers.
type ImportOptions struct {
	// DryRun reports what would change without writing.
	DryRun bool
	// Partial accepts rejected rows: without it ImportCustomers returns
	// ErrRowsRejected when any row is rejected (after importing the others).
	Partial bool
	// Name is the file name, recorded in consent proof.
	Name string
	// Stdout receives the summary; Stderr the progress display.
	Stdout, Stderr io.Writer
}

// ImportCustomers imports a customer CSV into the configured database (see
// `refrain import customers`), showing progress on Stderr (a redrawn bar on
// a terminal, a periodic line otherwise) and the summary on Stdout.
func ImportCustomers(ctx context.Context, cfg Config, r io.Reader, opts ImportOptions) error {
	db, err := openMigrated(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	var progress func(csvimport.Progress)
	if f, ok := opts.Stderr.(*os.File); ok {
		progress = csvimport.NewProgress(f)
	} else if opts.Stderr != nil {
		progress = csvimport.NewLogProgress(opts.Stderr, csvimport.DefaultLogProgressInterval)
	}
	workers := 1
	if cfg.DatabaseMaxConns >= 4 {
		workers = 2
	}
	rep, err := csvimport.Run(ctx, db, r, csvimport.Options{DryRun: opts.DryRun, Progress: progress,
		Name: filepath.Base(opts.Name), Workers: workers})
	if err != nil {
		return err
	}
	if !opts.DryRun {
		// List hygiene: statuses for the new rows; erased addresses stay erased.
		n, err := ImportHygiene(ctx, db, cfg)
		if err != nil {
			return err
		}
		if n > 0 && opts.Stdout != nil {
			fmt.Fprintf(opts.Stdout, "%d rows held an erased address: erased again and suppressed\n", n)
		}
	}
	if err := writeImportReport(opts.Stdout, rep); err != nil {
		return err
	}
	if rep.Skipped > 0 && !opts.Partial {
		done := "the other rows were imported"
		if opts.DryRun {
			done = "nothing was written"
		}
		return fmt.Errorf("%w: %d of %d rows (listed above); %s. Fix them and import the file again "+
			"(rows already imported stay unchanged), or give --partial to accept the rejections", ErrRowsRejected, rep.Skipped, rep.Rows, done)
	}
	return nil
}

// ErrRowsRejected is returned by ImportCustomers when rows were rejected and
// ImportOptions.Partial is not set.
var ErrRowsRejected = errors.New("rows rejected")

func writeImportReport(w io.Writer, rep csvimport.Report) error {
	if w == nil {
		return nil
	}
	verb := "imported"
	if rep.DryRun {
		verb = "would import"
		fmt.Fprintln(w, "dry run: nothing was written")
	}
	fmt.Fprintf(w, "%d rows in %s: %s %d, updated %d, unchanged %d, skipped %d\n",
		rep.Rows, rep.Duration.Round(1e6), verb, rep.Imported, rep.Updated, rep.Unchanged, rep.Skipped)
	if len(rep.Rejected) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "LINE\tEMAIL\tREASON")
		for _, rj := range rep.Rejected {
			fmt.Fprintf(tw, "%d\t%s\t%s\n", rj.Line, rj.Email, rj.Reason)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if rep.RejectedNotListed > 0 {
		fmt.Fprintf(w, "... and %d more rejected rows not listed\n", rep.RejectedNotListed)
	}
	return nil
}
