package woocommerce

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/storefront"
)

// The JSON shapes of the WooCommerce REST API v3 resources, reduced to what
// Refrain reads. Woo's non-GMT dates are in the site's time zone, unknown
// here, so only the *_gmt fields are read.

type address struct {
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Email     string `json:"email"`
	Phone     string `json:"phone"`
}

type order struct {
	ID               storefront.Text `json:"id"`
	Number           string          `json:"number"`
	Status           string          `json:"status"`
	Currency         string          `json:"currency"`
	Total            storefront.Text `json:"total"`
	CustomerID       storefront.Text `json:"customer_id"`
	Billing          *address        `json:"billing"`
	CartHash         string          `json:"cart_hash"`
	DateCreatedGMT   string          `json:"date_created_gmt"`
	DateModifiedGMT  string          `json:"date_modified_gmt"`
	DatePaidGMT      string          `json:"date_paid_gmt"`
	DateCompletedGMT string          `json:"date_completed_gmt"`
	LineItems        []struct {
		Name        string          `json:"name"`
		ProductID   storefront.Text `json:"product_id"`
		VariationID storefront.Text `json:"variation_id"`
		Quantity    storefront.Text `json:"quantity"`
		SKU         string          `json:"sku"`
		Price       storefront.Text `json:"price"`
	} `json:"line_items"`
	Refunds []struct {
		Total storefront.Text `json:"total"`
	} `json:"refunds"`
	MetaData storefront.Attrs `json:"meta_data"`
}

type customer struct {
	ID              storefront.Text `json:"id"`
	Email           string          `json:"email"`
	FirstName       string          `json:"first_name"`
	LastName        string          `json:"last_name"`
	Billing         *address        `json:"billing"`
	DateCreatedGMT  string          `json:"date_created_gmt"`
	DateModifiedGMT string          `json:"date_modified_gmt"`
}

// Parse turns a WooCommerce webhook body of the given topic into normalised
// events; see the package documentation for the mapping. A known topic
// without a normalised meaning (order.deleted, an order in a pending status)
// returns no events and no error. It does no I/O and never panics.
func Parse(topic string, body []byte) ([]event.Event, error) {
	topic = strings.TrimSpace(topic)
	var (
		events []event.Event
		err    error
	)
	switch topic {
	case "order.created":
		events, err = parseOrder(body, true)
	case "order.updated", "order.restored":
		events, err = parseOrder(body, false)
	case "order.deleted":
		return nil, nil
	case "customer.created":
		events, err = parseCustomer(body, event.KindCustomerCreated)
	case "customer.updated":
		events, err = parseCustomer(body, event.KindCustomerUpdated)
	case "customer.deleted":
		events, err = parseCustomer(body, event.KindCustomerDeleted)
	default:
		if hook, ok := strings.CutPrefix(topic, "action."); ok {
			events, err = parseAction(hook, body)
			break
		}
		return nil, fmt.Errorf("parse woocommerce %q: %w", topic, storefront.ErrUnknownTopic)
	}
	if err != nil {
		return nil, fmt.Errorf("parse woocommerce %s: %w", topic, err)
	}
	for i := range events {
		events[i].Source = event.SourceWooCommerce
		events[i].Topic = topic
	}
	return events, nil
}

// statusKinds maps a WooCommerce order status to the transitions it means.
func statusKinds(status string) []event.Kind {
	switch status {
	case "processing":
		return []event.Kind{event.KindOrderPaid}
	case "completed":
		return []event.Kind{event.KindOrderPaid, event.KindOrderFulfilled}
	case "refunded":
		return []event.Kind{event.KindOrderRefunded}
	case "cancelled":
		return []event.Kind{event.KindOrderCancelled}
	}
	return nil
}

