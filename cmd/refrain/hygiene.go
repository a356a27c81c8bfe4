package main

import (
	"context"

	"github.com/urfave/cli/v3"

	"github.com/refrain-dev/refrain/plugin/hygiene"
)

// cmdHygiene runs `refrain hygiene report`.
func cmdHygiene(ctx context.Context, env *cliEnv, cmd *cli.Command) error {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	return writeHygieneReport(ctx, cfg, env.stdout, hygiene.ReportOpts{Customers: cmd.Int("customers"), Domains: cmd.Int("domains")}, cmd.Bool("json"))
}
