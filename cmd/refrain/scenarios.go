package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/refrain-dev/refrain/plugin"
	"github.com/refrain-dev/refrain/plugin/mail/template"
	"github.com/refrain-dev/refrain/scenarios"
	"github.com/refrain-dev/refrain/scenarios/library/templates"
	"github.com/refrain-dev/refrain/scenarios/simulate"
)

// cmdScenarios runs "scenarios validate DIR" and "scenarios simulate FILE".
func cmdScenarios(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 {
		return errUsage
	}
	fs, _ := newFlags("scenarios", env)
	templatesDir := fs.String("templates", "", "directory of the store's own templates, beside the built-in ones")
	customers := fs.Int("customers", 1000, "simulate: customers to generate")
	days := fs.Int("days", 30, "simulate: days to run")
	seed := fs.Uint64("seed", 1, "simulate: seed of the generated base and behaviour")
	asJSON := fs.Bool("json", false, "simulate: print the report as JSON")
	anniversary := fs.String("store-anniversary", "", "simulate: the store's anniversary as MM-DD")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil || len(pos) != 1 {
		return errUsage
	}
	engine, err := template.New(nil)
	if err != nil {
		return err
	}
	if err := engine.Load(templates.FS); err != nil {
		return fmt.Errorf("load built-in templates: %w", err)
	}
	if *templatesDir != "" {
		if err := engine.LoadDir(*templatesDir); err != nil {
			return fmt.Errorf("load templates from %s: %w", *templatesDir, err)
		}
	}
	opts := scenarios.ValidateOpts{Templates: engine, Rules: plugin.ScenarioRules()}
	switch args[0] {
	case "validate":
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
	case "simulate":
		data, err := os.ReadFile(pos[0])
		if err != nil {
			return err
		}
		r, err := simulate.Run(ctx, data, simulate.Options{Customers: *customers, Days: *days, Seed: *seed,
			Templates: engine, Rules: plugin.ScenarioRules(), StoreAnniversary: *anniversary})
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
		if *asJSON {
			enc := json.NewEncoder(env.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(r)
		}
		printReport(env, r)
		return nil
	}
	return errUsage
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
