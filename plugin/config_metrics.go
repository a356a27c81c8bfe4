package plugin

import (
	"fmt"
	"time"
)

// MetricsConfig holds the settings of engagement metrics: revenue
// attribution and the A/B decision rule.
type MetricsConfig struct {
	// AttributionClickWindow: an order is credited to the last message clicked within this time before it.
	AttributionClickWindow time.Duration `env:"REFRAIN_ATTRIBUTION_CLICK_WINDOW" yaml:"attribution_click_window" default:"120h" doc:"an order is credited to the last message the customer clicked within this time before it"`
	// AttributionOpenWindow: failing a click, to the last message opened within this time.
	AttributionOpenWindow time.Duration `env:"REFRAIN_ATTRIBUTION_OPEN_WINDOW" yaml:"attribution_open_window" default:"24h" doc:"failing a click, an order is credited to the last message opened by a person within this time"`
	// ABMinSample is the least number of recipients per variant before an A/B test is decided.
	ABMinSample int `env:"REFRAIN_AB_MIN_SAMPLE" yaml:"ab_min_sample" default:"500" doc:"recipients each variant (and control) needs before an A/B test is decided"`
	// ABThreshold is the probability to beat control a variant needs to be called a winner (or loser).
	ABThreshold float64 `env:"REFRAIN_AB_THRESHOLD" yaml:"ab_threshold" default:"0.95" doc:"probability to beat (or lose to) control that decides an A/B test, between 0.5 and 1"`
}

func (c MetricsConfig) validate() []error {
	var errs []error
	bad := func(env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("setting %s: "+format, append([]any{env}, args...)...))
	}
	if c.AttributionClickWindow <= 0 {
		bad("REFRAIN_ATTRIBUTION_CLICK_WINDOW", "must be positive, got %s", c.AttributionClickWindow)
	}
	if c.AttributionOpenWindow <= 0 {
		bad("REFRAIN_ATTRIBUTION_OPEN_WINDOW", "must be positive, got %s", c.AttributionOpenWindow)
	}
	if c.ABMinSample < 1 {
		bad("REFRAIN_AB_MIN_SAMPLE", "must be at least 1, got %d", c.ABMinSample)
	}
	if !(c.ABThreshold > 0.5 && c.ABThreshold < 1) {
		bad("REFRAIN_AB_THRESHOLD", "must be between 0.5 and 1 (exclusive), got %v", c.ABThreshold)
	}
	return errs
}
