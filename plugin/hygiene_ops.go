package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/hygiene"
	"github.com/refrain-dev/refrain/plugin/privacy"
)

// checkerOf builds the hygiene checker of the configuration.
func checkerOf(cfg Config) (*hygiene.Checker, error) {
	chk, err := hygiene.NewChecker(hygiene.Options{DisposableFile: cfg.DisposableDomainsFile})
	if err != nil {
		return nil, fmt.Errorf("setting REFRAIN_DISPOSABLE_DOMAINS_FILE: %w", err)
	}
	return chk, nil
}

// ImportHygiene runs after an import: statuses for the new rows, and
// erased addresses erased again. It returns how many were erased again.
func ImportHygiene(ctx context.Context, db *bun.DB, cfg Config) (int, error) {
	chk, err := checkerOf(cfg)
	if err != nil {
		return 0, err
	}
	var erased []int64
	err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		pks, _, err := hygiene.AfterImport(ctx, tx, chk)
		if err != nil {
			return err
		}
		erased = pks
		now := time.Now().UTC()
		for _, pk := range pks {
			if err := privacy.Erase(ctx, tx, now, pk, "import of an erased address"); err != nil {
				return err
			}
		}
		return nil
	})
	return len(erased), err
}

// HygieneReportOptions configure WriteHygieneReport.
type HygieneReportOptions struct {
	// Customers and Domains bound the lists (hygiene.ReportOpts).
	Customers, Domains int
	// JSON writes the report as JSON instead of tables.
	JSON bool
}

// WriteHygieneReport writes the hygiene report of the configured database
// (refrain hygiene report): counts by status and by domain, and the
// customers behind each.
func WriteHygieneReport(ctx context.Context, cfg Config, w io.Writer, o HygieneReportOptions) error {
	db, err := openMigrated(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	chk, err := checkerOf(cfg)
	if err != nil {
		return err
	}
	rep, err := hygiene.BuildReport(ctx, db, chk, time.Now().UTC(), hygiene.ReportOpts{Customers: o.Customers, Domains: o.Domains})
	if err != nil {
		return err
	}
	if o.JSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(w, "%d customers with an address (%d checked for the first time now)\n\n", rep.Total, rep.Unchecked)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tCOUNT\tCUSTOMERS")
	for _, g := range rep.ByStatus {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", g.Key, g.Count, refsOf(g.Customers))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "DOMAIN\tCOUNT\tNOT OK\tCUSTOMERS NOT OK")
	for _, d := range rep.ByDomain {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", d.Key, d.Count, d.Count-d.ByStatus[hygiene.StatusOK], refsOf(d.Customers))
	}
	return tw.Flush()
}

func refsOf(refs []hygiene.CustomerRef) string {
	out := ""
	for i, r := range refs {
		if i > 0 {
			out += ", "
		}
		out += r.Email + " (" + r.ID + ")"
	}
	return out
}
