package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/refrain-dev/refrain/plugin"
)

// cliEnv is what every command gets: its output streams.
type cliEnv struct {
	stdout, stderr io.Writer
}

// usageError is a command called the wrong way: the CLI prints the
// command's usage line and the reason, and exits 2.
type usageError struct {
	usage, msg string
}

func (e *usageError) Error() string { return e.msg }

// badUsage returns a usageError for cmd.
func badUsage(cmd *cli.Command, format string, args ...any) error {
	return &usageError{usage: usageLine(cmd), msg: fmt.Sprintf(format, args...)}
}

// usageLine is the one-line usage of cmd, as its help shows it.
func usageLine(cmd *cli.Command) string {
	if cmd.UsageText != "" {
		return cmd.UsageText
	}
	return cmd.FullName()
}

// commandError is a command that failed; the CLI prints it after the
// command's name and exits 1.
type commandError struct {
	name string
	err  error
}

func (e *commandError) Error() string { return e.err.Error() }
func (e *commandError) Unwrap() error { return e.err }

// action adapts a command function to urfave/cli, naming the command in
// its errors and checking how many arguments it takes.
func action(env *cliEnv, nargs int, fn func(ctx context.Context, env *cliEnv, cmd *cli.Command) error) cli.ActionFunc {
	return func(ctx context.Context, cmd *cli.Command) error {
		if nargs >= 0 && cmd.NArg() != nargs {
			if cmd.NArg() > nargs {
				return badUsage(cmd, "unexpected argument %q", cmd.Args().Get(nargs))
			}
			return badUsage(cmd, "missing argument")
		}
		if err := fn(ctx, env, cmd); err != nil {
			var ue *usageError
			if errors.As(err, &ue) {
				return err
			}
			return &commandError{name: cmd.FullName(), err: err}
		}
		return nil
	}
}

// needsSubcommand is the action of a command that only groups others.
func needsSubcommand(ctx context.Context, cmd *cli.Command) error {
	if cmd.NArg() > 0 {
		return badUsage(cmd, "unknown subcommand %q", cmd.Args().First())
	}
	return badUsage(cmd, "give a subcommand (%s --help lists them)", cmd.FullName())
}

// configFlag is the --config flag every command that reads settings takes.
func configFlag() cli.Flag {
	return &cli.StringFlag{Name: "config", Usage: "YAML configuration `FILE` (REFRAIN_* variables override it)"}
}