func parseOrder(body []byte, created bool) ([]event.Event, error) {
	var p order
	if err := storefront.DecodeJSON(body, &p); err != nil {
		return nil, err
	}
	if p.ID == "" || p.ID == "0" {
		return nil, &storefront.ParseError{Field: "id", Err: errors.New("missing")}
	}
	o := &event.Order{ID: string(p.ID), Number: p.Number, Status: p.Status}
	for k, v := range p.MetaData {
		// Keys starting with "_" are WooCommerce's and plugins' private meta.
		if !strings.HasPrefix(k, "_") {
			if o.Attributes == nil {
				o.Attributes = map[string]string{}
			}
			o.Attributes[k] = v
		}
	}
	var err error
	if p.Total != "" {
		if o.Total, err = event.ParseMoney(string(p.Total), p.Currency); err != nil {
			return nil, &storefront.ParseError{Field: "total", Err: err}
		}
	} else {
		o.Total.Currency = strings.ToUpper(p.Currency)
	}
	for i, l := range p.LineItems {
		f := fmt.Sprintf("line_items.%d", i)
		item := event.LineItem{Title: l.Name, SKU: l.SKU, ProductID: nonZero(l.ProductID), VariantID: nonZero(l.VariationID)}
		if l.Quantity != "" {
			if item.Quantity, err = strconv.ParseInt(string(l.Quantity), 10, 64); err != nil {
				return nil, &storefront.ParseError{Field: f + ".quantity", Err: err}
			}
		}
		item.UnitPrice.Currency = o.Total.Currency
		if l.Price != "" {
			if item.UnitPrice, err = event.ParseMoney(string(l.Price), p.Currency); err != nil {
				return nil, &storefront.ParseError{Field: f + ".price", Err: err}
			}
		}
		o.Items = append(o.Items, item)
	}
	o.Refunded.Currency = o.Total.Currency
	for i, r := range p.Refunds {
		m, err := event.ParseMoney(strings.TrimPrefix(string(r.Total), "-"), p.Currency)
		if err != nil {
			return nil, &storefront.ParseError{Field: fmt.Sprintf("refunds.%d.total", i), Err: err}
		}
		if o.Refunded.Minor, err = event.AddMinor(o.Refunded.Minor, m.Minor); err != nil {
			return nil, &storefront.ParseError{Field: "refunds", Err: err}
		}
	}
	if o.Refunded.Minor == 0 {
		o.Refunded = event.Money{}
	}
	for _, t := range []struct {
		field string
		s     string
		dst   *time.Time
	}{
		{"date_created_gmt", p.DateCreatedGMT, &o.PlacedAt},
		{"date_modified_gmt", p.DateModifiedGMT, &o.UpdatedAt},
		{"date_paid_gmt", p.DatePaidGMT, &o.PaidAt},
		{"date_completed_gmt", p.DateCompletedGMT, &o.FulfilledAt},
	} {
		if *t.dst, err = storefront.OptionalTime(t.field, t.s); err != nil {
			return nil, err
		}
	}
	switch p.Status {
	case "refunded":
		o.RefundedAt = o.UpdatedAt
	case "cancelled":
		o.CancelledAt = o.UpdatedAt
	}
	if p.Billing != nil {
		o.Email = strings.TrimSpace(p.Billing.Email)
	}
	if id := nonZero(p.CustomerID); id != "" {
		// A registered customer: identified by id. The billing email is the
		// order's contact, not necessarily the account's email.
		o.Customer = &event.Customer{ID: id}
	} else if p.Billing != nil && o.Email != "" {
		// A guest: known only by the billing details.
		o.Customer = &event.Customer{Email: o.Email, FirstName: p.Billing.FirstName, LastName: p.Billing.LastName, Phone: p.Billing.Phone}
	}
	var kinds []event.Kind
	if created {
		kinds = append(kinds, event.KindOrderCreated)
	}
	kinds = append(kinds, statusKinds(p.Status)...)
	events := make([]event.Event, 0, len(kinds))
	for _, k := range kinds {
		events = append(events, event.Event{
			Kind:       k,
			OccurredAt: storefront.Latest(o.UpdatedAt, o.PlacedAt),
			Customer:   o.Customer,
			Order:      o,
			Ref:        &event.ResourceRef{Type: event.ResourceOrder, ID: o.ID},
		})
	}
	return events, nil
}

