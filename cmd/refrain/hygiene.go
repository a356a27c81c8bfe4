package main

import (
	"context"

	"github.com/refrain-dev/refrain/plugin/hygiene"
)

// cmdHygiene runs `refrain hygiene report`.
func cmdHygiene(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 || args[0] != "report" {
		return errUsage
	}
	fs, cfgPath := newFlags("hygiene", env)
	customers := fs.Int("customers", 20, "customers listed per status and per domain")
	domains := fs.Int("domains", 50, "domains listed, the largest first")
	asJSON := fs.Bool("json", false, "write the report as JSON")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil || len(pos) != 0 {
		return errUsage
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	return writeHygieneReport(ctx, cfg, env.stdout, hygiene.ReportOpts{Customers: *customers, Domains: *domains}, *asJSON)
}
