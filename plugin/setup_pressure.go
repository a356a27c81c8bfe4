package plugin

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/pressure"
	"github.com/refrain-dev/refrain/scenarios/engine"
)

// setupPressure builds the marketing pressure policy from the
// REFRAIN_PRESSURE_* settings, before the scenario engine and the
// campaign sender that consult it.
func (p *Plugin) setupPressure() error {
	policy, err := p.cfg.pressurePolicy()
	if err != nil {
		return err
	}
	p.resolver.Pressure = policy
	return nil
}

// pressurePolicy is the marketing pressure policy of the configuration.
func (c Config) pressurePolicy() (*pressure.Policy, error) {
	rules, err := c.PressureRules()
	if err != nil {
		return nil, fmt.Errorf("settings REFRAIN_PRESSURE_*: %w", err)
	}
	programs, err := pressure.ParseOverrides(c.PressurePrograms)
	if err != nil {
		return nil, fmt.Errorf("setting REFRAIN_PRESSURE_PROGRAMS: %w", err)
	}
	return &pressure.Policy{Default: rules, Programs: programs}, nil
}

// Pressure returns the marketing pressure policy.
func (p *Plugin) Pressure() *pressure.Policy { return p.resolver.Pressure }

// pressureGate asks the pressure policy about every marketing step of a
// scenario, in the step's transaction; scheduled campaigns of higher
// priority hold their slots against it.
type pressureGate struct{ policy *pressure.Policy }

// Admit decides for m and records the decision.
func (g pressureGate) Admit(ctx context.Context, db bun.IDB, now time.Time, m engine.Message) (engine.Decision, error) {
	res, err := g.policy.Decide(ctx, db, now, pressure.Request{CustomerPK: m.CustomerPK, Program: m.Program,
		Key: m.IdempotencyKey, Priority: m.Priority, Reserve: true})
	if err != nil {
		return engine.Decision{}, err
	}
	switch res.Decision {
	case pressure.Deferred:
		return engine.Decision{Action: engine.Defer, Until: res.Until, Reason: res.Reason}, nil
	case pressure.Skipped:
		return engine.Decision{Action: engine.Skip, Reason: res.Reason}, nil
	}
	return engine.Decision{Action: engine.Allow, Reason: res.Reason}, nil
}
