// Package woocommerce adapts WooCommerce webhooks to Refrain's storefront
// events.
//
// WooCommerce signs the raw body: X-WC-Webhook-Signature is the base64
// HMAC-SHA256 of the body under the webhook's secret. The topic is in
// X-WC-Webhook-Topic ("order.created", "action.woocommerce_add_to_cart").
// When a webhook is saved, WooCommerce first posts an unsigned form body
// "webhook_id=N" and disables the webhook unless it gets a 2xx: IsPing
// recognises it so the HTTP layer can answer 200 without verifying or storing
// anything. WooCommerce does not retry and disables a webhook after more than
// five failures, so the HTTP layer must answer fast.
//
// The delivery id changes on every delivery and one save can fire the same
// topic twice, so the dedupe key is the topic, the resource id and its
// date_modified_gmt.
//
// Topic mapping (order statuses: processing means paid; completed means paid
// and fulfilled):
//
//	order.created                 order.created, plus the status's events
//	order.updated, order.restored by status: processing order.paid;
//	                              completed order.paid and order.fulfilled;
//	                              refunded order.refunded; cancelled order.cancelled;
//	                              others none
//	order.deleted                 none
//	customer.created              customer.created
//	customer.updated              customer.updated
//	customer.deleted              customer.deleted
//	action.woocommerce_add_to_cart, action.woocommerce_cart_item_removed,
//	action.woocommerce_cart_item_restored, action.woocommerce_after_cart_item_quantity_update,
//	action.woocommerce_cart_item_set_quantity, action.woocommerce_cart_updated,
//	action.woocommerce_cart_emptied
//	                              cart.updated (thin)
//	action.woocommerce_checkout_order_processed, action.woocommerce_thankyou
//	                              cart.converted (thin, Ref.OrderID set)
//	action.woocommerce_payment_complete
//	                              order.paid (thin)
//
// Any other topic is storefront.ErrUnknownTopic. Action hooks carry only the
// hook's first argument ({"action": hook, "arg": ...}): for cart hooks the
// cart item key, kept in Ref.Token, with no cart or customer identity. They
// are activity signals; guests and carts are identified by the session on the
// storefront side, not by these webhooks.
//
// It translates into plugin/commerce/event and imports only that and
// plugin/storefront from Refrain. It must not import another domain package
// (commerce, customer, privacy, inbox), graph, the assembly or another
// adapter.
package woocommerce

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/storefront"
)

// The WooCommerce webhook headers.
const (
	// HeaderSignature is the base64 HMAC-SHA256 of the raw body.
	HeaderSignature = "X-Wc-Webhook-Signature"
	// HeaderTopic is the topic, e.g. "order.updated".
	HeaderTopic = "X-Wc-Webhook-Topic"
	// HeaderResource is the resource, e.g. "order".
	HeaderResource = "X-Wc-Webhook-Resource"
	// HeaderEvent is the event, e.g. "updated".
	HeaderEvent = "X-Wc-Webhook-Event"
	// HeaderWebhookID is the id of the webhook configuration.
	HeaderWebhookID = "X-Wc-Webhook-Id"
	// HeaderDeliveryID is the id of this delivery; it changes every time.
	HeaderDeliveryID = "X-Wc-Webhook-Delivery-Id"
	// HeaderSource is the store's home URL.
	HeaderSource = "X-Wc-Webhook-Source"
)

// IsPing reports whether the request is WooCommerce's activation ping: no
// signature header and a form body made of exactly one numeric webhook_id.
// The HTTP layer answers it 200 without verification and stores nothing.
func IsPing(headers http.Header, body []byte) bool {
	if headers.Get(HeaderSignature) != "" || len(body) > 64 {
		return false
	}
	values, err := url.ParseQuery(strings.TrimSpace(string(body)))
	if err != nil || len(values) != 1 {
		return false
	}
	ids := values["webhook_id"]
	if len(ids) != 1 || ids[0] == "" {
		return false
	}
	for _, r := range ids[0] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Verify checks X-WC-Webhook-Signature against the raw body with the
// webhook's secret, in constant time. Failures wrap storefront.ErrBadSignature;
// an empty secret is storefront.ErrNoKey.
func Verify(headers http.Header, body []byte, secret string) error {
	return storefront.VerifyBase64HMAC(secret, body, headers.Get(HeaderSignature))
}

// Delivery returns what the inbox stores for a verified request. The dedupe
// key is "<topic>:<id>:<date_modified_gmt>" for resources, "<topic>:<id>"
// for deletions (whose body is only the id), "<topic>:delivery:<delivery id>"
// for action hooks (WooCommerce never retries, so each delivery is distinct),
// and the body hash otherwise. A missing topic header is a
// *storefront.ParseError.
func Delivery(headers http.Header, body []byte) (storefront.Delivery, error) {
	topic := strings.TrimSpace(headers.Get(HeaderTopic))
	if topic == "" {
		return storefront.Delivery{}, &storefront.ParseError{Field: HeaderTopic, Err: errors.New("missing header")}
	}
	key := storefront.BodyKey(body)
	if strings.HasPrefix(topic, "action.") {
		if id := strings.TrimSpace(headers.Get(HeaderDeliveryID)); id != "" {
			key = topic + ":delivery:" + id
		}
	} else {
		var r struct {
			ID              storefront.Text `json:"id"`
			DateModifiedGMT string          `json:"date_modified_gmt"`
		}
		if err := json.Unmarshal(body, &r); err == nil && r.ID != "" {
			key = topic + ":" + string(r.ID)
			if r.DateModifiedGMT != "" {
				key += ":" + r.DateModifiedGMT
			}
		}
	}
	return storefront.Delivery{
		Source:    event.SourceWooCommerce,
		Topic:     topic,
		DedupeKey: key,
		Headers: storefront.PickHeaders(headers, HeaderTopic, HeaderResource, HeaderEvent, HeaderWebhookID,
			HeaderDeliveryID, HeaderSource, HeaderSignature),
		Body: body,
	}, nil
}

// Platform returns WooCommerce as the webhook edge handles it, verifying
// with the webhook secret (REFRAIN_WOOCOMMERCE_SECRET) and answering its
// activation ping.
func Platform(secret string) storefront.Platform {
	return storefront.Platform{
		Source: event.SourceWooCommerce, Setting: "REFRAIN_WOOCOMMERCE_SECRET", Configured: secret != "",
		SignatureHeader: HeaderSignature,
		Verify: func(_ context.Context, h http.Header, body []byte, _ time.Time) error {
			return Verify(h, body, secret)
		},
		Delivery: Delivery, Parse: Parse, Ping: IsPing,
	}
}
