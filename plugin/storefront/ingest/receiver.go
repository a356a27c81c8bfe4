// Package ingest is the HTTP edge of storefront webhooks and the inbox
// handler behind it.
//
// Receiver answers POST /webhooks/{source}: it bounds the body, verifies the
// platform's signature, and commits the raw delivery to the inbox before
// answering 200, so an acknowledged delivery is never lost. Processor is the
// inbox handler that later parses the stored body with the platform's Parse,
// completes thin events through the store API when the platform can, and
// applies the events with commerce.Processor in the worker's transaction.
// Both find a platform in the storefront.Registry that Platforms builds; they
// hold no code of their own per platform.
//
// It is the one storefront package that may import domain packages
// (commerce, customer, inbox), since it hands them the parsed events. It must
// not import graph or the assembly (package plugin).
package ingest

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/inbox"
	"github.com/refrain-dev/refrain/plugin/jwks"
	"github.com/refrain-dev/refrain/plugin/storefront"
	"github.com/refrain-dev/refrain/plugin/storefront/saleor"
	"github.com/uptrace/bun"
)

// DefaultMaxBody is the default limit of a webhook body: 1 MiB.
const DefaultMaxBody = 1 << 20

// Reasons a delivery is rejected, as counted in metrics.
const (
	ReasonMissingSignature = "missing_signature"
	ReasonBadSignature     = "bad_signature"
	ReasonStaleTimestamp   = "stale_timestamp"
	ReasonUnknownKey       = "unknown_key"
)

// Options configures a Receiver. A platform whose secret (or, for Saleor,
// key function and secret) is empty is not connected: its deliveries get 503.
type Options struct {
	// DB is where deliveries are stored.
	DB bun.IDB
	// Writer, when set, stores deliveries with group commit (see
	// inbox.Writer); otherwise each delivery is its own INSERT.
	Writer *inbox.Writer
	// Clock stamps deliveries and checks Standard Webhooks freshness.
	Clock clock.Clock
	// Logger reports configuration problems and storage failures.
	Logger *slog.Logger
	// MaxBody is the largest body accepted, in bytes; 0 means DefaultMaxBody.
	MaxBody int64

	// ShopifySecret is the Shopify app's client secret.
	ShopifySecret string
	// SaleorKeys resolves Saleor JWS key ids from the configured JWKS (see SaleorKeys).
	SaleorKeys saleor.KeyFunc
	// SaleorSecret is the secret key of legacy Saleor webhooks.
	SaleorSecret string
	// BigCommerceSecret is the BigCommerce app's client secret.
	BigCommerceSecret string
	// WooCommerceSecret is the WooCommerce webhook secret.
	WooCommerceSecret string
	// StandardSecret is the whsec_... Standard Webhooks secret.
	StandardSecret string

	// Rejected, when set, is called for every delivery refused for its
	// signature, with one of the Reason constants.
	Rejected func(source event.Source, reason string)
	// Stored, when set, is called after a new delivery is committed; it
	// wakes a local inbox worker.
	Stored func(source event.Source)
}

// Receiver serves the webhook endpoints.
type Receiver struct {
	opts      Options
	platforms storefront.Registry
}

// NewReceiver returns a Receiver with opts.
func NewReceiver(opts Options) *Receiver {
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Receiver{opts: opts, platforms: Platforms(opts)}
}

// SaleorKeys adapts a JWKS key lookup (jwks.Set.Key) to saleor.KeyFunc: a
// key id the set does not hold is a bad signature (401), while a key set
// that cannot be fetched stays an error of its own (503, so Saleor retries).
func SaleorKeys(key func(ctx context.Context, kid string) (crypto.PublicKey, error)) saleor.KeyFunc {
	return func(ctx context.Context, kid string) (crypto.PublicKey, error) {
		k, err := key(ctx, kid)
		if errors.Is(err, jwks.ErrKeyNotFound) {
			return nil, fmt.Errorf("%w: %w", storefront.ErrBadSignature, err)
		}
		return k, err
	}
}