func newApp(env *cliEnv) *cli.Command {
	onUsageError := func(_ context.Context, cmd *cli.Command, err error, _ bool) error {
		msg := err.Error()
		// The standard flag package names flags with one dash; ours take two.
		if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
			msg = "unknown flag --" + strings.TrimPrefix(name, "-")
		}
		return badUsage(cmd, "%s", msg)
	}
	cmds := []*cli.Command{
		{
			Name: "serve", Usage: "run the service (HTTP server and background workers)",
			UsageText: "refrain serve [--config FILE]",
			Flags:     []cli.Flag{configFlag()}, Action: action(env, 0, cmdServe),
		},
		{
			Name: "demo", Usage: "create a demo store in a fresh SQLite file and serve it",
			UsageText: "refrain demo [--customers 2000] [--seed 1] [--db refrain-demo.db] [--no-serve] [--force]",
			Description: "Generates customers, orders, carts and mail with their events, activates the library programs,\n" +
				"schedules a campaign, prints the addresses and an admin key, and serves the store.",
			Flags: []cli.Flag{
				&cli.IntFlag{Name: "customers", Value: 2000, Usage: "how many customers to generate"},
				&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the generator: the same seed makes the same store"},
				&cli.StringFlag{Name: "db", Value: "refrain-demo.db", Usage: "SQLite `FILE` to create"},
				&cli.BoolFlag{Name: "no-serve", Usage: "create the store, print the addresses and stop"},
				&cli.BoolFlag{Name: "force", Usage: "replace the SQLite file if it exists"},
				configFlag(),
			},
			Action: action(env, 0, cmdDemo),
		},
		{
			Name: "migrate", Usage: "apply, roll back (last group) or list database migrations",
			UsageText: "refrain migrate up|down|status [--config FILE] [--shared-schema]",
			Action:    needsSubcommand,
			Commands: []*cli.Command{
				migrateCommand(env, "up", "apply every pending migration"),
				migrateCommand(env, "down", "roll back the last group of migrations applied together"),
				migrateCommand(env, "status", "list every migration and whether it is applied"),
			},
		},
		{
			Name: "import", Usage: "import customers from a CSV file",
			UsageText: "refrain import customers FILE.csv [--dry-run] [--partial] [--config FILE]",
			Action:    needsSubcommand,
			Commands: []*cli.Command{{
				Name: "customers", Usage: "import customers from a CSV file (a header row naming at least email)",
				UsageText: "refrain import customers FILE.csv [--dry-run] [--partial] [--config FILE]",
				Description: "Exits 1 when any row is rejected (the valid rows are imported all the same, and a re-run\n" +
					"of the fixed file changes nothing for them); --partial accepts the rejections and exits 0.",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "dry-run", Usage: "report what would change without writing"},
					&cli.BoolFlag{Name: "partial", Usage: "exit 0 even when rows are rejected"},
					configFlag(),
				},
				Action: action(env, 1, cmdImport),
			}},
		},
		apikeyCommand(env),
		scenariosCommand(env),
		{
			Name: "hygiene", Usage: "count customers by address hygiene status and by domain",
			UsageText: "refrain hygiene report [--customers N] [--domains N] [--json] [--config FILE]",
			Action:    needsSubcommand,
			Commands: []*cli.Command{{
				Name: "report", Usage: "count customers by address hygiene status and by domain, with the customers behind each",
				UsageText: "refrain hygiene report [--customers N] [--domains N] [--json] [--config FILE]",
				Flags: []cli.Flag{
					&cli.IntFlag{Name: "customers", Value: 20, Usage: "customers listed per status and per domain"},
					&cli.IntFlag{Name: "domains", Value: 50, Usage: "domains listed, the largest first"},
					&cli.BoolFlag{Name: "json", Usage: "write the report as JSON"},
					configFlag(),
				},
				Action: action(env, 0, cmdHygiene),
			}},
		},
		{
			Name: "pressure", Usage: "project the marketing load of each day",
			UsageText: "refrain pressure forecast [--from 2026-01-01] [--to 2027-01-01] [--segment SEG] [--json] [--config FILE]",
			Action:    needsSubcommand,
			Commands: []*cli.Command{{
				Name: "forecast", Usage: "project campaigns, scenarios, yearly programs, customers over the cap, deferrals and skips per day",
				UsageText: "refrain pressure forecast [--from 2026-01-01] [--to 2027-01-01] [--segment SEG] [--json] [--config FILE]",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "from", Usage: "first `DAY`, YYYY-MM-DD or RFC 3339 (default: today)"},
					&cli.StringFlag{Name: "to", Usage: "end `DAY`, exclusive, YYYY-MM-DD or RFC 3339 (default: a year after --from)"},
					&cli.StringFlag{Name: "segment", Usage: "only the customers of this `SEGMENT` (all, tag:NAME)"},
					&cli.BoolFlag{Name: "json", Usage: "write the forecast as JSON"},
					configFlag(),
				},
				Action: action(env, 0, cmdPressure),
			}},
		},
		{
			Name: "kpis", Usage: "rebuild the KPI rollups",
			UsageText: "refrain kpis rebuild [--from 2026-01-01] [--to 2026-12-01] [--config FILE]",
			Action:    needsSubcommand,
			Commands: []*cli.Command{{
				Name: "rebuild", Usage: "attribute orders stored before attribution existed and rebuild the KPI rollups (idempotent)",
				UsageText: "refrain kpis rebuild [--from 2026-01-01] [--to 2026-12-01] [--config FILE]",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "from", Usage: "first UTC `DAY`, YYYY-MM-DD (default: the day of the first message)"},
					&cli.StringFlag{Name: "to", Usage: "end UTC `DAY`, exclusive, YYYY-MM-DD (default: the day after the last message)"},
					configFlag(),
				},
				Action: action(env, 0, cmdKPIs),
			}},
		},
		{
			Name: "config", Usage: "list every setting with its environment variable and default",
			UsageText: "refrain config [--markdown | --readme README.md]",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "markdown", Usage: "print the settings as a Markdown table"},
				&cli.StringFlag{Name: "readme", Usage: "rewrite the settings table of this `README` in place"},
			},
			Action: action(env, 0, cmdConfig),
		},
		{
			Name: "health", Usage: "check that a running service answers (the container health check)",
			UsageText: "refrain health [--url http://127.0.0.1:8080/healthz]",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "url", Usage: "address to GET (default: /healthz on REFRAIN_LISTEN)"},
				&cli.DurationFlag{Name: "timeout", Value: 5e9, Usage: "how long to wait for the answer"},
			},
			Action: action(env, 0, cmdHealth),
		},
		{
			Name: "version", Usage: "print the version and commit of this build",
			UsageText: "refrain version",
			Action: action(env, 0, func(_ context.Context, env *cliEnv, _ *cli.Command) error {
				fmt.Fprintln(env.stdout, versionString())
				return nil
			}),
		},
	}
	setOnUsageError(cmds, onUsageError)
	return &cli.Command{
		Name:      "refrain",
		Usage:     "the customer-lifecycle engine for headless commerce",
		UsageText: "refrain COMMAND [options]   (refrain COMMAND --help for its options)",
		Description: "Start with refrain demo (a generated store to look at) or refrain serve (the service).\n" +
			"Settings come from REFRAIN_* environment variables (refrain config lists them) and an\n" +
			"optional --config YAML file.",
		Writer:         env.stdout,
		ErrWriter:      env.stderr,
		HideVersion:    true,
		Commands:       cmds,
		OnUsageError:   onUsageError,
		ExitErrHandler: func(context.Context, *cli.Command, error) {},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() == 0 {
				return cli.ShowRootCommandHelp(cmd)
			}
			return &usageError{usage: cmd.UsageText, msg: fmt.Sprintf("unknown command %q: refrain --help lists the commands", cmd.Args().First())}
		},
	}
}

