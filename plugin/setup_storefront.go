package plugin

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/commerce"
	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/inbox"
	"github.com/refrain-dev/refrain/plugin/jwks"
	"github.com/refrain-dev/refrain/plugin/privacy"
	"github.com/refrain-dev/refrain/plugin/storefront"
	"github.com/refrain-dev/refrain/plugin/storefront/bigcommerce"
	"github.com/refrain-dev/refrain/plugin/storefront/ingest"
)

// setupStorefront wires storefront webhooks, the inbox workers and commerce
// processing: it registers routes with route and background workers with
// p.addWorker.
func (p *Plugin) setupStorefront(_ context.Context, route func(pattern, name string, h http.Handler)) error {
	if err := p.setupHygiene(); err != nil {
		return err
	}
	cfg := p.cfg.StorefrontConfig
	handler := p.inboxHandler()
	workers := make([]*inbox.Worker, cfg.InboxWorkers)
	for i := range workers {
		w := inbox.NewWorker(p.db, p.clock, p.logger, handler.Handle, p.inboxOptions())
		workers[i] = w
		p.addWorker(fmt.Sprintf("inbox-%d", i), w.Run)
	}
	opts := ingest.Options{
		DB: p.db, Writer: inbox.NewWriter(p.db, p.clock, 0), Clock: p.clock, Logger: p.logger, MaxBody: cfg.WebhookMaxBody,
		ShopifySecret: cfg.ShopifySecret, SaleorSecret: cfg.SaleorSecret, BigCommerceSecret: cfg.BigCommerceSecret,
		WooCommerceSecret: cfg.WooCommerceSecret, StandardSecret: cfg.StandardWebhookSecret,
		Rejected: func(src event.Source, reason string) {
			p.metrics.WebhookRejected.WithLabelValues(string(src), reason).Inc()
		},
		Stored: func(event.Source) {
			// Wake one idle local worker; the others poll.
			for _, w := range workers {
				select {
				case w.Wake <- struct{}{}:
					return
				default:
				}
			}
		},
	}
	if cfg.SaleorJWKSURL != "" {
		set := jwks.New(cfg.SaleorJWKSURL, &jwks.Options{HTTPClient: p.http, Clock: p.clock, Logger: p.logger})
		opts.SaleorKeys = ingest.SaleorKeys(set.Key)
	}
	rcv := ingest.NewReceiver(opts)
	for _, src := range event.Sources() {
		path := "/webhooks/" + string(src)
		route("POST "+path, path, rcv.Handler(src))
	}
	p.addWorker("cart-abandonment", func(ctx context.Context) error {
		return p.every(ctx, cfg.CartSweepInterval, "cart-abandonment", func(ctx context.Context) error {
			_, err := p.SweepAbandonedCarts(ctx)
			return err
		})
	})
	p.setupSegments()
	p.addWorker("stage-sweep", func(ctx context.Context) error {
		return p.every(ctx, cfg.StageSweepInterval, "stage-sweep", func(ctx context.Context) error {
			_, err := p.SweepStages(ctx)
			return err
		})
	})
	return nil
}

// commerceProcessor returns the commerce processor of the configuration.
func (p *Plugin) commerceProcessor() *commerce.Processor {
	return commerce.NewProcessor(commerce.Options{AbandonAfter: p.cfg.CartAbandonAfter, Thresholds: p.cfg.Thresholds(),
		OnOrder: p.onOrder, Erase: privacy.Erase}, p.logger)
}

// inboxHandler builds the inbox handler of storefront deliveries. It holds
// no state of its own, so building it again is cheap.
func (p *Plugin) inboxHandler() *ingest.Processor {
	var fetcher storefront.Fetcher
	if p.cfg.BigCommerceStoreHash != "" && p.cfg.BigCommerceAccessToken != "" {
		fetcher = &bigcommerce.Client{StoreHash: p.cfg.BigCommerceStoreHash, AccessToken: p.cfg.BigCommerceAccessToken,
			BaseURL: p.cfg.BigCommerceAPIBase, HTTP: p.http}
	}
	h := ingest.NewProcessor(p.commerceProcessor(), fetcher, p.logger)
	h.Vet = privacy.VetEvent
	h.Applied = func(ctx context.Context, db bun.IDB, ev event.Event) error {
		if err := p.hygieneApplied(ctx, db, ev); err != nil {
			return err
		}
		return p.segmentApplied(ctx, db, ev)
	}
	return h
}

func (p *Plugin) inboxOptions() inbox.WorkerOptions {
	return inbox.WorkerOptions{Batch: p.cfg.InboxBatch, MaxAttempts: p.cfg.InboxMaxAttempts, Lease: p.cfg.InboxLease}
}

// ProcessInbox processes every inbox delivery that is due now, as the
// background workers do, and returns how many it claimed. Hosts that do not
// call Run, and tests on a virtual clock, drive processing with it.
func (p *Plugin) ProcessInbox(ctx context.Context) (int, error) {
	w := inbox.NewWorker(p.db, p.clock, p.logger, p.inboxHandler().Handle, p.inboxOptions())
	total := 0
	for {
		n, err := w.ProcessDue(ctx)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// SweepAbandonedCarts abandons the open carts idle for longer than
// REFRAIN_CART_ABANDON_AFTER, each exactly once across replicas, and returns
// how many it abandoned.
func (p *Plugin) SweepAbandonedCarts(ctx context.Context) (int, error) {
	return p.commerceProcessor().SweepAbandoned(ctx, p.db, p.clock.Now())
}

// SweepStages recomputes the lifecycle stages that change with time alone
// (NEW_CUSTOMER, ACTIVE, AT_RISK) and returns how many changed; each change
// is recorded once as lifecycle.stage_changed.
func (p *Plugin) SweepStages(ctx context.Context) (int, error) {
	return customer.SweepStages(ctx, p.db, p.clock.Now(), p.cfg.Thresholds(), 500)
}

// every runs fn at once and then every interval until ctx is done. A failed
// pass is logged; the next one runs on time.
func (p *Plugin) every(ctx context.Context, interval time.Duration, name string, fn func(ctx context.Context) error) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			p.logger.ErrorContext(ctx, "periodic pass failed", "worker", name, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
