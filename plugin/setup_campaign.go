package plugin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/campaign"
	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/forecast"
	"github.com/refrain-dev/refrain/plugin/pressure"
	"github.com/refrain-dev/refrain/plugin/segment"
	"github.com/refrain-dev/refrain/plugin/stats"
	"github.com/refrain-dev/refrain/scenarios/engine"
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
	p.resolver.Forecaster = newForecaster(p.db, p.clock, p.resolver.Pressure, p.resolver.Scenarios, p.cfg.StoreAnniversary)
	cs.Warn = p.resolver.Forecaster.Warnings
	p.addWorker("campaigns", cs.Run)
	return nil
}

// Forecaster returns the pressure forecast.
func (p *Plugin) Forecaster() *forecast.Forecaster { return p.resolver.Forecaster }

// newForecaster builds the forecast on the pressure policy and the
// scenarios compiled by c.
func newForecaster(db *bun.DB, clk clock.Clock, policy *pressure.Policy, c forecast.Compiler, anniversary string) *forecast.Forecaster {
	return &forecast.Forecaster{DB: db, Clock: clk, Policy: policy, Audience: audienceParser(clk), Scenarios: c,
		StoreAnniversary: anniversary}
}

// Campaigns returns the campaign service.
func (p *Plugin) Campaigns() *campaign.Service { return p.resolver.Campaigns }

// audienceParser reads campaign audiences as segment audiences at the
// clock's now.
func audienceParser(clk interface{ Now() time.Time }) campaign.AudienceParser {
	return func(ctx context.Context, db bun.IDB, spec string) (campaign.Audience, error) {
		return segment.ParseAudience(ctx, db, spec, clk.Now())
	}
}

// OpenForecaster opens the configured database (applying migrations when
// AutoMigrate is on) for a forecast alone, the CLI's refrain pressure
// forecast: no handler, storefront, mail or worker is set up. The returned
// function closes the database.
func OpenForecaster(ctx context.Context, cfg Config) (*forecast.Forecaster, func() error, error) {
	db, err := openMigrated(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	policy, err := cfg.pressurePolicy()
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return newForecaster(db, clock.Real{}, policy, forecast.CompilerFunc(engine.CompileVersion), cfg.StoreAnniversary), db.Close, nil
}
