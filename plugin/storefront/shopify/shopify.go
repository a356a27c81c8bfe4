// Package shopify adapts Shopify app webhooks to Refrain's storefront events.
//
// Shopify signs the raw body: X-Shopify-Hmac-Sha256 is the base64
// HMAC-SHA256 of the body under the app's client secret. The topic is in
// X-Shopify-Topic and the event id, stable across retries, in
// X-Shopify-Event-Id. Retries carry the original payload and deliveries are
// not ordered, so events carry the resource's updated_at as OccurredAt.
//
// Ids are written the way Shopify's GraphQL Admin API writes them, as gids
// ("gid://shopify/Customer/706405506930370084"), so they match the store's
// graph and Refrain's federated Customer key.
//
// Topic mapping:
//
//	orders/create                            order.created
//	orders/paid                              order.paid
//	orders/fulfilled                         order.fulfilled
//	orders/cancelled                         order.cancelled
//	refunds/create                           order.refunded
//	checkouts/create, checkouts/update       cart.updated (cart.converted once completed_at is set)
//	carts/create, carts/update               cart.updated
//	customers/create                         customer.created
//	customers/update                         customer.updated
//	customers/delete                         customer.deleted
//	customers_email_marketing_consent/update consent.updated, plus newsletter.subscribed or
//	                                         newsletter.unsubscribed when the new state is one of those
//	customers/redact                         customer.redacted
//	customers/data_request                   customer.data_request
//
// Any other topic is storefront.ErrUnknownTopic.
//
// It translates into plugin/commerce/event and imports only that and
// plugin/storefront from Refrain. It must not import another domain package
// (commerce, customer, privacy, inbox), graph, the assembly or another
// adapter.
package shopify

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/storefront"
)

// The Shopify webhook headers.
const (
	// HeaderHMAC is the base64 HMAC-SHA256 of the raw body.
	HeaderHMAC = "X-Shopify-Hmac-Sha256"
	// HeaderTopic is the webhook topic, e.g. "orders/create".
	HeaderTopic = "X-Shopify-Topic"
	// HeaderEventID identifies the event; retries of one event share it.
	HeaderEventID = "X-Shopify-Event-Id"
	// HeaderWebhookID identifies the delivery (older API versions).
	HeaderWebhookID = "X-Shopify-Webhook-Id"
	// HeaderShopDomain is the shop's myshopify.com domain.
	HeaderShopDomain = "X-Shopify-Shop-Domain"
	// HeaderAPIVersion is the API version of the payload.
	HeaderAPIVersion = "X-Shopify-Api-Version"
	// HeaderTriggeredAt is when Shopify triggered the webhook.
	HeaderTriggeredAt = "X-Shopify-Triggered-At"
)

// Verify checks X-Shopify-Hmac-Sha256 against the raw body with the app's
// client secret, in constant time. It returns storefront.ErrBadSignature
// (wrapped) when the header is missing or wrong and storefront.ErrNoKey when
// secret is empty.
func Verify(headers http.Header, body []byte, secret string) error {
	return storefront.VerifyBase64HMAC(secret, body, headers.Get(HeaderHMAC))
}

// Delivery returns what the inbox stores for a verified request. The dedupe
// key is "<topic>:<X-Shopify-Event-Id>" (the topic is included because one
// Shopify event can trigger several topics), else
// "<topic>:webhook:<X-Shopify-Webhook-Id>", else the body hash. A missing
// topic header is a *storefront.ParseError.
func Delivery(headers http.Header, body []byte) (storefront.Delivery, error) {
	topic := strings.TrimSpace(headers.Get(HeaderTopic))
	if topic == "" {
		return storefront.Delivery{}, &storefront.ParseError{Field: HeaderTopic, Err: errors.New("missing header")}
	}
	key := storefront.BodyKey(body)
	if id := strings.TrimSpace(headers.Get(HeaderEventID)); id != "" {
		key = topic + ":" + id
	} else if id := strings.TrimSpace(headers.Get(HeaderWebhookID)); id != "" {
		key = topic + ":webhook:" + id
	}
	return storefront.Delivery{
		Source:    event.SourceShopify,
		Topic:     topic,
		DedupeKey: key,
		Headers: storefront.PickHeaders(headers, HeaderTopic, HeaderEventID, HeaderWebhookID,
			HeaderShopDomain, HeaderAPIVersion, HeaderTriggeredAt, HeaderHMAC),
		Body: body,
	}, nil
}

// Platform returns Shopify as the webhook edge handles it, verifying with
// the app's client secret (REFRAIN_SHOPIFY_SECRET).
func Platform(secret string) storefront.Platform {
	return storefront.Platform{
		Source: event.SourceShopify, Setting: "REFRAIN_SHOPIFY_SECRET", Configured: secret != "", SignatureHeader: HeaderHMAC,
		Verify: func(_ context.Context, h http.Header, body []byte, _ time.Time) error {
			return Verify(h, body, secret)
		},
		Delivery: Delivery, Parse: Parse,
	}
}
