package storefront

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/refrain-dev/refrain/plugin/commerce/event"
)

// Platform is one storefront platform as the webhook edge handles it: the
// pure functions of its adapter package, bound to its secret, and the facts
// the receiver needs to answer for it. Each adapter package builds its own
// with a Platform function; the receiver and the inbox handler look it up in
// a Registry and hold no code of their own per platform.
type Platform struct {
	// Source names the platform; it is the last path segment of
	// POST /webhooks/{source} and the Source of every event it parses.
	Source event.Source
	// Setting names the setting (or settings) that connect the platform, as
	// shown in the answer and the log when it is not configured.
	Setting string
	// Configured is true when the secret Setting names is set, so that
	// deliveries can be verified. Deliveries to a platform that is not
	// configured are refused with 503.
	Configured bool
	// SignatureHeader is the request header that carries the signature; a
	// rejection without it is counted as a missing signature.
	SignatureHeader string
	// Verify checks the request signature over the raw body with the bound
	// secret, in constant time; now is the time freshness windows are
	// measured from. Failures wrap ErrBadSignature, a missing key ErrNoKey.
	Verify func(ctx context.Context, h http.Header, body []byte, now time.Time) error
	// Delivery extracts what the inbox stores for a verified request: the
	// topic, the dedupe key and the headers worth keeping.
	Delivery func(h http.Header, body []byte) (Delivery, error)
	// Parse turns a stored body into normalised events. It never does I/O,
	// so a delivery can be replayed from the inbox at any time.
	Parse func(topic string, body []byte) ([]event.Event, error)
	// Ping, when set, recognises a request that is answered 200 before any
	// check and stored nowhere (WooCommerce's activation ping).
	Ping func(h http.Header, body []byte) bool
	// Hydrate, when set, completes thin events through the store's API with
	// f (BigCommerce sends only resource ids).
	Hydrate func(ctx context.Context, f Fetcher, events []event.Event) ([]event.Event, error)
}

// Registry holds the storefront platforms by Source. It is a value built
// once, by whoever wires the adapters, and only read afterwards.
type Registry struct {
	platforms map[event.Source]Platform
}

// NewRegistry returns a Registry of platforms; a later platform with the
// same Source replaces an earlier one.
func NewRegistry(platforms ...Platform) Registry {
	r := Registry{platforms: make(map[event.Source]Platform, len(platforms))}
	for _, p := range platforms {
		r.platforms[p.Source] = p
	}
	return r
}

// Lookup returns the platform of src, and false when there is none.
func (r Registry) Lookup(src event.Source) (Platform, bool) {
	p, ok := r.platforms[src]
	return p, ok
}

// Parse turns a stored delivery from src into normalised events with the
// platform's own Parse. Every event carries src as its Source, and topic as
// its Topic unless the platform set one. A source the registry does not hold
// is ErrUnknownTopic.
func (r Registry) Parse(src event.Source, topic string, body []byte) ([]event.Event, error) {
	p, ok := r.platforms[src]
	if !ok || p.Parse == nil {
		return nil, fmt.Errorf("parse delivery from %q: %w", src, ErrUnknownTopic)
	}
	events, err := p.Parse(topic, body)
	for i := range events {
		events[i].Source = src
		if events[i].Topic == "" {
			events[i].Topic = topic
		}
	}
	return events, err
}
