// Package plugin is Refrain as an embeddable Go package: New opens (or
// takes) the database, applies migrations and wires every domain; Handler
// serves GraphQL, webhooks and the operational routes; Run runs the
// background workers until its context ends. cmd/refrain is a thin layer
// over it, and a Go host can mount Handler under any path prefix.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/refrain-dev/refrain/graph"
	"github.com/refrain-dev/refrain/plugin/auth"
	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/store"
	"github.com/uptrace/bun"
)

// Version is the version of this build; the release process sets it with -ldflags.
var Version = "dev"

// Option changes how New builds a plugin.
type Option func(*options)

type options struct {
	logger *slog.Logger
	clock  clock.Clock
	db     *bun.DB
	http   *http.Client
}

// WithLogger sets the logger (default: JSON or text on stderr per Config.LogFormat).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithClock sets the clock (default: the wall clock). Tests and the simulator pass a virtual one.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithDB makes the plugin use an open database instead of opening
// Config.DatabaseURL. The caller keeps ownership and closes it.
func WithDB(db *bun.DB) Option { return func(o *options) { o.db = db } }

// WithHTTPClient sets the client for outgoing calls (JWKS, store APIs, Mailgun).
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.http = c } }

// Plugin is one running Refrain.
type Plugin struct {
	cfg     Config
	db      *bun.DB
	ownsDB  bool
	logger  *slog.Logger
	clock   clock.Clock
	http    *http.Client
	metrics *Metrics
	ops     *opsMetrics
	handler http.Handler
	// resolver is the GraphQL resolver; setup functions add their services to it.
	resolver *graph.Resolver
	workers  []namedWorker
	// starters run once, in order, before the workers and the server
	// start (Start).
	starters []func(ctx context.Context) error
	// authn authenticates requests; routes other than /graphql that need a
	// principal (the outbox page, the dashboard) wrap themselves with it.
	authn *auth.Authenticator
}

// namedWorker is one background loop Run starts.
type namedWorker struct {
	name string
	run  func(ctx context.Context) error
}

// addWorker registers a background loop that Run starts on every replica.
// It must return when ctx is done.
func (p *Plugin) addWorker(name string, run func(ctx context.Context) error) {
	p.workers = append(p.workers, namedWorker{name: name, run: run})
}

// Start does what must be done before the service takes requests: the
// scenario engine marks where it starts following the customer event log
// on a new install (from then on every event is followed; left to the
// engine's first pass, events recorded before it would be taken for
// history). Serve and Run call it; it may be called again.
func (p *Plugin) Start(ctx context.Context) error {
	for _, start := range p.starters {
		if err := start(ctx); err != nil {
			return err
		}
	}
	return nil
}

// New validates cfg, opens the database (unless WithDB is given), applies
// pending migrations when cfg.AutoMigrate is set, and builds the handler.
func New(ctx context.Context, cfg Config, opts ...Option) (*Plugin, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = NewLogger(cfg, os.Stderr)
	}
	if o.clock == nil {
		o.clock = clock.Real{}
	}
	if o.http == nil {
		o.http = &http.Client{Timeout: 15 * time.Second}
	}
	p := &Plugin{cfg: cfg, logger: o.logger, clock: o.clock, http: o.http, db: o.db}
	if p.db == nil {
		db, err := store.Open(ctx, cfg.DatabaseURL, cfg.storeOptions())
		if err != nil {
			return nil, fmt.Errorf("open database (REFRAIN_DATABASE_URL): %w", err)
		}
		p.db, p.ownsDB = db, true
	}
	if cfg.AutoMigrate {
		if err := p.migrate(ctx); err != nil {
			p.Close()
			return nil, err
		}
	}
	p.metrics = newMetrics(p.db.DB)
	p.ops = registerOpsMetrics(p.metrics, p.db, p.clock, p.logger)
	p.resolver = &graph.Resolver{DB: p.db, Clock: p.clock, Logger: p.logger, Version: Version}
	h, err := p.buildHandler(ctx)
	if err != nil {
		p.Close()
		return nil, err
	}
	p.handler = h
	return p, nil
}

func (p *Plugin) migrate(ctx context.Context) error {
	applied, err := migrateUp(ctx, p.db, p.cfg)
	if err != nil {
		return err
	}
	if len(applied) > 0 {
		p.logger.InfoContext(ctx, "applied migrations", "migrations", applied, "dialect", store.DialectOf(p.db))
	}
	return nil
}

// DB returns the plugin's database.
func (p *Plugin) DB() *bun.DB { return p.db }

// Clock returns the plugin's clock.
func (p *Plugin) Clock() clock.Clock { return p.clock }

// Config returns the plugin's configuration.
func (p *Plugin) Config() Config { return p.cfg }

// Metrics returns the plugin's Prometheus collectors.
func (p *Plugin) Metrics() *Metrics { return p.metrics }

// Handler serves every route of Refrain. Mount it at the root or under a
// prefix with http.StripPrefix.
func (p *Plugin) Handler() http.Handler { return p.handler }

// Run runs the background workers until ctx is done, then returns nil. A
// worker that fails is logged and restarted after a pause, so one bad pass
// never stops the others.
func (p *Plugin) Run(ctx context.Context) error {
	if err := p.Start(ctx); err != nil {
		return err
	}
	done := make(chan struct{}, len(p.workers))
	for _, w := range p.workers {
		go func(w namedWorker) {
			defer func() { done <- struct{}{} }()
			for {
				err := w.run(ctx)
				if ctx.Err() != nil {
					return
				}
				p.logger.ErrorContext(ctx, "worker stopped; restarting", "worker", w.name, "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(5 * time.Second):
				}
			}
		}(w)
	}
	<-ctx.Done()
	for range p.workers {
		<-done
	}
	return nil
}

// Close releases the database when the plugin opened it.
func (p *Plugin) Close() error {
	if p.ownsDB && p.db != nil {
		return p.db.Close()
	}
	return nil
}

// Serve runs the HTTP server and the workers until ctx is done (SIGTERM in
// the CLI) or the server fails, then stops them in order: the server first,
// finishing requests in flight within cfg.ShutdownTimeout, then the
// workers and the KPI backfill. It returns once every goroutine it started
// has ended, so the caller may close the database right after.
func (p *Plugin) Serve(ctx context.Context) error {
	if err := p.Start(ctx); err != nil {
		return err
	}
	srv := &http.Server{Addr: p.cfg.Listen, Handler: p.handler, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: p.cfg.HTTPReadTimeout, IdleTimeout: p.cfg.HTTPIdleTimeout}
	errc := make(chan error, 2)
	// The workers outlive ctx until the server has stopped taking requests.
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()
	var server, workers sync.WaitGroup
	server.Go(func() {
		p.logger.InfoContext(ctx, "refrain listening", "addr", p.cfg.Listen, "dialect", store.DialectOf(p.db), "version", Version)
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("listen on %s (REFRAIN_LISTEN): %w", p.cfg.Listen, err)
		}
	})
	workers.Go(func() {
		if err := p.Run(runCtx); err != nil {
			errc <- err
		}
	})
	workers.Go(func() { p.backfillKPIsAtStart(runCtx) })
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	p.logger.Info("shutting down", "timeout", p.cfg.ShutdownTimeout)
	shutCtx, cancel := context.WithTimeout(context.Background(), p.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("shut down http server: %w", err))
	}
	server.Wait()
	cancelRun()
	workers.Wait()
	return runErr
}
