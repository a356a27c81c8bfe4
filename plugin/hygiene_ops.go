package plugin

import (
	"context"
	"fmt"
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

// HygieneReport builds the hygiene report of the configured database
// (refrain hygiene report): counts by status and by domain, and the
// customers behind each.
func HygieneReport(ctx context.Context, cfg Config, o hygiene.ReportOpts) (*hygiene.Report, error) {
	db, err := openMigrated(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	chk, err := checkerOf(cfg)
	if err != nil {
		return nil, err
	}
	return hygiene.BuildReport(ctx, db, chk, time.Now().UTC(), o)
}
