package standard

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/storefront"
)

// The data shapes of the documented event types (see schema/).

type money struct {
	Amount   *string `json:"amount"`
	Currency *string `json:"currency"`
}

type consent struct {
	State     string `json:"state"`
	UpdatedAt string `json:"updatedAt"`
}

type customer struct {
	ID           string   `json:"id"`
	Email        string   `json:"email"`
	Phone        string   `json:"phone"`
	FirstName    string   `json:"firstName"`
	LastName     string   `json:"lastName"`
	Locale       string   `json:"locale"`
	EmailConsent *consent `json:"emailConsent"`
	CreatedAt    string   `json:"createdAt"`
	UpdatedAt    string   `json:"updatedAt"`
}

type line struct {
	ProductID string `json:"productId"`
	VariantID string `json:"variantId"`
	SKU       string `json:"sku"`
	Title     string `json:"title"`
	Quantity  int64  `json:"quantity"`
	UnitPrice *money `json:"unitPrice"`
}

type order struct {
	ID            string           `json:"id"`
	Number        string           `json:"number"`
	Status        string           `json:"status"`
	Total         *money           `json:"total"`
	Refunded      *money           `json:"refunded"`
	Lines         []line           `json:"lines"`
	CartToken     string           `json:"cartToken"`
	CheckoutToken string           `json:"checkoutToken"`
	Email         string           `json:"email"`
	Customer      *customer        `json:"customer"`
	PlacedAt      string           `json:"placedAt"`
	PaidAt        string           `json:"paidAt"`
	FulfilledAt   string           `json:"fulfilledAt"`
	RefundedAt    string           `json:"refundedAt"`
	CancelledAt   string           `json:"cancelledAt"`
	UpdatedAt     string           `json:"updatedAt"`
	Metadata      storefront.Attrs `json:"metadata"`
}

type cart struct {
	Token       string    `json:"token"`
	ID          string    `json:"id"`
	Email       string    `json:"email"`
	Customer    *customer `json:"customer"`
	Lines       []line    `json:"lines"`
	Total       *money    `json:"total"`
	RecoveryURL string    `json:"recoveryUrl"`
	OrderID     string    `json:"orderId"`
	CreatedAt   string    `json:"createdAt"`
	UpdatedAt   string    `json:"updatedAt"`
}

type subscriber struct {
	Email      string `json:"email"`
	CustomerID string `json:"customerId"`
	FirstName  string `json:"firstName"`
	LastName   string `json:"lastName"`
	Locale     string `json:"locale"`
	UpdatedAt  string `json:"updatedAt"`
}

// Parse turns a Standard Webhooks body into one normalised event. topic is
// the Delivery's topic; it must equal the body's type. Unknown types are
// storefront.ErrUnknownTopic; a missing required field is a
// *storefront.ParseError naming it ("data.total.amount"). OccurredAt is
// data.updatedAt when given, else the envelope's timestamp.
func Parse(topic string, body []byte) ([]event.Event, error) {
	kind := event.Kind(strings.TrimSpace(topic))
	req := required(kind)
	if req == nil {
		return nil, fmt.Errorf("parse standard %q: %w", topic, storefront.ErrUnknownTopic)
	}
	events, err := parse(kind, req, body)
	if err != nil {
		return nil, fmt.Errorf("parse standard %s: %w", kind, err)
	}
	return events, nil
}

