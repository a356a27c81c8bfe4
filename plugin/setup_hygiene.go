package plugin

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/hygiene"
	"github.com/refrain-dev/refrain/plugin/loyalty"
)

// setupHygiene loads the hygiene checker and builds the loyalty service
// once, before the setups that hook them in (storefront, mail).
func (p *Plugin) setupHygiene() error {
	if p.resolver.Hygiene != nil {
		return nil
	}
	cfg := p.cfg.HygieneConfig
	chk, err := hygiene.NewChecker(hygiene.Options{DisposableFile: cfg.DisposableDomainsFile})
	if err != nil {
		return fmt.Errorf("setting REFRAIN_DISPOSABLE_DOMAINS_FILE: %w", err)
	}
	tiers, err := cfg.loyaltyTiers()
	if err != nil {
		return fmt.Errorf("setting REFRAIN_LOYALTY_TIERS: %w", err)
	}
	allowed, err := cfg.marketingStatuses()
	if err != nil {
		return fmt.Errorf("setting REFRAIN_HYGIENE_MARKETING_STATUSES: %w", err)
	}
	refURL := cfg.ReferralURL
	if refURL == "" {
		refURL = p.cfg.StoreURL
	}
	if refURL == "" {
		refURL = p.cfg.PublicURL
	}
	p.resolver.Hygiene, p.resolver.HygieneAllowed = chk, allowed
	p.resolver.LoyaltyService = loyalty.New(loyalty.Options{PointsPerUnit: cfg.LoyaltyPointsPerUnit, Tiers: tiers,
		TierPeriod: cfg.LoyaltyTierPeriod, ReferralRewardPoints: cfg.ReferralRewardPoints, ReferralURL: refURL,
		Logger: p.logger})
	return nil
}

// marketingHold is the outbox's MarketingHold: list hygiene statuses.
func (p *Plugin) marketingHold(ctx context.Context, db bun.IDB, customerPKs []int64) (map[int64]string, error) {
	return hygiene.MarketingHolds(ctx, db, p.resolver.Hygiene, p.resolver.HygieneAllowed, customerPKs)
}

// hygieneApplied is the ingest hook: the addresses an applied storefront
// event carried get their hygiene status.
func (p *Plugin) hygieneApplied(ctx context.Context, db bun.IDB, ev event.Event) error {
	emails, _ := eventCustomers(ev)
	return hygiene.RefreshEmails(ctx, db, p.resolver.Hygiene, emails)
}

// HygieneReport counts the base by hygiene status and by domain, with the
// customers behind each (refrain hygiene report).
func (p *Plugin) HygieneReport(ctx context.Context, o hygiene.ReportOpts) (*hygiene.Report, error) {
	if err := p.setupHygiene(); err != nil {
		return nil, err
	}
	return hygiene.BuildReport(ctx, p.db, p.resolver.Hygiene, p.clock.Now(), o)
}