// Configured reports whether deliveries from src can be verified.
func (r *Receiver) Configured(src event.Source) bool {
	p, ok := r.platforms.Lookup(src)
	return ok && p.Configured
}

// Handler returns the handler of POST /webhooks/{src}.
func (r *Receiver) Handler(src event.Source) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { r.serve(src, w, req) })
}

func (r *Receiver) serve(src event.Source, w http.ResponseWriter, req *http.Request) {
	ctx := req.Context()
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.opts.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			answer(w, http.StatusRequestEntityTooLarge, "body larger than "+strconv.FormatInt(r.opts.MaxBody, 10)+" bytes (REFRAIN_WEBHOOK_MAX_BODY)")
			return
		}
		answer(w, http.StatusBadRequest, "could not read the body")
		return
	}
	p, known := r.platforms.Lookup(src)
	if known && p.Ping != nil && p.Ping(req.Header, body) {
		// WooCommerce disables a webhook whose activation ping fails.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
		return
	}
	if !known {
		// Routes exist only for registered platforms; a host that routes
		// another source gets the answer of an unconnected platform.
		answer(w, http.StatusServiceUnavailable, string(src)+" is not a storefront platform Refrain knows")
		return
	}
	if !p.Configured {
		r.opts.Logger.WarnContext(ctx, "webhook from an unconfigured source refused", "source", src, "setting", p.Setting)
		answer(w, http.StatusServiceUnavailable, string(src)+" webhooks are not configured: set "+p.Setting)
		return
	}
	if err := p.Verify(ctx, req.Header, body, r.opts.Clock.Now()); err != nil {
		switch {
		case errors.Is(err, storefront.ErrBadSignature):
			if r.opts.Rejected != nil {
				r.opts.Rejected(src, reasonOf(p.SignatureHeader, req.Header, err))
			}
			answer(w, http.StatusUnauthorized, "invalid signature")
		case errors.Is(err, storefront.ErrNoKey):
			r.opts.Logger.WarnContext(ctx, "webhook signed in a way no key is configured for", "source", src, "err", err)
			answer(w, http.StatusServiceUnavailable, "no key configured for this signature: set "+p.Setting)
		default:
			// The key set could not be fetched: a 5xx makes the platform retry.
			r.opts.Logger.ErrorContext(ctx, "webhook verification failed", "source", src, "err", err)
			answer(w, http.StatusServiceUnavailable, "could not verify the signature now; retry later")
		}
		return
	}
	d, err := p.Delivery(req.Header, body)
	if err != nil {
		answer(w, http.StatusBadRequest, err.Error())
		return
	}
	delivery := inbox.Delivery{Source: string(d.Source), Topic: d.Topic, DedupeKey: d.DedupeKey, Headers: d.Headers, Body: d.Body}
	var stored *inbox.Event
	var isNew bool
	if r.opts.Writer != nil {
		stored, isNew, err = r.opts.Writer.Store(ctx, delivery)
	} else {
		stored, isNew, err = inbox.Store(ctx, r.opts.DB, r.opts.Clock.Now(), delivery)
	}
	if err != nil {
		r.opts.Logger.ErrorContext(ctx, "store webhook delivery", "source", src, "err", err)
		answer(w, http.StatusInternalServerError, "could not store the delivery; retry later")
		return
	}
	if isNew && r.opts.Stored != nil {
		r.opts.Stored(src)
	}
	status := "accepted"
	if !isNew {
		status = "duplicate"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, `{"status":"`+status+`","id":"`+inbox.FormatID(stored.ID)+`"}`+"\n")
}

// reasonOf classifies a signature failure for the rejection metric; header
// is the one that carries the platform's signature.
func reasonOf(header string, h http.Header, err error) string {
	switch {
	case strings.TrimSpace(h.Get(header)) == "":
		return ReasonMissingSignature
	case errors.Is(err, jwks.ErrKeyNotFound):
		return ReasonUnknownKey
	case strings.Contains(err.Error(), "outside the"):
		return ReasonStaleTimestamp
	}
	return ReasonBadSignature
}

func answer(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