// setOnUsageError makes every command report bad flags as a usage error.
func setOnUsageError(cmds []*cli.Command, fn cli.OnUsageErrorFunc) {
	for _, c := range cmds {
		c.OnUsageError = fn
		setOnUsageError(c.Commands, fn)
	}
}

func migrateCommand(env *cliEnv, name, usage string) *cli.Command {
	return &cli.Command{
		Name: name, Usage: usage,
		UsageText: "refrain migrate " + name + " [--config FILE] [--shared-schema]",
		Flags: []cli.Flag{
			configFlag(),
			&cli.BoolFlag{Name: "shared-schema", Usage: "create Refrain's tables even beside another application's (REFRAIN_DATABASE_SHARED_SCHEMA)"},
		},
		Action: action(env, 0, func(ctx context.Context, env *cliEnv, cmd *cli.Command) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if cmd.Bool("shared-schema") {
				cfg.DatabaseSharedSchema = true
			}
			return plugin.Migrate(ctx, cfg, name, env.stdout)
		}),
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	env := &cliEnv{stdout: stdout, stderr: stderr}
	if len(args) > 0 && args[0] != "config" && args[0] != "version" {
		for _, w := range plugin.UnknownEnv(os.Environ()) {
			fmt.Fprintln(stderr, "refrain: warning:", w)
		}
	}
	err := newApp(env).Run(ctx, append([]string{"refrain"}, args...))
	if err == nil {
		return 0
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "usage: %s\n", ue.usage)
		if ue.msg != "" {
			fmt.Fprintln(stderr, ue.msg)
		}
		return 2
	}
	var ce *commandError
	if errors.As(err, &ce) {
		fmt.Fprintf(stderr, "%s: %v\n", ce.name, ce.err)
		return 1
	}
	fmt.Fprintf(stderr, "refrain: %v\n", err)
	return 1
}

