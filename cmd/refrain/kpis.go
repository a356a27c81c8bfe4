package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v3"
)

// cmdKPIs runs `refrain kpis rebuild`.
func cmdKPIs(ctx context.Context, env *cliEnv, cmd *cli.Command) error {
	fromS, toS := cmd.String("from"), cmd.String("to")
	var err error
	var from, to time.Time
	if fromS != "" {
		if from, err = parseDay(fromS); err != nil {
			return fmt.Errorf("--from: %w", err)
		}
	}
	if toS != "" {
		if to, err = parseDay(toS); err != nil {
			return fmt.Errorf("--to: %w", err)
		}
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return fmt.Errorf("--to (%s) must be after --from (%s)", to.Format(time.DateOnly), from.Format(time.DateOnly))
	}
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	return writeKPIRebuild(ctx, cfg, env.stdout, from, to)
}