func parseCustomer(body []byte, kind event.Kind) ([]event.Event, error) {
	var p customer
	if err := storefront.DecodeJSON(body, &p); err != nil {
		return nil, err
	}
	id := nonZero(p.ID)
	if id == "" {
		return nil, &storefront.ParseError{Field: "id", Err: errors.New("missing")}
	}
	c := &event.Customer{ID: id, Email: p.Email, FirstName: p.FirstName, LastName: p.LastName}
	if p.Billing != nil {
		c.Phone = p.Billing.Phone
		if c.FirstName == "" && c.LastName == "" {
			c.FirstName, c.LastName = p.Billing.FirstName, p.Billing.LastName
		}
	}
	var err error
	if c.CreatedAt, err = storefront.OptionalTime("date_created_gmt", p.DateCreatedGMT); err != nil {
		return nil, err
	}
	if c.UpdatedAt, err = storefront.OptionalTime("date_modified_gmt", p.DateModifiedGMT); err != nil {
		return nil, err
	}
	return []event.Event{{
		Kind:       kind,
		OccurredAt: storefront.Latest(c.UpdatedAt, c.CreatedAt),
		Customer:   c,
		Ref:        &event.ResourceRef{Type: event.ResourceCustomer, ID: id},
	}}, nil
}

// parseAction handles "action.<hook>" topics, whose body is
// {"action": hook, "arg": first argument}.
func parseAction(hook string, body []byte) ([]event.Event, error) {
	var kind event.Kind
	switch hook {
	case "woocommerce_add_to_cart", "woocommerce_cart_item_removed", "woocommerce_cart_item_restored",
		"woocommerce_after_cart_item_quantity_update", "woocommerce_cart_item_set_quantity",
		"woocommerce_cart_updated", "woocommerce_cart_emptied":
		kind = event.KindCartUpdated
	case "woocommerce_checkout_order_processed", "woocommerce_thankyou":
		kind = event.KindCartConverted
	case "woocommerce_payment_complete":
		kind = event.KindOrderPaid
	default:
		return nil, fmt.Errorf("action %q: %w", hook, storefront.ErrUnknownTopic)
	}
	var p struct {
		Action string          `json:"action"`
		Arg    json.RawMessage `json:"arg"`
	}
	if err := storefront.DecodeJSON(body, &p); err != nil {
		return nil, err
	}
	if p.Action != "" && p.Action != hook {
		return nil, &storefront.ParseError{Field: "action", Err: fmt.Errorf("%q does not match the topic's hook %q", p.Action, hook)}
	}
	// The argument may be anything; only a scalar is kept.
	var arg storefront.Text
	if len(p.Arg) > 0 {
		_ = json.Unmarshal(p.Arg, &arg)
	}
	e := event.Event{Kind: kind, Thin: true}
	switch kind {
	case event.KindCartUpdated:
		e.Ref = &event.ResourceRef{Type: event.ResourceCart, Token: string(arg)}
	case event.KindCartConverted:
		e.Ref = &event.ResourceRef{Type: event.ResourceCart, OrderID: string(arg)}
	case event.KindOrderPaid:
		if arg == "" {
			return nil, &storefront.ParseError{Field: "arg", Err: errors.New("missing order id")}
		}
		e.Ref = &event.ResourceRef{Type: event.ResourceOrder, ID: string(arg)}
	}
	return []event.Event{e}, nil
}

// nonZero returns the id as text, or "" for an absent or zero id (WooCommerce
// writes 0 for "none").
func nonZero(t storefront.Text) string {
	if s := strings.TrimSpace(string(t)); s != "0" {
		return s
	}
	return ""
}
