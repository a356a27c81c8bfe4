package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/campaign"
	"github.com/refrain-dev/refrain/plugin/segment"
	"github.com/refrain-dev/refrain/plugin/stats"
	"github.com/refrain-dev/refrain/plugin/store"
)

// setupCampaign builds the campaign sender on the outbox and the pressure
// policy, lets scheduled campaigns reserve their slots, and registers the
// sending worker. It runs after setupMail and setupPressure.
func (p *Plugin) setupCampaign() error {
	svc := p.resolver.Mail
	if svc == nil || p.resolver.Pressure == nil {
		return errors.New("configure campaigns: the mail service and the pressure policy are not set up")
	}
	cs, err := campaign.New(campaign.Options{DB: p.db, Clock: p.clock, Logger: p.logger, Outbox: svc,
		Policy: p.resolver.Pressure, Audience: audienceParser(p.clock), Templates: svc.Engine(),
		Winner: campaign.BayesPicker{Rule: stats.Rule{MinSample: int64(p.cfg.ABMinSample), Threshold: p.cfg.ABThreshold}},
		Batch:  p.cfg.CampaignBatch, Concurrency: p.cfg.CampaignConcurrency, Lease: p.cfg.CampaignLease, Poll: p.cfg.CampaignPoll})
	if err != nil {
		return fmt.Errorf("configure campaigns: %w", err)
	}
	p.resolver.Pressure.Reservations = cs
	p.resolver.Campaigns = cs
	p.resolver.Forecaster = &campaign.Forecaster{DB: p.db, Campaigns: cs, Scenarios: p.resolver.Scenarios}
	cs.Warn = p.resolver.Forecaster.Warnings
	p.addWorker("campaigns", cs.Run)
	return nil
}

// Forecaster returns the pressure forecast.
func (p *Plugin) Forecaster() *campaign.Forecaster { return p.resolver.Forecaster }

// Campaigns returns the campaign service.
func (p *Plugin) Campaigns() *campaign.Service { return p.resolver.Campaigns }

// parseAudience reads a campaign audience: all (every subscriber) or
// tag:NAME. Segments (issue 5) plug in here once they land on main.
// audienceParser reads a campaign's audience: all, tag:NAME, a stored
// segment by id or name, or a segment rule written in place. A segment is
// read as its rule at now, so the audience a campaign fixes when it starts
// sending is the segment's rule at that moment, over the whole base (not
// the last swept membership).
func audienceParser(clk interface{ Now() time.Time }) campaign.AudienceParser {
	return func(ctx context.Context, db bun.IDB, spec string) (campaign.Audience, error) {
		spec = strings.TrimSpace(spec)
		switch {
		case spec == "all":
			return allAudience{}, nil
		case strings.HasPrefix(spec, "tag:") && strings.TrimSpace(spec[4:]) != "":
			return tagAudience(strings.TrimSpace(spec[4:])), nil
		case spec == "":
			return nil, errors.New("audience is empty: want all, tag:NAME, a segment id or name, or a segment rule")
		}
		rule, err := storedRule(ctx, db, spec)
		if err != nil {
			return nil, err
		}
		r, err := segment.Compile(rule)
		if err != nil {
			return nil, fmt.Errorf("not all, tag:NAME or a stored segment, and not a rule: %w", err)
		}
		return segmentAudience{rule: r, now: clk.Now()}, nil
	}
}

// storedRule is the rule of the stored segment spec names (by name, else
// by numeric id), or spec itself when it names none.
func storedRule(ctx context.Context, db bun.IDB, spec string) (string, error) {
	s, err := segment.GetByName(ctx, db, spec)
	if err == nil {
		return s.Rule, nil
	}
	if !errors.Is(err, segment.ErrNotFound) {
		return "", err
	}
	id, perr := strconv.ParseInt(spec, 10, 64)
	if perr != nil {
		return spec, nil
	}
	if s, err = segment.Get(ctx, db, id); err != nil {
		return "", fmt.Errorf("segment %d: %w", id, err)
	}
	return s.Rule, nil
}

type segmentAudience struct {
	rule *segment.Rule
	now  time.Time
}

func (a segmentAudience) Where(db bun.IDB) (string, []any) {
	return a.rule.Where(store.DialectOf(db), a.now)
}

type allAudience struct{}

func (allAudience) Where(bun.IDB) (string, []any) { return "", nil }

type tagAudience string

func (t tagAudience) Where(db bun.IDB) (string, []any) {
	return store.JSONArrayContains(db, "c.tags"), []any{string(t)}
}

// WritePressureForecast prints the pressure forecast of [from, to) (the
// CLI's `refrain pressure forecast`): one line a day, then the programs
// deferred or skipped.
func WritePressureForecast(ctx context.Context, cfg Config, w io.Writer, from, to time.Time, segment string, asJSON bool) error {
	p, err := New(ctx, cfg, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return err
	}
	defer p.Close()
	start := time.Now()
	fc, err := p.Forecaster().Forecast(ctx, from, to, segment)
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
