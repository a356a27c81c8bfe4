package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/refrain-dev/refrain/plugin"
	"github.com/refrain-dev/refrain/plugin/hygiene"
)

// writePressureForecast prints the pressure forecast of [from, to) (refrain
// pressure forecast): one line a day, then the programs deferred or skipped.
func writePressureForecast(ctx context.Context, cfg plugin.Config, w io.Writer, from, to time.Time, segment string, asJSON bool) error {
	f, closeDB, err := plugin.OpenForecaster(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeDB()
	start := time.Now()
	fc, err := f.Forecast(ctx, from, to, segment)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(fc)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DAY\tSENDS\tEXPECTED\tCAMPAIGNS\tSCENARIOS\tYEARLY\tOVER CAP\tDEFERRED / SKIPPED")
	for _, d := range fc.Days {
		var held []string
		for _, pd := range d.Programs {
			if pd.Deferred > 0 || pd.Skipped > 0 {
				held = append(held, fmt.Sprintf("%s %d/%d", pd.Program, pd.Deferred, pd.Skipped))
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%d\t%d\t%d\t%d\t%s\n", d.Date.Format(time.DateOnly), d.Sends, d.Expected,
			d.Campaigns, d.Scenarios, d.Yearly, d.OverCap, strings.Join(held, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d days projected for %d customers (%d distinct plans) in %s\n", len(fc.Days), fc.Customers, fc.Cohorts,
		time.Since(start).Round(time.Millisecond))
	return nil
}

// writeKPIRebuild opens the configured database and rebuilds the KPI
// rollups, writing the progress to w (refrain kpis rebuild).
func writeKPIRebuild(ctx context.Context, cfg plugin.Config, w io.Writer, from, to time.Time) error {
	p, err := plugin.New(ctx, cfg, plugin.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return err
	}
	defer p.Close()
	return p.RebuildKPIs(ctx, from, to, w)
}

// writeHygieneReport writes the hygiene report of the configured database
// (refrain hygiene report): counts by status and by domain, and the
// customers behind each, as tables or JSON.
func writeHygieneReport(ctx context.Context, cfg plugin.Config, w io.Writer, o hygiene.ReportOpts, asJSON bool) error {
	rep, err := plugin.HygieneReport(ctx, cfg, o)
	if err != nil {
		return err
	}
	if asJSON {
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
	parts := make([]string, len(refs))
	for i, r := range refs {
		parts[i] = r.Email + " (" + r.ID + ")"
	}
	return strings.Join(parts, ", ")
}
