package main

import (
	"context"
	"fmt"
	"time"
)

// cmdKPIs runs `refrain kpis rebuild`.
func cmdKPIs(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 || args[0] != "rebuild" {
		return errUsage
	}
	fs, cfgPath := newFlags("kpis", env)
	fromS := fs.String("from", "", "first UTC day, YYYY-MM-DD (default: the day of the first message)")
	toS := fs.String("to", "", "end UTC day, exclusive, YYYY-MM-DD (default: the day after the last message)")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil || len(pos) != 0 {
		return errUsage
	}
	var from, to time.Time
	if *fromS != "" {
		if from, err = parseDay(*fromS); err != nil {
			return fmt.Errorf("--from: %w", err)
		}
	}
	if *toS != "" {
		if to, err = parseDay(*toS); err != nil {
			return fmt.Errorf("--to: %w", err)
		}
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return fmt.Errorf("--to (%s) must be after --from (%s)", to.Format(time.DateOnly), from.Format(time.DateOnly))
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	return writeKPIRebuild(ctx, cfg, env.stdout, from, to)
}
