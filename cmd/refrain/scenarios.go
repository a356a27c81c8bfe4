package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/urfave/cli/v3"

	"github.com/refrain-dev/refrain/plugin"
	"github.com/refrain-dev/refrain/plugin/mail/template"
	"github.com/refrain-dev/refrain/scenarios"
	"github.com/refrain-dev/refrain/scenarios/library/templates"
	"github.com/refrain-dev/refrain/scenarios/simulate"
)

func scenariosCommand(env *cliEnv) *cli.Command {
	templatesFlag := func() cli.Flag {
		return &cli.StringFlag{Name: "templates", Usage: "`DIR` of the store's own templates, beside the built-in ones"}
	}
	return &cli.Command{
		Name: "scenarios", Usage: "check scenario files (for CI), or run one on a virtual clock",
		UsageText: "refrain scenarios validate DIR | simulate FILE [--customers N] [--days D] [--seed S] [--json] [--templates DIR]",
		Action:    needsSubcommand,
		Commands: []*cli.Command{
			{
				Name: "validate", Usage: "check every *.yaml scenario file of a directory (exits 1 on any problem)",
				UsageText: "refrain scenarios validate DIR [--templates DIR]",
				Flags:     []cli.Flag{templatesFlag()},
				Action:    action(env, 1, cmdScenariosValidate),
			},
			{
				Name: "simulate", Usage: "run a scenario on a virtual clock against generated customers, sending nothing",
				UsageText: "refrain scenarios simulate FILE [--customers N] [--days D] [--seed S] [--json] [--templates DIR]",
				Flags: []cli.Flag{
					&cli.IntFlag{Name: "customers", Value: 1000, Usage: "customers to generate"},
					&cli.IntFlag{Name: "days", Value: 30, Usage: "days to run"},
					&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the generated base and behaviour"},
					&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
					&cli.StringFlag{Name: "store-anniversary", Usage: "the store's anniversary as `MM-DD`"},
					templatesFlag(),
				},
				Action: action(env, 1, cmdScenariosSimulate),
			},
		},
	}
}

// scenarioTemplates loads the built-in templates and those of --templates.
func scenarioTemplates(cmd *cli.Command) (*template.Engine, error) {
	engine, err := template.New(nil)
	if err != nil {
		return nil, err
	}
	if err := engine.Load(templates.FS); err != nil {
		return nil, fmt.Errorf("load built-in templates: %w", err)
	}
	if dir := cmd.String("templates"); dir != "" {
		if err := engine.LoadDir(dir); err != nil {
			return nil, fmt.Errorf("load templates from %s: %w", dir, err)
		}
	}
	return engine, nil
}

// cmdScenariosValidate runs "scenarios validate DIR".
func cmdScenariosValidate(_ context.Context, env *cliEnv, cmd *cli.Command) error {
	engine, err := scenarioTemplates(cmd)
	if err != nil {
		return err
	}
	opts := scenarios.ValidateOpts{Templates: engine, Rules: plugin.ScenarioRules()}
	pos := cmd.Args().Slice()
	{
		files, err := plugin.ReadScenarioDir(pos[0])
		if err != nil {
			return err
		}
		if len(files) == 0 {
			return fmt.Errorf("no *.yaml files in %s", pos[0])
		}
		bad := 0
		for _, f := range files {
			if _, err := scenarios.Load(f.Name, f.Data, opts); err != nil {
				bad++
				fmt.Fprintln(env.stderr, err)
				continue
			}
			fmt.Fprintf(env.stdout, "ok  %s\n", f.Name)
		}
		if bad > 0 {
			return fmt.Errorf("%d of %d files have problems", bad, len(files))
		}
		return nil
	}
}

// cmdScenariosSimulate runs "scenarios simulate FILE".
func cmdScenariosSimulate(ctx context.Context, env *cliEnv, cmd *cli.Command) error {
	engine, err := scenarioTemplates(cmd)
	if err != nil {
		return err
	}
	pos := cmd.Args().Slice()
	{
		data, err := os.ReadFile(pos[0])
		if err != nil {
			return err
		}
		r, err := simulate.Run(ctx, data, simulate.Options{Customers: cmd.Int("customers"), Days: cmd.Int("days"), Seed: cmd.Uint64("seed"),
			Templates: engine, Rules: plugin.ScenarioRules(), StoreAnniversary: cmd.String("store-anniversary")})
		if ps := scenarios.AsProblems(err); ps != nil {
			for _, p := range ps {
				p.File = pos[0]
				fmt.Fprintln(env.stderr, p.Error())
			}
			return errors.New("the scenario has problems")
		}
		if err != nil {
			return err
		}
		if cmd.Bool("json") {
			enc := json.NewEncoder(env.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(r)
		}
		printReport(env, r)
		return nil
	}
}

func printReport(env *cliEnv, r *simulate.Report) {
	fmt.Fprintf(env.stdout, "scenario %s, %d generated customers, %d days (nothing sent)\n\n", r.Scenario, r.Customers, len(r.Days))
	w := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "day\tdate\tentries\tholdouts\tsends\texits\tgoals\tdeletions\t")
	for _, d := range r.Days {
		fmt.Fprintf(w, "%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", d.Day, d.Date, d.Entries, d.Holdouts, d.Sends, d.Exits, d.Goals, d.Deletions)
	}
	t := r.Total
	fmt.Fprintf(w, "total\t\t%d\t%d\t%d\t%d\t%d\t%d\t\n", t.Entries, t.Holdouts, t.Sends, t.Exits, t.Goals, t.Deletions)
	_ = w.Flush()
	fmt.Fprintf(env.stdout, "\nit would touch %d of the %d customers (%d deleted)\n\n", r.Touched, r.Customers, t.Deletions)
	w = tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "step\tkind\truns\tsends\texits here\tdeletions")
	for _, s := range r.Steps {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\n", s.ID, s.Kind, s.Runs, s.Sends, s.Exits, s.Deletions)
	}
	_ = w.Flush()
}
