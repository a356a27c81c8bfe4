package main

import (
	"context"
	"fmt"
	"time"
)

// cmdPressure runs `refrain pressure forecast`.
func cmdPressure(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 || args[0] != "forecast" {
		return errUsage
	}
	fs, cfgPath := newFlags("pressure", env)
	fromS := fs.String("from", "", "first day, YYYY-MM-DD or RFC 3339 (default: today)")
	toS := fs.String("to", "", "end, exclusive, YYYY-MM-DD or RFC 3339 (default: a year after --from)")
	segment := fs.String("segment", "", "only the customers of this segment (all, tag:NAME)")
	asJSON := fs.Bool("json", false, "write the forecast as JSON")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil || len(pos) != 0 {
		return errUsage
	}
	from := time.Now().UTC().Truncate(24 * time.Hour)
	if *fromS != "" {
		if from, err = parseDay(*fromS); err != nil {
			return fmt.Errorf("--from: %w", err)
		}
	}
	to := from.AddDate(1, 0, 0)
	if *toS != "" {
		if to, err = parseDay(*toS); err != nil {
			return fmt.Errorf("--to: %w", err)
		}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	return writePressureForecast(ctx, cfg, env.stdout, from, to, *segment, *asJSON)
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
