package bigcommerce

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/storefront"
)

func errMissing() error { return errors.New("missing") }

// Parse turns a BigCommerce webhook body of the given scope into thin
// normalised events (Thin true, Ref set, Order, Cart and Customer nil); see
// the package documentation for the mapping. A known scope without a
// normalised meaning returns no events and no error. OccurredAt is the
// body's created_at. It does no I/O and never panics.
func Parse(topic string, body []byte) ([]event.Event, error) {
	scope := strings.TrimSpace(topic)
	kinds, resource, known := mapScope(scope)
	if !known {
		return nil, fmt.Errorf("parse bigcommerce %q: %w", topic, storefront.ErrUnknownTopic)
	}
	var env envelope
	if err := storefront.DecodeJSON(body, &env); err != nil {
		return nil, fmt.Errorf("parse bigcommerce %s: %w", scope, err)
	}
	if env.Data == nil || env.Data.ID == "" {
		return nil, fmt.Errorf("parse bigcommerce %s: %w", scope, &storefront.ParseError{Field: "data.id", Err: errMissing()})
	}
	ref := &event.ResourceRef{
		Type:    resource,
		ID:      string(env.Data.ID),
		StoreID: string(env.StoreID),
		Token:   env.Data.Token,
		OrderID: string(env.Data.OrderID),
	}
	if strings.HasPrefix(scope, "store/cart/lineItem/") && env.Data.CartID != "" {
		// Line item hooks carry the line's id; the cart is what changed.
		ref.ID = env.Data.CartID
	}
	if env.Data.Refund != nil {
		ref.RefundID = string(env.Data.Refund.RefundID)
	}
	if env.Data.Status != nil {
		ref.Status = string(env.Data.Status.NewStatusID)
		ref.PreviousStatus = string(env.Data.Status.PreviousStatusID)
	}
	if scope == "store/order/statusUpdated" {
		if env.Data.Status == nil || ref.Status == "" {
			return nil, fmt.Errorf("parse bigcommerce %s: %w", scope, &storefront.ParseError{Field: "data.status.new_status_id", Err: errMissing()})
		}
		kinds = statusKinds(ref.Status)
	}
	var occurred time.Time
	if env.CreatedAt != "" {
		sec, err := strconv.ParseInt(string(env.CreatedAt), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parse bigcommerce %s: %w", scope, &storefront.ParseError{Field: "created_at", Err: err})
		}
		occurred = time.Unix(sec, 0).UTC()
	}
	if len(kinds) == 0 {
		return nil, nil
	}
	events := make([]event.Event, 0, len(kinds))
	for _, k := range kinds {
		r := *ref
		events = append(events, event.Event{
			Kind:       k,
			Source:     event.SourceBigCommerce,
			Topic:      topic,
			OccurredAt: occurred,
			Thin:       true,
			Ref:        &r,
		})
	}
	return events, nil
}

// mapScope returns the kinds a scope maps to, the resource it is about, and
// whether the scope is known at all.
func mapScope(scope string) ([]event.Kind, event.ResourceType, bool) {
	one := func(k event.Kind) []event.Kind { return []event.Kind{k} }
	switch scope {
	case "store/order/created":
		return one(event.KindOrderCreated), event.ResourceOrder, true
	case "store/order/statusUpdated":
		return nil, event.ResourceOrder, true // decided by statusKinds
	case "store/order/refund/created":
		return one(event.KindOrderRefunded), event.ResourceOrder, true
	case "store/order/updated", "store/order/archived", "store/order/message/created":
		return nil, event.ResourceOrder, true
	case "store/cart/created", "store/cart/updated":
		return one(event.KindCartUpdated), event.ResourceCart, true
	case "store/cart/abandoned":
		return one(event.KindCartAbandoned), event.ResourceCart, true
	case "store/cart/converted":
		return one(event.KindCartConverted), event.ResourceCart, true
	case "store/cart/deleted":
		return nil, event.ResourceCart, true
	case "store/customer/created":
		return one(event.KindCustomerCreated), event.ResourceCustomer, true
	case "store/customer/updated":
		return one(event.KindCustomerUpdated), event.ResourceCustomer, true
	case "store/customer/deleted":
		return one(event.KindCustomerDeleted), event.ResourceCustomer, true
	case "store/subscriber/created":
		return one(event.KindNewsletterSubscribed), event.ResourceSubscriber, true
	case "store/subscriber/deleted":
		return one(event.KindNewsletterUnsubscribed), event.ResourceSubscriber, true
	case "store/subscriber/updated":
		return nil, event.ResourceSubscriber, true
	}
	switch {
	case strings.HasPrefix(scope, "store/cart/lineItem/"):
		return one(event.KindCartUpdated), event.ResourceCart, true
	case strings.HasPrefix(scope, "store/customer/address/"), strings.HasPrefix(scope, "store/customer/payment/instrument/"):
		return nil, event.ResourceCustomer, true
	}
	return nil, "", false
}

