package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v3"
)

// cmdPressure runs `refrain pressure forecast`.
func cmdPressure(ctx context.Context, env *cliEnv, cmd *cli.Command) error {
	fromS, toS := cmd.String("from"), cmd.String("to")
	var err error
	from := time.Now().UTC().Truncate(24 * time.Hour)
	if fromS != "" {
		if from, err = parseDay(fromS); err != nil {
			return fmt.Errorf("--from: %w", err)
		}
	}
	to := from.AddDate(1, 0, 0)
	if toS != "" {
		if to, err = parseDay(toS); err != nil {
			return fmt.Errorf("--to: %w", err)
		}
	}
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	return writePressureForecast(ctx, cfg, env.stdout, from, to, cmd.String("segment"), cmd.Bool("json"))
}

func parseDay(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date (YYYY-MM-DD) or an RFC 3339 time", s)
	}
	return t.UTC(), nil
}
