package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/refrain-dev/refrain/plugin"
)

// command is one subcommand of the CLI.
type command struct {
	usage string
	help  string
	run   func(ctx context.Context, env *cliEnv, args []string) error
}

// cliEnv is what every command gets: its output streams.
type cliEnv struct {
	stdout, stderr io.Writer
}

var errUsage = errors.New("usage")

func commands() map[string]command {
	return map[string]command{
		"serve":     {usage: "serve [--config FILE]", help: "run the service (HTTP server and background workers)", run: cmdServe},
		"demo":      {usage: "demo [--customers 2000] [--seed 1] [--db refrain-demo.db] [--no-serve] [--force]", help: "create a demo store (generated customers, orders, carts, mail) in a fresh SQLite file and serve it", run: cmdDemo},
		"migrate":   {usage: "migrate up|down|status [--config FILE]", help: "apply, roll back (last group) or list database migrations", run: cmdMigrate},
		"import":    {usage: "import customers FILE.csv [--dry-run] [--config FILE]", help: "import customers from a CSV file", run: cmdImport},
		"apikey":    {usage: "apikey create --name NAME --scopes read,write | list | revoke ID", help: "manage admin API keys", run: cmdAPIKey},
		"scenarios": {usage: "scenarios validate DIR | simulate FILE [--customers N] [--days D] [--seed S] [--json] [--templates DIR]", help: "check scenario files (for CI), or run one on a virtual clock against generated customers, sending nothing", run: cmdScenarios},
		"hygiene":   {usage: "hygiene report [--customers N] [--domains N] [--json] [--config FILE]", help: "count customers by address hygiene status and by domain, with the customers behind each", run: cmdHygiene},
		"pressure":  {usage: "pressure forecast --from 2026-01-01 --to 2027-01-01 [--segment SEG] [--json] [--config FILE]", help: "project the marketing load of each day: campaigns, scenarios, yearly programs, customers over the cap, deferrals and skips", run: cmdPressure},
		"kpis":      {usage: "kpis rebuild [--from 2026-01-01] [--to 2026-12-01] [--config FILE]", help: "attribute orders stored before attribution existed and rebuild the KPI rollups from the messages (idempotent)", run: cmdKPIs},
		"config":    {usage: "config [--markdown | --readme README.md]", help: "list every setting with its environment variable and default", run: cmdConfig},
		"version": {usage: "version", help: "print the version", run: func(_ context.Context, env *cliEnv, _ []string) error {
			fmt.Fprintln(env.stdout, plugin.Version)
			return nil
		}},
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	env := &cliEnv{stdout: stdout, stderr: stderr}
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printHelp(stdout, cmds)
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "refrain: unknown command %q\n\n", args[0])
		printHelp(stderr, cmds)
		return 2
	}
	if err := cmd.run(ctx, env, args[1:]); err != nil {
		if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "usage: refrain %s\n", cmd.usage)
			if msg := strings.TrimPrefix(err.Error(), "usage"); msg != "" && !errors.Is(err, flag.ErrHelp) {
				fmt.Fprintln(stderr, strings.TrimPrefix(msg, ": "))
			}
			return 2
		}
		fmt.Fprintf(stderr, "refrain %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func printHelp(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "refrain: the customer-lifecycle engine for headless commerce")
	fmt.Fprintln(w, "\nCommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  refrain %-60s %s\n", cmds[n].usage, cmds[n].help)
	}
	fmt.Fprintln(w, "\nSettings come from REFRAIN_* environment variables (see `refrain config`) and an optional --config YAML file.")
}

// newFlags returns a flag set with the common --config flag.
func newFlags(name string, env *cliEnv) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	cfgPath := fs.String("config", "", "YAML configuration file")
	return fs, cfgPath
}

// parseInterspersed parses flags that may come before or after positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func loadConfig(path string) (plugin.Config, error) {
	return plugin.LoadConfig(path, os.Environ())
}