// statusKinds maps a BigCommerce order status id to the transitions it
// means. Status ids: 0 Incomplete, 1 Pending, 2 Shipped, 3 Partially
// Shipped, 4 Refunded, 5 Cancelled, 6 Declined, 7 Awaiting Payment, 8
// Awaiting Pickup, 9 Awaiting Shipment, 10 Completed, 11 Awaiting
// Fulfillment, 12 Manual Verification Required, 13 Disputed, 14 Partially
// Refunded. Refund statuses map to nothing: store/order/refund/created
// reports each refund once.
func statusKinds(id string) []event.Kind {
	switch id {
	case "8", "9", "11", "3":
		return []event.Kind{event.KindOrderPaid}
	case "2", "10":
		return []event.Kind{event.KindOrderPaid, event.KindOrderFulfilled}
	case "5", "6":
		return []event.Kind{event.KindOrderCancelled}
	}
	return nil
}

// Hydrate completes thin events with f: an order event gets its Order (and
// Customer from the order), a cart event its Cart, a customer event its
// Customer; Thin becomes false for each event that was completed. Events
// about subscribers, and events that are not thin, are returned unchanged.
// A resource the store no longer has (an error wrapping
// storefront.ErrNotFound) leaves its event thin, to be applied with what the
// payload carries. Any other fetch error is returned, wrapped, with no
// events; the caller retries the whole delivery later. A nil f returns
// events as they are.
func Hydrate(ctx context.Context, f storefront.Fetcher, events []event.Event) ([]event.Event, error) {
	if f == nil {
		return events, nil
	}
	out := make([]event.Event, len(events))
	copy(out, events)
	for i := range out {
		e := &out[i]
		if !e.Thin || e.Ref == nil || e.Ref.ID == "" {
			continue
		}
		switch e.Ref.Type {
		case event.ResourceOrder:
			o, err := f.FetchOrder(ctx, e.Ref.ID)
			if err != nil {
				if errors.Is(err, storefront.ErrNotFound) {
					continue
				}
				return nil, fmt.Errorf("fetch bigcommerce order %s: %w", e.Ref.ID, err)
			}
			e.Order, e.Customer = o, o.Customer
			stamp(&o.PaidAt, e.Kind == event.KindOrderPaid, e.OccurredAt)
			stamp(&o.FulfilledAt, e.Kind == event.KindOrderFulfilled, e.OccurredAt)
			stamp(&o.CancelledAt, e.Kind == event.KindOrderCancelled, e.OccurredAt)
			stamp(&o.RefundedAt, e.Kind == event.KindOrderRefunded, e.OccurredAt)
		case event.ResourceCart:
			c, err := f.FetchCart(ctx, e.Ref.ID)
			if err != nil {
				if errors.Is(err, storefront.ErrNotFound) {
					continue
				}
				return nil, fmt.Errorf("fetch bigcommerce cart %s: %w", e.Ref.ID, err)
			}
			switch e.Kind {
			case event.KindCartAbandoned:
				c.Status = event.CartAbandoned
			case event.KindCartConverted:
				c.Status = event.CartConverted
				if c.OrderID == "" {
					c.OrderID = e.Ref.OrderID
				}
			}
			e.Cart, e.Customer = c, c.Customer
		case event.ResourceCustomer:
			if e.Kind == event.KindCustomerDeleted {
				// The customer is gone from the store; the id is all there is.
				e.Customer = &event.Customer{ID: e.Ref.ID}
				e.Thin = false
				continue
			}
			c, err := f.FetchCustomer(ctx, e.Ref.ID)
			if err != nil {
				if errors.Is(err, storefront.ErrNotFound) {
					continue
				}
				return nil, fmt.Errorf("fetch bigcommerce customer %s: %w", e.Ref.ID, err)
			}
			e.Customer = c
		default:
			continue
		}
		e.Thin = false
	}
	return out, nil
}

// stamp sets *t to at when cond holds and *t is unset.
func stamp(t *time.Time, cond bool, at time.Time) {
	if cond && t.IsZero() {
		*t = at
	}
}
