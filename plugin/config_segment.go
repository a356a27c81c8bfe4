package plugin

import (
	"fmt"
	"time"
)

// SegmentConfig holds the settings of segment membership.
type SegmentConfig struct {
	// SegmentSweepInterval is how often every segment is recomputed on the whole base.
	SegmentSweepInterval time.Duration `env:"REFRAIN_SEGMENT_SWEEP_INTERVAL" yaml:"segment_sweep_interval" default:"1h" doc:"how often every segment is recomputed on the whole base, for rules that change with time alone (now, event windows)"`
	// SegmentRefreshPoll is how often new customer events are looked for to re-evaluate their customers.
	SegmentRefreshPoll time.Duration `env:"REFRAIN_SEGMENT_REFRESH_POLL" yaml:"segment_refresh_poll" default:"2s" doc:"how often each replica looks for new customer events and re-evaluates those customers' segments in memory"`
}

func (c SegmentConfig) validate() []error {
	var errs []error
	if c.SegmentSweepInterval <= 0 {
		errs = append(errs, fmt.Errorf("setting REFRAIN_SEGMENT_SWEEP_INTERVAL: must be positive, got %s", c.SegmentSweepInterval))
	}
	if c.SegmentRefreshPoll <= 0 {
		errs = append(errs, fmt.Errorf("setting REFRAIN_SEGMENT_REFRESH_POLL: must be positive, got %s", c.SegmentRefreshPoll))
	}
	return errs
}