func loadConfig(cmd *cli.Command) (plugin.Config, error) {
	return plugin.LoadConfig(cmd.String("config"), os.Environ())
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

func cmdConfig(_ context.Context, env *cliEnv, cmd *cli.Command) error {
	switch {
	case cmd.Bool("markdown"):
		fmt.Fprint(env.stdout, settingsMarkdown())
		return nil
	case cmd.String("readme") != "":
		// go generate ./cmd/refrain keeps the README's table true.
		path := cmd.String("readme")
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out, err := replaceSettings(string(raw))
		if err != nil {
			return err
		}
		return os.WriteFile(path, []byte(out), 0o644)
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

func cmdServe(ctx context.Context, _ *cliEnv, cmd *cli.Command) error {
	cfg, err := loadConfig(cmd)
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

func cmdImport(ctx context.Context, env *cliEnv, cmd *cli.Command) error {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	name := cmd.Args().First()
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	defer f.Close()
	return plugin.ImportCustomers(ctx, cfg, f, plugin.ImportOptions{DryRun: cmd.Bool("dry-run"), Partial: cmd.Bool("partial"),
		Name: name, Stdout: env.stdout, Stderr: env.stderr})
}

func apikeyCommand(env *cliEnv) *cli.Command {
	return &cli.Command{
		Name: "apikey", Usage: "manage admin API keys",
		UsageText: "refrain apikey create --name NAME [--scopes read,write] | list | revoke ID",
		Action:    needsSubcommand,
		Commands: []*cli.Command{
			{
				Name: "create", Usage: "create a key and print it alone on stdout (it is shown only once)",
				UsageText: "refrain apikey create --name NAME [--scopes read,write] [--config FILE]",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "name", Usage: "`NAME` of the key (who or what uses it)"},
					&cli.StringFlag{Name: "scopes", Value: "read", Usage: "comma-separated `SCOPES`: read, write"},
					configFlag(),
				},
				Action: action(env, 0, func(ctx context.Context, env *cliEnv, cmd *cli.Command) error {
					if cmd.String("name") == "" {
						return badUsage(cmd, "--name is required")
					}
					cfg, err := loadConfig(cmd)
					if err != nil {
						return err
					}
					key, err := plugin.CreateAPIKey(ctx, cfg, cmd.String("name"), cmd.String("scopes"))
					if err != nil {
						return err
					}
					// The key alone on stdout, so scripts can capture it.
					fmt.Fprintln(env.stdout, key)
					fmt.Fprintln(env.stderr, "Store this key now: it is shown only once.")
					return nil
				}),
			},
			{
				Name: "list", Usage: "list the keys (never their secrets)",
				UsageText: "refrain apikey list [--config FILE]",
				Flags:     []cli.Flag{configFlag()},
				Action: action(env, 0, func(ctx context.Context, env *cliEnv, cmd *cli.Command) error {
					cfg, err := loadConfig(cmd)
					if err != nil {
						return err
					}
					return plugin.ListAPIKeys(ctx, cfg, env.stdout)
				}),
			},
			{
				Name: "revoke", Usage: "revoke a key by its id",
				UsageText: "refrain apikey revoke ID [--config FILE]",
				Flags:     []cli.Flag{configFlag()},
				Action: action(env, 1, func(ctx context.Context, env *cliEnv, cmd *cli.Command) error {
					cfg, err := loadConfig(cmd)
					if err != nil {
						return err
					}
					return plugin.RevokeAPIKey(ctx, cfg, cmd.Args().First(), env.stdout)
				}),
			},
		},
	}
}
