package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/campaign"
	"github.com/refrain-dev/refrain/plugin/segment"
	"github.com/refrain-dev/refrain/plugin/stats"
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

// audienceParser reads campaign audiences as segment audiences at the
// clock's now.
func audienceParser(clk interface{ Now() time.Time }) campaign.AudienceParser {
	return func(ctx context.Context, db bun.IDB, spec string) (campaign.Audience, error) {
		return segment.ParseAudience(ctx, db, spec, clk.Now())
	}
}

// OpenForecaster opens the configured database for a forecast alone (the
// CLI's refrain pressure forecast). The returned function closes it.
func OpenForecaster(ctx context.Context, cfg Config) (*campaign.Forecaster, func() error, error) {
	p, err := New(ctx, cfg, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return nil, nil, err
	}
	return p.Forecaster(), p.Close, nil
}
