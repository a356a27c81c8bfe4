package plugin

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/refrain-dev/refrain/plugin/hygiene"
	"github.com/refrain-dev/refrain/plugin/loyalty"
)

// HygieneConfig holds the settings of list hygiene, loyalty and referral.
type HygieneConfig struct {
	// DisposableDomainsFile replaces the embedded disposable-domain list.
	DisposableDomainsFile string `env:"REFRAIN_DISPOSABLE_DOMAINS_FILE" yaml:"disposable_domains_file" default:"" doc:"file of disposable domains, one per line, replacing the embedded list (empty: the embedded disposable-email-domains list)"`
	// RefuseDisposable refuses disposable addresses at subscribe.
	RefuseDisposable bool `env:"REFRAIN_HYGIENE_REFUSE_DISPOSABLE" yaml:"hygiene_refuse_disposable" default:"true" doc:"refuse disposable addresses at subscribe"`
	// MarketingStatuses are the hygiene statuses marketing mail may go to.
	MarketingStatuses string `env:"REFRAIN_HYGIENE_MARKETING_STATUSES" yaml:"hygiene_marketing_statuses" default:"OK,ROLE" doc:"hygiene statuses marketing mail goes to, separated by commas (OK, ROLE, TYPO_SUSPECTED, DISPOSABLE)"`
	// LoyaltyPointsPerUnit is the points a paid order earns per currency unit.
	LoyaltyPointsPerUnit float64 `env:"REFRAIN_LOYALTY_POINTS_PER_UNIT" yaml:"loyalty_points_per_unit" default:"1" doc:"loyalty points earned per currency unit paid (refunds and cancellations take them back)"`
	// LoyaltyTiers are the tiers and the spend over the period each needs.
	LoyaltyTiers string `env:"REFRAIN_LOYALTY_TIERS" yaml:"loyalty_tiers" default:"bronze:100,silver:500,gold:1000" doc:"loyalty tiers as name:spend in currency units, lowest first"`
	// LoyaltyTierPeriod is the rolling period spend is counted over for tiers.
	LoyaltyTierPeriod time.Duration `env:"REFRAIN_LOYALTY_TIER_PERIOD" yaml:"loyalty_tier_period" default:"8760h" doc:"rolling period over which spend counts towards a tier"`
	// ReferralRewardPoints are given to a referrer on the referred customer's first paid order.
	ReferralRewardPoints int64 `env:"REFRAIN_REFERRAL_REWARD_POINTS" yaml:"referral_reward_points" default:"500" doc:"points a referrer earns when a referred customer's first order is paid"`
	// ReferralURL is the page referral links point to.
	ReferralURL string `env:"REFRAIN_REFERRAL_URL" yaml:"referral_url" default:"" doc:"page referral links point to, given ?ref=CODE (empty: REFRAIN_STORE_URL, else REFRAIN_PUBLIC_URL)"`
}

// loyaltyTiers parses LoyaltyTiers.
func (c HygieneConfig) loyaltyTiers() ([]loyalty.Tier, error) {
	var out []loyalty.Tier
	for _, part := range strings.Split(c.LoyaltyTiers, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, spend, ok := strings.Cut(part, ":")
		v, err := strconv.ParseFloat(strings.TrimSpace(spend), 64)
		if !ok || strings.TrimSpace(name) == "" || err != nil || v < 0 {
			return nil, fmt.Errorf("%q is not name:spend", part)
		}
		t := loyalty.Tier{Name: strings.TrimSpace(name), MinSpendMinor: int64(v * 100)}
		if n := len(out); n > 0 && t.MinSpendMinor <= out[n-1].MinSpendMinor {
			return nil, fmt.Errorf("tier %s must need more than %s", t.Name, out[n-1].Name)
		}
		out = append(out, t)
	}
	return out, nil
}

// marketingStatuses parses MarketingStatuses.
func (c HygieneConfig) marketingStatuses() (map[hygiene.Status]bool, error) {
	out := map[hygiene.Status]bool{}
	for _, s := range strings.Split(c.MarketingStatuses, ",") {
		st := hygiene.Status(strings.ToUpper(strings.TrimSpace(s)))
		if st == "" {
			continue
		}
		if !st.Valid() {
			return nil, fmt.Errorf("unknown status %q", s)
		}
		out[st] = true
	}
	return out, nil
}

func (c HygieneConfig) validate() []error {
	var errs []error
	if _, err := c.loyaltyTiers(); err != nil {
		errs = append(errs, fmt.Errorf("setting REFRAIN_LOYALTY_TIERS: %w", err))
	}
	if _, err := c.marketingStatuses(); err != nil {
		errs = append(errs, fmt.Errorf("setting REFRAIN_HYGIENE_MARKETING_STATUSES: %w", err))
	}
	if c.LoyaltyPointsPerUnit < 0 {
		errs = append(errs, fmt.Errorf("setting REFRAIN_LOYALTY_POINTS_PER_UNIT: must not be negative"))
	}
	if c.LoyaltyTierPeriod <= 0 {
		errs = append(errs, fmt.Errorf("setting REFRAIN_LOYALTY_TIER_PERIOD: must be positive"))
	}
	if c.ReferralRewardPoints < 0 {
		errs = append(errs, fmt.Errorf("setting REFRAIN_REFERRAL_REWARD_POINTS: must not be negative"))
	}
	return errs
}
