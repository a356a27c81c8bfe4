// Package saleor adapts Saleor app webhooks to Refrain's storefront events.
//
// Saleor signs deliveries with a detached JWS (RFC 7515 with RFC 7797's
// unencoded payload, "b64": false) in the Saleor-Signature header, RS256,
// under a key of the Saleor instance chosen by the JWS "kid". Keys come from
// the instance's JWKS, whose address is configuration
// (REFRAIN_SALEOR_JWKS_URL), never the Saleor-Api-Url or Saleor-Domain
// headers, which the sender controls. Webhooks created with a secret key are
// signed the legacy way instead: the hex HMAC-SHA256 of the raw body.
//
// The event name is in the Saleor-Event header, lower case ("order_created").
// Bodies come in two shapes, both accepted: the content of a
// subscription's "event" (`{"issuedAt": ..., "order": {...}}`) and the
// filterable subscription result (`{"data": {"orderCreated": {"order": {...}}}}`).
// Saleor has no delivery id, so the dedupe key is the event, the object id
// and issuedAt.
//
// Amounts are decimal numbers in major units; they are converted to minor
// units from the JSON number's text, never through a float. Ids are Saleor
// global IDs, as the store's GraphQL API gives them.
//
// Event mapping:
//
//	order_created                        order.created
//	order_fully_paid                     order.paid
//	order_fulfilled                      order.fulfilled
//	order_refunded (and order_fully_refunded) order.refunded
//	order_cancelled                      order.cancelled
//	checkout_created, checkout_updated   cart.updated
//	customer_created                     customer.created
//	customer_updated                     customer.updated
//	customer_deleted                     customer.deleted
//
// Any other event is storefront.ErrUnknownTopic.
//
// It translates into plugin/commerce/event and imports only that and
// plugin/storefront from Refrain. It must not import another domain package
// (commerce, customer, privacy, inbox), graph, the assembly or another
// adapter.
package saleor

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/storefront"
)

// The Saleor webhook headers.
const (
	// HeaderEvent is the event name, lower case, e.g. "order_created".
	HeaderEvent = "Saleor-Event"
	// HeaderSignature is the detached JWS, or the legacy hex HMAC.
	HeaderSignature = "Saleor-Signature"
	// HeaderDomain is the Saleor instance's domain. Informational only: it is
	// never used to find keys.
	HeaderDomain = "Saleor-Domain"
	// HeaderAPIURL is the Saleor instance's GraphQL address. Informational only.
	HeaderAPIURL = "Saleor-Api-Url"
)

// KeyFunc returns the public key with the given JWS key id, from the JWKS of
// the configured Saleor instance. It should return an error wrapping
// storefront.ErrBadSignature when no such key exists (after refreshing its
// cache once); any other error (the JWKS could not be fetched) is passed
// through unchanged, so the HTTP layer can answer 5xx and Saleor retries.
type KeyFunc func(ctx context.Context, kid string) (crypto.PublicKey, error)

// VerifyOpts says how deliveries are signed. At least one of Keys and Secret
// must be set.
type VerifyOpts struct {
	// Keys resolves JWS key ids; it verifies JWS signatures. Nil means JWS
	// signatures cannot be verified (ErrNoKey).
	Keys KeyFunc
	// Secret is the legacy webhook secret key; when set, a signature that is
	// not a JWS is checked as hex HMAC-SHA256 of the body. Empty means legacy
	// signatures are refused.
	Secret string
}

