// Package standard accepts Standard Webhooks (https://www.standardwebhooks.com)
// carrying Refrain's own documented commerce events, for stores Refrain has no
// dedicated adapter for: Medusa, Vendure and commercetools bridges, or any
// custom store.
//
// Signing: webhook-id, webhook-timestamp (Unix seconds) and
// webhook-signature, a space-separated list of "v1,<base64 HMAC-SHA256(key,
// id + "." + timestamp + "." + body)>" of which any one may match. The key is
// the base64-decoded part of the configured "whsec_..." secret. Deliveries
// more than five minutes away from now are rejected. The dedupe key is
// webhook-id, which is stable across retries.
//
// Body: {"type": "<event type>", "timestamp": "<RFC 3339>", "data": {...}}.
// The event types are the normalised kinds themselves: order.created,
// order.paid, order.fulfilled, order.refunded, order.cancelled, cart.updated,
// cart.abandoned, cart.converted, customer.created, customer.updated,
// customer.deleted, newsletter.subscribed, newsletter.unsubscribed. Other
// types are storefront.ErrUnknownTopic.
//
// The data of each type is described by a JSON Schema (draft 2020-12) in
// schema/<type>.json, embedded and served by Schema. Field names are
// camelCase. Money is an object {"amount": "12.34", "currency": "EUR"}: the
// amount is a decimal string in major units, never a JSON number, so senders
// write what their store shows and no float touches it; Refrain converts it
// to minor units with the currency's ISO 4217 exponent ("1500" JPY is 1500
// yen, "12.345" KWD is 12345 fils). Times are RFC 3339 strings. Parse checks
// the required fields of each type in Go, with the same lists as the schemas.
//
// It translates into plugin/commerce/event and imports only that and
// plugin/storefront from Refrain. It must not import another domain package
// (commerce, customer, privacy, inbox), graph, the assembly or another
// adapter.
package standard

import (
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/storefront"
)

//go:embed schema/*.json
var schemas embed.FS // read-only embedded files; not mutable state

// SecretPrefix starts every Standard Webhooks secret.
const SecretPrefix = "whsec_"

// DecodeSecret returns the HMAC key of a "whsec_<base64>" secret. The prefix
// is optional; the rest must be standard base64 of at least one byte.
// Configuration validation calls it once at start-up.
func DecodeSecret(secret string) ([]byte, error) {
	s := strings.TrimPrefix(strings.TrimSpace(secret), SecretPrefix)
	if s == "" {
		return nil, storefront.ErrNoKey
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("decode standard webhook secret: %w", err)
	}
	if len(key) == 0 {
		return nil, storefront.ErrNoKey
	}
	return key, nil
}

// Verify checks the Standard Webhooks signature of a delivery with the
// "whsec_..." secret, and that webhook-timestamp is within five minutes of
// now. Failures wrap storefront.ErrBadSignature; an empty secret is
// storefront.ErrNoKey and an undecodable one an error naming the secret.
func Verify(headers http.Header, body []byte, secret string, now time.Time) error {
	key, err := DecodeSecret(secret)
	if err != nil {
		return err
	}
	return storefront.VerifyStandardWebhook(headers, body, key, now, storefront.StandardTolerance)
}

// Delivery returns what the inbox stores for a verified request: the topic is
// the body's type, the dedupe key the webhook-id header (the body hash when
// it is absent). A body that is not a JSON object with a type is a
// *storefront.ParseError.
func Delivery(headers http.Header, body []byte) (storefront.Delivery, error) {
	var env struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return storefront.Delivery{}, storefront.FieldError("body", err)
	}
	if strings.TrimSpace(env.Type) == "" {
		return storefront.Delivery{}, &storefront.ParseError{Field: "type", Err: errors.New("missing")}
	}
	key := strings.TrimSpace(headers.Get(storefront.HeaderWebhookID))
	if key == "" {
		key = storefront.BodyKey(body)
	}
	return storefront.Delivery{
		Source:    event.SourceStandard,
		Topic:     strings.TrimSpace(env.Type),
		DedupeKey: key,
		Headers: storefront.PickHeaders(headers, storefront.HeaderWebhookID, storefront.HeaderWebhookTimestamp,
			storefront.HeaderWebhookSignature),
		Body: body,
	}, nil
}

// Types lists the event types this package accepts, in a stable order.
func Types() []event.Kind {
	var out []event.Kind
	for _, k := range event.Kinds() {
		if required(k) != nil {
			out = append(out, k)
		}
	}
	return out
}

// Schema returns the JSON Schema (draft 2020-12) of an event type, as
// embedded from schema/<type>.json. An unknown type is
// storefront.ErrUnknownTopic.
func Schema(eventType string) ([]byte, error) {
	if required(event.Kind(eventType)) == nil {
		return nil, fmt.Errorf("schema %q: %w", eventType, storefront.ErrUnknownTopic)
	}
	b, err := fs.ReadFile(schemas, "schema/"+eventType+".json")
	if err != nil {
		return nil, fmt.Errorf("read schema %q: %w", eventType, err)
	}
	return b, nil
}

// required returns the fields of data each type requires (the same lists as
// the "required" of properties.data in the schemas; a test keeps them equal),
// or nil for a type this package does not accept.
func required(k event.Kind) []string {
	switch k {
	case event.KindOrderCreated:
		return []string{"id", "total"}
	case event.KindOrderRefunded:
		return []string{"id", "refunded"}
	case event.KindOrderPaid, event.KindOrderFulfilled, event.KindOrderCancelled,
		event.KindCustomerCreated, event.KindCustomerUpdated, event.KindCustomerDeleted:
		return []string{"id"}
	case event.KindCartUpdated, event.KindCartAbandoned, event.KindCartConverted:
		return []string{"token"}
	case event.KindNewsletterSubscribed, event.KindNewsletterUnsubscribed:
		return []string{"email"}
	}
	return nil
}

// Platform returns Standard Webhooks as the webhook edge handles it,
// verifying with the whsec_ secret (REFRAIN_STANDARD_WEBHOOK_SECRET).
func Platform(secret string) storefront.Platform {
	return storefront.Platform{
		Source: event.SourceStandard, Setting: "REFRAIN_STANDARD_WEBHOOK_SECRET", Configured: secret != "",
		SignatureHeader: storefront.HeaderWebhookSignature,
		Verify: func(_ context.Context, h http.Header, body []byte, now time.Time) error {
			return Verify(h, body, secret, now)
		},
		Delivery: Delivery, Parse: Parse,
	}
}
