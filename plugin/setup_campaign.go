package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/campaign"
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
		Policy: p.resolver.Pressure, Audience: parseAudience, Templates: svc.Engine(),
		Batch: p.cfg.CampaignBatch, Concurrency: p.cfg.CampaignConcurrency, Lease: p.cfg.CampaignLease, Poll: p.cfg.CampaignPoll})
	if err != nil {
		return fmt.Errorf("configure campaigns: %w", err)
	}
	p.resolver.Pressure.Reservations = cs
	p.resolver.Campaigns = cs
	p.addWorker("campaigns", cs.Run)
	return nil
}

// Campaigns returns the campaign service.
func (p *Plugin) Campaigns() *campaign.Service { return p.resolver.Campaigns }

// parseAudience reads a campaign audience: all (every subscriber) or
// tag:NAME. Segments (issue 5) plug in here once they land on main.
func parseAudience(_ context.Context, _ bun.IDB, spec string) (campaign.Audience, error) {
	switch {
	case spec == "all":
		return allAudience{}, nil
	case strings.HasPrefix(spec, "tag:") && strings.TrimSpace(spec[4:]) != "":
		return tagAudience(strings.TrimSpace(spec[4:])), nil
	}
	return nil, fmt.Errorf("unknown audience %q: want all or tag:NAME", spec)
}

type allAudience struct{}

func (allAudience) Where(bun.IDB) (string, []any) { return "", nil }

type tagAudience string

func (t tagAudience) Where(db bun.IDB) (string, []any) {
	return store.JSONArrayContains(db, "c.tags"), []any{string(t)}
}