// Verify checks the Saleor-Signature header of a delivery against its raw
// body: a detached JWS through opts.Keys, or a legacy hex HMAC with
// opts.Secret. Failures wrap storefront.ErrBadSignature, a missing key
// storefront.ErrNoKey; an error of opts.Keys other than ErrBadSignature is
// returned wrapped as is.
func Verify(ctx context.Context, headers http.Header, body []byte, opts VerifyOpts) error {
	if opts.Keys == nil && opts.Secret == "" {
		return storefront.ErrNoKey
	}
	sig := strings.TrimSpace(headers.Get(HeaderSignature))
	if sig == "" {
		return fmt.Errorf("%w: missing %s", storefront.ErrBadSignature, HeaderSignature)
	}
	if strings.Count(sig, ".") == 2 {
		if opts.Keys == nil {
			return fmt.Errorf("verify saleor jws: %w", storefront.ErrNoKey)
		}
		return verifyJWS(ctx, sig, body, opts.Keys)
	}
	if opts.Secret == "" {
		return fmt.Errorf("%w: legacy HMAC signature but no secret configured", storefront.ErrBadSignature)
	}
	return storefront.VerifyHexHMAC(opts.Secret, body, sig)
}

// Delivery returns what the inbox stores for a verified request. The topic
// is the Saleor-Event header, lower-cased. The dedupe key is
// "<event>:<object id>:<issuedAt>"; without issuedAt the object's
// updatedAt stands in; without either, or when the body does not decode, it
// is the body hash. A missing event header is a *storefront.ParseError.
func Delivery(headers http.Header, body []byte) (storefront.Delivery, error) {
	topic := strings.ToLower(strings.TrimSpace(headers.Get(HeaderEvent)))
	if topic == "" {
		return storefront.Delivery{}, &storefront.ParseError{Field: HeaderEvent, Err: errors.New("missing header")}
	}
	key := storefront.BodyKey(body)
	if ev, err := decodeEvent(body); err == nil {
		id, updated := ev.object()
		stamp := ev.IssuedAt
		if stamp == "" {
			stamp = updated
		}
		if id != "" && stamp != "" {
			key = topic + ":" + id + ":" + stamp
		}
	}
	return storefront.Delivery{
		Source:    event.SourceSaleor,
		Topic:     topic,
		DedupeKey: key,
		Headers:   storefront.PickHeaders(headers, HeaderEvent, HeaderDomain, HeaderAPIURL, HeaderSignature),
		Body:      body,
	}, nil
}

// decodeEvent finds the event object in either payload shape: the content
// of "event", or {"data": {"<subscriptionField>": {...}}}.
func decodeEvent(body []byte) (*payload, error) {
	var root map[string]json.RawMessage
	if err := storefront.DecodeJSON(body, &root); err != nil {
		return nil, err
	}
	inner := body
	if data, ok := root["data"]; ok {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(data, &fields); err != nil {
			return nil, &storefront.ParseError{Field: "data", Err: err}
		}
		inner = nil
		for _, v := range fields {
			if t := strings.TrimSpace(string(v)); t != "" && t != "null" {
				if inner != nil {
					return nil, &storefront.ParseError{Field: "data", Err: errors.New("more than one subscription field")}
				}
				inner = v
			}
		}
		if inner == nil {
			return nil, &storefront.ParseError{Field: "data", Err: errors.New("no subscription result")}
		}
	}
	var ev payload
	if err := storefront.DecodeJSON(inner, &ev); err != nil {
		return nil, err
	}
	return &ev, nil
}

// Platform returns Saleor as the webhook edge handles it, verifying JWS
// signatures through opts.Keys (REFRAIN_SALEOR_JWKS_URL) and legacy HMAC
// signatures with opts.Secret (REFRAIN_SALEOR_SECRET).
func Platform(opts VerifyOpts) storefront.Platform {
	return storefront.Platform{
		Source: event.SourceSaleor, Setting: "REFRAIN_SALEOR_JWKS_URL or REFRAIN_SALEOR_SECRET",
		Configured: opts.Keys != nil || opts.Secret != "", SignatureHeader: HeaderSignature,
		Verify: func(ctx context.Context, h http.Header, body []byte, _ time.Time) error {
			return Verify(ctx, h, body, opts)
		},
		Delivery: Delivery, Parse: Parse,
	}
}