// settingsMarkdown renders the settings as the README's table.
func settingsMarkdown() string {
	var b strings.Builder
	b.WriteString("| variable | file key | default | what it does |\n|---|---|---|---|\n")
	for _, s := range plugin.Settings() {
		def := "`" + s.Default + "`"
		if s.Default == "" {
			def = "(empty)"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s |\n", s.Env, s.YAML, def, s.Doc)
	}
	return b.String()
}

const (
	settingsBegin = "<!-- settings:begin -->"
	settingsEnd   = "<!-- settings:end -->"
)

// replaceSettings returns readme with the table between the settings markers replaced.
func replaceSettings(readme string) (string, error) {
	b := strings.Index(readme, settingsBegin)
	e := strings.Index(readme, settingsEnd)
	if b < 0 || e < b {
		return "", errors.New("README has no settings markers")
	}
	return readme[:b+len(settingsBegin)] + "\n" + settingsMarkdown() + readme[e:], nil
}

func cmdConfig(_ context.Context, env *cliEnv, args []string) error {
	switch {
	case len(args) == 1 && args[0] == "--markdown":
		fmt.Fprint(env.stdout, settingsMarkdown())
		return nil
	case len(args) == 2 && args[0] == "--readme":
		// go generate ./cmd/refrain keeps the README's table true.
		raw, err := os.ReadFile(args[1])
		if err != nil {
			return err
		}
		out, err := replaceSettings(string(raw))
		if err != nil {
			return err
		}
		return os.WriteFile(args[1], []byte(out), 0o644)
	}
	for _, s := range plugin.Settings() {
		def := s.Default
		if def == "" {
			def = "(empty)"
		}
		fmt.Fprintf(env.stdout, "%-34s %-22s %s\n", s.Env, def, s.Doc)
	}
	return nil
}

func cmdServe(ctx context.Context, env *cliEnv, args []string) error {
	fs, cfgPath := newFlags("serve", env)
	if _, err := parseInterspersed(fs, args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	p, err := plugin.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	return p.Serve(ctx)
}

func cmdMigrate(ctx context.Context, env *cliEnv, args []string) error {
	fs, cfgPath := newFlags("migrate", env)
	pos, err := parseInterspersed(fs, args)
	if err != nil || len(pos) != 1 {
		return errUsage
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	return plugin.Migrate(ctx, cfg, pos[0], env.stdout)
}

func cmdImport(ctx context.Context, env *cliEnv, args []string) error {
	fs, cfgPath := newFlags("import", env)
	dryRun := fs.Bool("dry-run", false, "report what would change without writing")
	pos, err := parseInterspersed(fs, args)
	if err != nil || len(pos) != 2 || pos[0] != "customers" {
		return errUsage
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	f, err := os.Open(pos[1])
	if err != nil {
		return fmt.Errorf("open %s: %w", pos[1], err)
	}
	defer f.Close()
	return plugin.ImportCustomers(ctx, cfg, f, plugin.ImportOptions{DryRun: *dryRun, Name: pos[1], Stdout: env.stdout, Stderr: env.stderr})
}

func cmdAPIKey(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 {
		return errUsage
	}
	fs, cfgPath := newFlags("apikey", env)
	name := fs.String("name", "", "name of the key (who or what uses it)")
	scopes := fs.String("scopes", "read", "comma-separated scopes: read, write")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	switch args[0] {
	case "create":
		if *name == "" || len(pos) != 0 {
			return fmt.Errorf("%w: --name is required", errUsage)
		}
		key, err := plugin.CreateAPIKey(ctx, cfg, *name, *scopes)
		if err != nil {
			return err
		}
		// The key alone on stdout, so scripts can capture it.
		fmt.Fprintln(env.stdout, key)
		fmt.Fprintln(env.stderr, "Store this key now: it is shown only once.")
		return nil
	case "list":
		return plugin.ListAPIKeys(ctx, cfg, env.stdout)
	case "revoke":
		if len(pos) != 1 {
			return fmt.Errorf("%w: give the key id", errUsage)
		}
		return plugin.RevokeAPIKey(ctx, cfg, pos[0], env.stdout)
	}
	return errUsage
}
