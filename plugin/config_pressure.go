package plugin

import (
	"fmt"
	"time"

	"github.com/refrain-dev/refrain/plugin/pressure"
)

// PressureConfig holds the marketing pressure policy and the campaign sender settings.
type PressureConfig struct {
	// PressureCap is the most marketing messages a customer gets in the window.
	PressureCap int `env:"REFRAIN_PRESSURE_CAP" yaml:"pressure_cap" default:"3" doc:"most marketing messages per customer in the rolling window (0: no cap); transactional mail is never capped"`
	// PressureWindowDays is the rolling window of the cap, in days.
	PressureWindowDays int `env:"REFRAIN_PRESSURE_WINDOW_DAYS" yaml:"pressure_window_days" default:"7" doc:"rolling window of the pressure cap, in days"`
	// PressureMinGap is the least time between two marketing messages to one customer.
	PressureMinGap time.Duration `env:"REFRAIN_PRESSURE_MIN_GAP" yaml:"pressure_min_gap" default:"16h" doc:"least time between two marketing messages to one customer"`
	// PressureQuietHours are local times when no marketing mail goes out.
	PressureQuietHours string `env:"REFRAIN_PRESSURE_QUIET_HOURS" yaml:"pressure_quiet_hours" default:"21:00-08:00" doc:"quiet hours in the customer's time zone, HH:MM-HH:MM, or none"`
	// PressureOnCapped is what happens to a message that would break the policy.
	PressureOnCapped string `env:"REFRAIN_PRESSURE_ON_CAPPED" yaml:"pressure_on_capped" default:"defer" doc:"what a message that would break the policy does: defer (up to the max delay, then skip), skip, or override"`
	// PressureMaxDelay bounds a deferral.
	PressureMaxDelay time.Duration `env:"REFRAIN_PRESSURE_MAX_DELAY" yaml:"pressure_max_delay" default:"48h" doc:"longest a deferred message waits, from when it was first due; then it is skipped"`
	// PressurePrograms overrides the policy per program.
	PressurePrograms string `env:"REFRAIN_PRESSURE_PROGRAMS" yaml:"pressure_programs" default:"" doc:"per-program overrides: program:key=value,...;program2:... with keys cap, window, min_gap, quiet_hours, on_capped, max_delay (cart-abandonment:on_capped=override)"`
	// CampaignBatch is how many recipients one campaign batch takes.
	CampaignBatch int `env:"REFRAIN_CAMPAIGN_BATCH" yaml:"campaign_batch" default:"1000" doc:"recipients per campaign batch (one provider call), at most 1000"`
	// CampaignConcurrency is how many campaign batches one replica has in flight.
	CampaignConcurrency int `env:"REFRAIN_CAMPAIGN_CONCURRENCY" yaml:"campaign_concurrency" default:"8" doc:"campaign batches in flight per replica"`
	// CampaignLease is how long a replica holds a claimed batch.
	CampaignLease time.Duration `env:"REFRAIN_CAMPAIGN_LEASE" yaml:"campaign_lease" default:"2m" doc:"how long a replica holds a campaign while it fixes its audience; a replica that dies leaves it to expire and another resumes it (batches are claimed inside their own transaction)"`
	// CampaignPoll is how long an idle campaign worker waits.
	CampaignPoll time.Duration `env:"REFRAIN_CAMPAIGN_POLL" yaml:"campaign_poll" default:"1s" doc:"how long an idle campaign worker waits before looking again"`
}

// PressureRules returns the global rules of the policy.
func (c PressureConfig) PressureRules() (pressure.Rules, error) {
	q, err := pressure.ParseQuietHours(c.PressureQuietHours)
	if err != nil {
		return pressure.Rules{}, err
	}
	r := pressure.Rules{Cap: c.PressureCap, Window: time.Duration(c.PressureWindowDays) * 24 * time.Hour,
		MinGap: c.PressureMinGap, Quiet: q, OnCapped: pressure.OnCapped(c.PressureOnCapped), MaxDelay: c.PressureMaxDelay}
	return r, r.Validate()
}

func (c PressureConfig) validate() []error {
	var errs []error
	bad := func(env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("setting %s: "+format, append([]any{env}, args...)...))
	}
	if c.PressureCap < 0 {
		bad("REFRAIN_PRESSURE_CAP", "must be 0 or more, got %d", c.PressureCap)
	}
	if c.PressureWindowDays <= 0 {
		bad("REFRAIN_PRESSURE_WINDOW_DAYS", "must be positive, got %d", c.PressureWindowDays)
	}
	if c.PressureMinGap < 0 {
		bad("REFRAIN_PRESSURE_MIN_GAP", "must be 0 or more, got %s", c.PressureMinGap)
	}
	if _, err := pressure.ParseQuietHours(c.PressureQuietHours); err != nil {
		bad("REFRAIN_PRESSURE_QUIET_HOURS", "%v", err)
	}
	if !pressure.OnCapped(c.PressureOnCapped).Valid() {
		bad("REFRAIN_PRESSURE_ON_CAPPED", "%q: want defer, skip or override", c.PressureOnCapped)
	}
	if c.PressureMaxDelay < 0 {
		bad("REFRAIN_PRESSURE_MAX_DELAY", "must be 0 or more, got %s", c.PressureMaxDelay)
	}
	if _, err := pressure.ParseOverrides(c.PressurePrograms); err != nil {
		bad("REFRAIN_PRESSURE_PROGRAMS", "%v", err)
	}
	if c.CampaignBatch <= 0 || c.CampaignBatch > 1000 {
		bad("REFRAIN_CAMPAIGN_BATCH", "must be 1 to 1000, got %d", c.CampaignBatch)
	}
	if c.CampaignConcurrency <= 0 {
		bad("REFRAIN_CAMPAIGN_CONCURRENCY", "must be positive, got %d", c.CampaignConcurrency)
	}
	if c.CampaignLease < time.Second {
		bad("REFRAIN_CAMPAIGN_LEASE", "must be at least 1s, got %s", c.CampaignLease)
	}
	if c.CampaignPoll <= 0 {
		bad("REFRAIN_CAMPAIGN_POLL", "must be positive, got %s", c.CampaignPoll)
	}
	return errs
}