func parse(kind event.Kind, req []string, body []byte) ([]event.Event, error) {
	var env struct {
		Type      string          `json:"type"`
		Timestamp string          `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	if err := storefront.DecodeJSON(body, &env); err != nil {
		return nil, err
	}
	if env.Type != string(kind) {
		return nil, &storefront.ParseError{Field: "type", Err: fmt.Errorf("%q does not match the topic %q", env.Type, kind)}
	}
	if strings.TrimSpace(env.Timestamp) == "" {
		return nil, &storefront.ParseError{Field: "timestamp", Err: errors.New("missing")}
	}
	stamp, err := storefront.OptionalTime("timestamp", env.Timestamp)
	if err != nil {
		return nil, err
	}
	var present map[string]json.RawMessage
	if err := json.Unmarshal(env.Data, &present); err != nil || present == nil {
		return nil, &storefront.ParseError{Field: "data", Err: errors.New("missing or not an object")}
	}
	for _, f := range req {
		if v, ok := present[f]; !ok || string(v) == "null" || string(v) == `""` {
			return nil, &storefront.ParseError{Field: "data." + f, Err: errors.New("required")}
		}
	}
	e := event.Event{Kind: kind, Source: event.SourceStandard, Topic: string(kind)}
	switch strings.SplitN(string(kind), ".", 2)[0] {
	case "order":
		var p order
		if err := decodeData(env.Data, &p); err != nil {
			return nil, err
		}
		if e.Order, err = convertOrder(&p); err != nil {
			return nil, storefront.FieldError("data", err)
		}
		e.Order.RefundIncrement = kind == event.KindOrderRefunded
		e.Customer = e.Order.Customer
		e.OccurredAt = e.Order.UpdatedAt
		e.Ref = &event.ResourceRef{Type: event.ResourceOrder, ID: e.Order.ID}
	case "cart":
		var p cart
		if err := decodeData(env.Data, &p); err != nil {
			return nil, err
		}
		if e.Cart, err = convertCart(kind, &p); err != nil {
			return nil, storefront.FieldError("data", err)
		}
		e.Customer = e.Cart.Customer
		e.OccurredAt = e.Cart.UpdatedAt
		e.Ref = &event.ResourceRef{Type: event.ResourceCart, ID: e.Cart.Token, OrderID: e.Cart.OrderID}
	case "customer":
		var p customer
		if err := decodeData(env.Data, &p); err != nil {
			return nil, err
		}
		if e.Customer, err = convertCustomer(&p); err != nil {
			return nil, storefront.FieldError("data", err)
		}
		e.OccurredAt = e.Customer.UpdatedAt
		e.Ref = &event.ResourceRef{Type: event.ResourceCustomer, ID: e.Customer.ID}
	case "newsletter":
		var p subscriber
		if err := decodeData(env.Data, &p); err != nil {
			return nil, err
		}
		at, err := storefront.OptionalTime("data.updatedAt", p.UpdatedAt)
		if err != nil {
			return nil, err
		}
		state := event.ConsentSubscribed
		if kind == event.KindNewsletterUnsubscribed {
			state = event.ConsentUnsubscribed
		}
		e.Customer = &event.Customer{
			ID: p.CustomerID, Email: p.Email, FirstName: p.FirstName, LastName: p.LastName, Locale: p.Locale,
			EmailConsent: &event.Consent{State: state, UpdatedAt: storefront.Latest(at, stamp)},
		}
		e.OccurredAt = at
		if p.CustomerID != "" {
			e.Ref = &event.ResourceRef{Type: event.ResourceCustomer, ID: p.CustomerID}
		}
	}
	if e.OccurredAt.IsZero() {
		e.OccurredAt = stamp
	}
	return []event.Event{e}, nil
}

func decodeData(raw json.RawMessage, v any) error {
	return storefront.FieldError("data", storefront.DecodeJSON(raw, v))
}

func convertMoney(field string, m *money) (event.Money, error) {
	if m == nil {
		return event.Money{}, nil
	}
	if m.Amount == nil || *m.Amount == "" {
		return event.Money{}, &storefront.ParseError{Field: field + ".amount", Err: errors.New("required")}
	}
	if m.Currency == nil || len(*m.Currency) != 3 {
		return event.Money{}, &storefront.ParseError{Field: field + ".currency", Err: errors.New("required, an ISO 4217 code")}
	}
	out, err := event.ParseMoney(*m.Amount, *m.Currency)
	if err != nil {
		return event.Money{}, &storefront.ParseError{Field: field + ".amount", Err: err}
	}
	return out, nil
}

func convertLines(lines []line) ([]event.LineItem, error) {
	var out []event.LineItem
	for i, l := range lines {
		f := fmt.Sprintf("lines.%d", i)
		if l.UnitPrice == nil {
			return nil, &storefront.ParseError{Field: f + ".unitPrice", Err: errors.New("required")}
		}
		if l.Quantity < 0 {
			return nil, &storefront.ParseError{Field: f + ".quantity", Err: errors.New("negative")}
		}
		price, err := convertMoney(f+".unitPrice", l.UnitPrice)
		if err != nil {
			return nil, err
		}
		out = append(out, event.LineItem{ProductID: l.ProductID, VariantID: l.VariantID, SKU: l.SKU, Title: l.Title, Quantity: l.Quantity, UnitPrice: price})
	}
	return out, nil
}

func convertOrder(p *order) (*event.Order, error) {
	o := &event.Order{ID: p.ID, Number: p.Number, Status: p.Status, CartToken: p.CartToken, CheckoutToken: p.CheckoutToken, Email: p.Email, Attributes: p.Metadata}
	var err error
	if o.Total, err = convertMoney("total", p.Total); err != nil {
		return nil, err
	}
	if o.Refunded, err = convertMoney("refunded", p.Refunded); err != nil {
		return nil, err
	}
	if o.Items, err = convertLines(p.Lines); err != nil {
		return nil, err
	}
	for _, t := range []struct {
		field, s string
		dst      *time.Time
	}{
		{"placedAt", p.PlacedAt, &o.PlacedAt}, {"paidAt", p.PaidAt, &o.PaidAt}, {"fulfilledAt", p.FulfilledAt, &o.FulfilledAt},
		{"refundedAt", p.RefundedAt, &o.RefundedAt}, {"cancelledAt", p.CancelledAt, &o.CancelledAt}, {"updatedAt", p.UpdatedAt, &o.UpdatedAt},
	} {
		if *t.dst, err = storefront.OptionalTime(t.field, t.s); err != nil {
			return nil, err
		}
	}
	if p.Customer != nil {
		if o.Customer, err = convertCustomer(p.Customer); err != nil {
			return nil, storefront.FieldError("customer", err)
		}
	}
	return o, nil
}

func convertCart(kind event.Kind, p *cart) (*event.Cart, error) {
	c := &event.Cart{Token: p.Token, ID: p.ID, Email: p.Email, RecoveryURL: p.RecoveryURL, OrderID: p.OrderID, Status: event.CartOpen}
	switch kind {
	case event.KindCartAbandoned:
		c.Status = event.CartAbandoned
	case event.KindCartConverted:
		c.Status = event.CartConverted
	}
	var err error
	if c.Items, err = convertLines(p.Lines); err != nil {
		return nil, err
	}
	if c.Total, err = convertMoney("total", p.Total); err != nil {
		return nil, err
	}
	if p.Total == nil {
		for _, it := range c.Items {
			v, err := event.MulMinor(it.UnitPrice.Minor, it.Quantity)
			if err == nil {
				c.Total.Minor, err = event.AddMinor(c.Total.Minor, v)
			}
			if err != nil {
				return nil, &storefront.ParseError{Field: "lines", Err: err}
			}
			c.Total.Currency = it.UnitPrice.Currency
		}
	}
	if c.CreatedAt, err = storefront.OptionalTime("createdAt", p.CreatedAt); err != nil {
		return nil, err
	}
	if c.UpdatedAt, err = storefront.OptionalTime("updatedAt", p.UpdatedAt); err != nil {
		return nil, err
	}
	if p.Customer != nil {
		if c.Customer, err = convertCustomer(p.Customer); err != nil {
			return nil, storefront.FieldError("customer", err)
		}
	}
	return c, nil
}

func convertCustomer(p *customer) (*event.Customer, error) {
	c := &event.Customer{ID: p.ID, Email: p.Email, Phone: p.Phone, FirstName: p.FirstName, LastName: p.LastName, Locale: p.Locale}
	var err error
	if c.CreatedAt, err = storefront.OptionalTime("createdAt", p.CreatedAt); err != nil {
		return nil, err
	}
	if c.UpdatedAt, err = storefront.OptionalTime("updatedAt", p.UpdatedAt); err != nil {
		return nil, err
	}
	if p.EmailConsent != nil {
		state := event.ConsentState(p.EmailConsent.State)
		switch state {
		case event.ConsentSubscribed, event.ConsentPending, event.ConsentNotSubscribed, event.ConsentUnsubscribed:
		default:
			return nil, &storefront.ParseError{Field: "emailConsent.state", Err: fmt.Errorf("unknown state %q", p.EmailConsent.State)}
		}
		at, err := storefront.OptionalTime("emailConsent.updatedAt", p.EmailConsent.UpdatedAt)
		if err != nil {
			return nil, err
		}
		c.EmailConsent = &event.Consent{State: state, PlatformState: p.EmailConsent.State, UpdatedAt: at}
	}
	return c, nil
}
