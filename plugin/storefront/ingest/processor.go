package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/refrain-dev/refrain/plugin/commerce"
	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/inbox"
	"github.com/refrain-dev/refrain/plugin/storefront"
	"github.com/uptrace/bun"
)

// Parse turns a stored delivery into normalised events with the platform's
// own Parse. It is pure, so a delivery can be replayed from the inbox at any
// time. Every event carries src as its Source and topic as its Topic.
func Parse(src event.Source, topic string, body []byte) ([]event.Event, error) {
	return Platforms(Options{}).Parse(src, topic, body)
}

// Processor is the inbox handler of storefront deliveries.
type Processor struct {
	commerce  *commerce.Processor
	platforms storefront.Registry
	fetchers  map[event.Source]storefront.Fetcher
	logger    *slog.Logger

	// Vet, when set, sees each event before it is applied and returns it,
	// possibly changed, and whether to apply it: privacy strips or skips
	// an erased customer so that a webhook does not bring them back.
	Vet func(ctx context.Context, db bun.IDB, ev event.Event) (event.Event, bool, error)
	// Applied, when set, runs after each applied event in the same
	// transaction: list hygiene checks the addresses the event carried.
	Applied func(ctx context.Context, db bun.IDB, ev event.Event) error
}

// NewProcessor returns a Processor applying events with c. bigCommerce,
// when not nil, completes thin BigCommerce events from the store's API;
// without it they are recorded with what they carry.
func NewProcessor(c *commerce.Processor, bigCommerce storefront.Fetcher, logger *slog.Logger) *Processor {
	p := &Processor{commerce: c, platforms: Platforms(Options{}), fetchers: map[event.Source]storefront.Fetcher{}, logger: logger}
	if bigCommerce != nil {
		p.fetchers[event.SourceBigCommerce] = bigCommerce
	}
	if p.logger == nil {
		p.logger = slog.New(slog.DiscardHandler)
	}
	return p
}

// Handle is an inbox.Handler: it parses the stored delivery and applies its
// events in tx. A topic Refrain does not act on, or a delivery that carries
// nothing to record, is inbox.ErrIgnore (IGNORED); a body that does not
// parse, or an event that lacks what its kind needs, is an
// *inbox.PermanentError (FAILED at once, with the reason); anything else
// (the store API or the database) is returned to be retried.
func (p *Processor) Handle(ctx context.Context, tx bun.Tx, e *inbox.Event) error {
	src := event.Source(e.Source)
	events, err := p.platforms.Parse(src, e.Topic, e.Body)
	if errors.Is(err, storefront.ErrUnknownTopic) {
		return inbox.ErrIgnore
	}
	if err != nil {
		return &inbox.PermanentError{Err: err}
	}
	if len(events) == 0 {
		return inbox.ErrIgnore
	}
	if pl, _ := p.platforms.Lookup(src); pl.Hydrate != nil && p.fetchers[src] != nil {
		if events, err = pl.Hydrate(ctx, p.fetchers[src], events); err != nil {
			return err
		}
	}
	applied := 0
	for _, ev := range events {
		if p.Vet != nil {
			keep := true
			if ev, keep, err = p.Vet(ctx, tx, ev); err != nil {
				return err
			} else if !keep {
				continue
			}
		}
		err := p.commerce.Apply(ctx, tx, e.ReceivedAt, ev)
		if err == nil && p.Applied != nil {
			err = p.Applied(ctx, tx, ev)
		}
		var gap *commerce.ParseGap
		switch {
		case err == nil:
			applied++
		case errors.Is(err, commerce.ErrThin), errors.Is(err, commerce.ErrUnhandled):
			p.logger.DebugContext(ctx, "event carries nothing to record", "id", e.ID, "kind", ev.Kind, "err", err)
		case errors.As(err, &gap), errors.Is(err, customer.ErrInvalidEmail), errors.Is(err, customer.ErrNoIdentity):
			return &inbox.PermanentError{Err: fmt.Errorf("apply %s: %w", ev.Kind, err)}
		default:
			return fmt.Errorf("apply %s: %w", ev.Kind, err)
		}
	}
	if applied == 0 {
		return inbox.ErrIgnore
	}
	return nil
}
