// Package bigcommerce adapts BigCommerce webhooks to Refrain's storefront
// events.
//
// BigCommerce signs deliveries the Standard Webhooks way (webhook-id,
// webhook-timestamp, webhook-signature) with one difference: the HMAC key is
// the raw bytes of the app's client secret, not a base64-decoded "whsec_"
// secret. Payloads are thin: a scope, the store id, and data{type, id} (plus a
// few extras such as a cart's recovery token or an order's new status id).
// Parse therefore returns thin events carrying a event.ResourceRef;
// Hydrate completes them through a storefront.Fetcher when one is available.
//
// The body's hash is identical for redeliveries of one event, but two scopes
// may share it (cart updated and cart abandoned do in the documentation's
// examples), so the dedupe key is "<scope>:<hash>".
//
// Scope mapping:
//
//	store/order/created                    order.created
//	store/order/statusUpdated              by the new status id: 8, 9, 11 order.paid;
//	                                       2, 10 order.paid and order.fulfilled;
//	                                       3 order.paid; 5, 6 order.cancelled; others none
//	store/order/refund/created             order.refunded
//	store/order/updated, archived,
//	  message/created                      none (known, no normalised meaning)
//	store/cart/created, updated,
//	  lineItem/*                           cart.updated
//	store/cart/abandoned                   cart.abandoned
//	store/cart/converted                   cart.converted
//	store/cart/deleted                     none
//	store/customer/created                 customer.created
//	store/customer/updated                 customer.updated
//	store/customer/deleted                 customer.deleted
//	store/customer/address/*,
//	  payment/instrument/*                 none
//	store/subscriber/created               newsletter.subscribed
//	store/subscriber/deleted               newsletter.unsubscribed
//	store/subscriber/updated               none
//
// Refunds come from refund/created only, not from the Refunded status, so one
// refund is one event. Any other scope is storefront.ErrUnknownTopic.
//
// It translates into plugin/commerce/event and imports only that and
// plugin/storefront from Refrain. It must not import another domain package
// (commerce, customer, privacy, inbox), graph, the assembly or another
// adapter.
package bigcommerce

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/storefront"
)

// Verify checks the Standard Webhooks signature of a BigCommerce delivery
// with the app's client secret used as raw HMAC key bytes, and that the
// webhook-timestamp is within storefront.StandardTolerance of now. Failures
// wrap storefront.ErrBadSignature; an empty secret is storefront.ErrNoKey.
func Verify(headers http.Header, body []byte, secret string, now time.Time) error {
	return storefront.VerifyStandardWebhook(headers, body, []byte(secret), now, storefront.StandardTolerance)
}

// envelope is the BigCommerce webhook body.
type envelope struct {
	Scope     string          `json:"scope"`
	StoreID   storefront.Text `json:"store_id"`
	Hash      string          `json:"hash"`
	CreatedAt storefront.Text `json:"created_at"`
	Producer  string          `json:"producer"`
	Data      *struct {
		Type    string          `json:"type"`
		ID      storefront.Text `json:"id"`
		Token   string          `json:"token"`
		OrderID storefront.Text `json:"orderId"`
		CartID  string          `json:"cartId"`
		Status  *struct {
			PreviousStatusID storefront.Text `json:"previous_status_id"`
			NewStatusID      storefront.Text `json:"new_status_id"`
		} `json:"status"`
		Refund *struct {
			RefundID storefront.Text `json:"refund_id"`
		} `json:"refund"`
	} `json:"data"`
}

// Delivery returns what the inbox stores for a verified request. The topic
// is the body's scope. The dedupe key is "<scope>:<hash>", else the
// webhook-id header, else the body hash. A body without a scope is a
// *storefront.ParseError: BigCommerce puts no topic in the headers.
func Delivery(headers http.Header, body []byte) (storefront.Delivery, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return storefront.Delivery{}, storefront.FieldError("body", err)
	}
	scope := strings.TrimSpace(env.Scope)
	if scope == "" {
		return storefront.Delivery{}, &storefront.ParseError{Field: "scope", Err: errMissing()}
	}
	key := storefront.BodyKey(body)
	if h := strings.TrimSpace(env.Hash); h != "" {
		key = scope + ":" + h
	} else if id := strings.TrimSpace(headers.Get(storefront.HeaderWebhookID)); id != "" {
		key = "webhook-id:" + id
	}
	return storefront.Delivery{
		Source:    event.SourceBigCommerce,
		Topic:     scope,
		DedupeKey: key,
		Headers: storefront.PickHeaders(headers, storefront.HeaderWebhookID, storefront.HeaderWebhookTimestamp,
			storefront.HeaderWebhookSignature),
		Body: body,
	}, nil
}

// Platform returns BigCommerce as the webhook edge handles it, verifying
// with the app's client secret (REFRAIN_BIGCOMMERCE_SECRET). Its thin events
// are completed with Hydrate.
func Platform(secret string) storefront.Platform {
	return storefront.Platform{
		Source: event.SourceBigCommerce, Setting: "REFRAIN_BIGCOMMERCE_SECRET", Configured: secret != "",
		SignatureHeader: storefront.HeaderWebhookSignature,
		Verify: func(_ context.Context, h http.Header, body []byte, now time.Time) error {
			return Verify(h, body, secret, now)
		},
		Delivery: Delivery, Parse: Parse, Hydrate: Hydrate,
	}
}
