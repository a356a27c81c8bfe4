package saleor

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/storefront"
)

// The JSON shapes Saleor subscription queries typically select. Every field
// is optional: a subscription selects what it wants, and the fixtures select
// little more than ids.

type money struct {
	Amount   storefront.Text `json:"amount"`
	Currency string          `json:"currency"`
}

type taxedMoney struct {
	Gross *money `json:"gross"`
}

type user struct {
	ID           string `json:"id"`
	Email        string `json:"email"`
	FirstName    string `json:"firstName"`
	LastName     string `json:"lastName"`
	LanguageCode string `json:"languageCode"`
	DateJoined   string `json:"dateJoined"`
	UpdatedAt    string `json:"updatedAt"`
}

type line struct {
	ProductName string          `json:"productName"`
	VariantName string          `json:"variantName"`
	ProductSKU  string          `json:"productSku"`
	Quantity    storefront.Text `json:"quantity"`
	UnitPrice   *taxedMoney     `json:"unitPrice"`
	Variant     *struct {
		ID      string `json:"id"`
		SKU     string `json:"sku"`
		Product *struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"product"`
	} `json:"variant"`
}

type order struct {
	ID            string          `json:"id"`
	Number        storefront.Text `json:"number"`
	Status        string          `json:"status"`
	UserEmail     string          `json:"userEmail"`
	User          *user           `json:"user"`
	Total         *taxedMoney     `json:"total"`
	TotalRefunded *money          `json:"totalRefunded"`
	Lines         []line          `json:"lines"`
	CheckoutID    string          `json:"checkoutId"`
	LanguageCode  string          `json:"languageCode"`
	Created       string          `json:"created"`
	UpdatedAt     string          `json:"updatedAt"`
	Fulfillments  []struct {
		Created string `json:"created"`
	} `json:"fulfillments"`
	Metadata storefront.Attrs `json:"metadata"`
}

type checkout struct {
	ID           string      `json:"id"`
	Token        string      `json:"token"`
	Email        string      `json:"email"`
	User         *user       `json:"user"`
	Lines        []line      `json:"lines"`
	TotalPrice   *taxedMoney `json:"totalPrice"`
	LanguageCode string      `json:"languageCode"`
	Created      string      `json:"created"`
	UpdatedAt    string      `json:"updatedAt"`
	LastChange   string      `json:"lastChange"`
}

// payload is the Saleor event object: the subscription result, in either
// delivery shape (see decodeEvent).
type payload struct {
	IssuedAt string    `json:"issuedAt"`
	Order    *order    `json:"order"`
	Checkout *checkout `json:"checkout"`
	User     *user     `json:"user"`
}

// object returns the id and updated time of the event's object, if any.
func (e *payload) object() (id, updated string) {
	switch {
	case e.Order != nil:
		return e.Order.ID, e.Order.UpdatedAt
	case e.Checkout != nil:
		return e.Checkout.ID, firstNonEmpty(e.Checkout.UpdatedAt, e.Checkout.LastChange)
	case e.User != nil:
		return e.User.ID, e.User.UpdatedAt
	}
	return "", ""
}

// Parse turns a Saleor webhook body for the given event (the Saleor-Event
// header, in any case) into normalised events; see the package documentation
// for the mapping. It does no I/O and never panics.
func Parse(topic string, body []byte) ([]event.Event, error) {
	name := strings.ToLower(strings.TrimSpace(topic))
	var kind event.Kind
	switch name {
	case "order_created":
		kind = event.KindOrderCreated
	case "order_fully_paid":
		kind = event.KindOrderPaid
	case "order_fulfilled":
		kind = event.KindOrderFulfilled
	case "order_refunded", "order_fully_refunded":
		kind = event.KindOrderRefunded
	case "order_cancelled":
		kind = event.KindOrderCancelled
	case "checkout_created", "checkout_updated":
		kind = event.KindCartUpdated
	case "customer_created":
		kind = event.KindCustomerCreated
	case "customer_updated":
		kind = event.KindCustomerUpdated
	case "customer_deleted":
		kind = event.KindCustomerDeleted
	default:
		return nil, fmt.Errorf("parse saleor %q: %w", topic, storefront.ErrUnknownTopic)
	}
	ev, err := decodeEvent(body)
	if err != nil {
		return nil, fmt.Errorf("parse saleor %s: %w", name, err)
	}
	issued, err := storefront.OptionalTime("issuedAt", ev.IssuedAt)
	if err != nil {
		return nil, fmt.Errorf("parse saleor %s: %w", name, err)
	}
	out := event.Event{Kind: kind, Source: event.SourceSaleor, Topic: topic}
	switch kind {
	case event.KindCartUpdated:
		err = parseCheckout(&out, ev.Checkout, issued)
	case event.KindCustomerCreated, event.KindCustomerUpdated, event.KindCustomerDeleted:
		err = parseCustomerEvent(&out, ev.User, issued)
	default:
		err = parseOrder(&out, ev.Order, issued)
	}
	if err != nil {
		return nil, fmt.Errorf("parse saleor %s: %w", name, err)
	}
	return []event.Event{out}, nil
}

func parseOrder(out *event.Event, p *order, issued time.Time) error {
	if p == nil || p.ID == "" {
		return &storefront.ParseError{Field: "order.id", Err: fmt.Errorf("missing")}
	}
	o := &event.Order{
		ID:            p.ID,
		Number:        string(p.Number),
		Status:        p.Status,
		Email:         p.UserEmail,
		CheckoutToken: checkoutToken(p.CheckoutID),
		Attributes:    p.Metadata,
	}
	var err error
	if o.Total, err = taxed("order.total", p.Total, ""); err != nil {
		return err
	}
	if o.Items, err = lines("order.lines", p.Lines, o.Total.Currency); err != nil {
		return err
	}
	if p.TotalRefunded != nil && p.TotalRefunded.Amount != "" {
		if o.Refunded, err = event.ParseMoney(string(p.TotalRefunded.Amount), firstNonEmpty(p.TotalRefunded.Currency, o.Total.Currency)); err != nil {
			return &storefront.ParseError{Field: "order.totalRefunded.amount", Err: err}
		}
	}
	if o.PlacedAt, err = storefront.OptionalTime("order.created", p.Created); err != nil {
		return err
	}
	if o.UpdatedAt, err = storefront.OptionalTime("order.updatedAt", p.UpdatedAt); err != nil {
		return err
	}
	for i, f := range p.Fulfillments {
		t, err := storefront.OptionalTime(fmt.Sprintf("order.fulfillments.%d.created", i), f.Created)
		if err != nil {
			return err
		}
		o.FulfilledAt = storefront.Latest(o.FulfilledAt, t)
	}
	// The event's own time is when the transition happened; the object's
	// updatedAt is newer or equal, so prefer it for ordering.
	when := storefront.Latest(o.UpdatedAt, issued)
	switch out.Kind {
	case event.KindOrderPaid:
		o.PaidAt = when
	case event.KindOrderFulfilled:
		if o.FulfilledAt.IsZero() {
			o.FulfilledAt = when
		}
	case event.KindOrderRefunded:
		o.RefundedAt = when
	case event.KindOrderCancelled:
		o.CancelledAt = when
	}
	if p.User != nil && (p.User.ID != "" || p.User.Email != "") {
		if o.Customer, err = customer("order.user", p.User); err != nil {
			return err
		}
	} else if p.UserEmail != "" {
		o.Customer = &event.Customer{Email: p.UserEmail}
	}
	if o.Customer != nil && o.Customer.Locale == "" {
		o.Customer.Locale = locale(p.LanguageCode)
	}
	out.Order = o
	out.Customer = o.Customer
	out.OccurredAt = storefront.Latest(o.UpdatedAt, issued)
	out.Ref = &event.ResourceRef{Type: event.ResourceOrder, ID: o.ID}
	return nil
}

func parseCheckout(out *event.Event, p *checkout, issued time.Time) error {
	if p == nil || (p.ID == "" && p.Token == "") {
		return &storefront.ParseError{Field: "checkout.id", Err: fmt.Errorf("missing")}
	}
	c := &event.Cart{
		Token:  p.Token,
		ID:     p.ID,
		Email:  p.Email,
		Status: event.CartOpen,
	}
	if c.Token == "" {
		c.Token = checkoutToken(p.ID)
	}
	var err error
	if c.Items, err = lines("checkout.lines", p.Lines, ""); err != nil {
		return err
	}
	currency := ""
	if len(c.Items) > 0 {
		currency = c.Items[0].UnitPrice.Currency
	}
	if c.Total, err = taxed("checkout.totalPrice", p.TotalPrice, currency); err != nil {
		return err
	}
	if p.TotalPrice == nil || p.TotalPrice.Gross == nil {
		if c.Total, err = sum(c.Items, c.Total.Currency); err != nil {
			return &storefront.ParseError{Field: "checkout.lines", Err: err}
		}
	}
	if c.CreatedAt, err = storefront.OptionalTime("checkout.created", p.Created); err != nil {
		return err
	}
	updated, err := storefront.OptionalTime("checkout.updatedAt", p.UpdatedAt)
	if err != nil {
		return err
	}
	last, err := storefront.OptionalTime("checkout.lastChange", p.LastChange)
	if err != nil {
		return err
	}
	c.UpdatedAt = storefront.Latest(updated, last)
	if p.User != nil && (p.User.ID != "" || p.User.Email != "") {
		if c.Customer, err = customer("checkout.user", p.User); err != nil {
			return err
		}
		if c.Customer.Locale == "" {
			c.Customer.Locale = locale(p.LanguageCode)
		}
	}
	out.Cart = c
	out.Customer = c.Customer
	out.OccurredAt = storefront.Latest(c.UpdatedAt, issued)
	out.Ref = &event.ResourceRef{Type: event.ResourceCart, ID: firstNonEmpty(c.ID, c.Token)}
	return nil
}

func parseCustomerEvent(out *event.Event, p *user, issued time.Time) error {
	if p == nil || p.ID == "" {
		return &storefront.ParseError{Field: "user.id", Err: fmt.Errorf("missing")}
	}
	c, err := customer("user", p)
	if err != nil {
		return err
	}
	out.Customer = c
	out.OccurredAt = storefront.Latest(c.UpdatedAt, issued)
	out.Ref = &event.ResourceRef{Type: event.ResourceCustomer, ID: c.ID}
	return nil
}

func customer(field string, p *user) (*event.Customer, error) {
	c := &event.Customer{
		ID:        p.ID,
		Email:     p.Email,
		FirstName: p.FirstName,
		LastName:  p.LastName,
		Locale:    locale(p.LanguageCode),
	}
	var err error
	if c.CreatedAt, err = storefront.OptionalTime(field+".dateJoined", p.DateJoined); err != nil {
		return nil, err
	}
	if c.UpdatedAt, err = storefront.OptionalTime(field+".updatedAt", p.UpdatedAt); err != nil {
		return nil, err
	}
	return c, nil
}

// locale turns Saleor's LanguageCodeEnum ("EN", "EN_US", "PT_BR") into a BCP
// 47 tag ("en", "en-US", "pt-BR").
func locale(code string) string {
	code = strings.TrimSpace(code)
	if code == "" {
		return ""
	}
	lang, region, ok := strings.Cut(code, "_")
	if !ok {
		return strings.ToLower(lang)
	}
	return strings.ToLower(lang) + "-" + region
}

// checkoutToken returns the token inside a Saleor checkout global ID
// (base64 of "Checkout:<token>"), or id unchanged when it is not one.
func checkoutToken(id string) string {
	if id == "" {
		return ""
	}
	raw, err := base64.StdEncoding.DecodeString(id)
	if err != nil {
		raw, err = base64.RawStdEncoding.DecodeString(id)
	}
	if err == nil {
		if token, ok := strings.CutPrefix(string(raw), "Checkout:"); ok && token != "" {
			return token
		}
	}
	return id
}

func taxed(field string, m *taxedMoney, currency string) (event.Money, error) {
	if m == nil || m.Gross == nil || m.Gross.Amount == "" {
		return event.Money{Currency: strings.ToUpper(firstNonEmpty(currencyOf(m), currency))}, nil
	}
	out, err := event.ParseMoney(string(m.Gross.Amount), firstNonEmpty(m.Gross.Currency, currency))
	if err != nil {
		return event.Money{}, &storefront.ParseError{Field: field + ".gross.amount", Err: err}
	}
	return out, nil
}

func currencyOf(m *taxedMoney) string {
	if m == nil || m.Gross == nil {
		return ""
	}
	return m.Gross.Currency
}

func lines(field string, ls []line, currency string) ([]event.LineItem, error) {
	if len(ls) == 0 {
		return nil, nil
	}
	out := make([]event.LineItem, 0, len(ls))
	for i, l := range ls {
		f := fmt.Sprintf("%s.%d", field, i)
		item := event.LineItem{Title: l.ProductName, SKU: l.ProductSKU}
		if l.Variant != nil {
			item.VariantID = l.Variant.ID
			item.SKU = firstNonEmpty(item.SKU, l.Variant.SKU)
			if l.Variant.Product != nil {
				item.ProductID = l.Variant.Product.ID
				item.Title = firstNonEmpty(item.Title, l.Variant.Product.Name)
			}
		}
		if l.Quantity != "" {
			q, err := strconv.ParseInt(string(l.Quantity), 10, 64)
			if err != nil {
				return nil, &storefront.ParseError{Field: f + ".quantity", Err: err}
			}
			item.Quantity = q
		}
		var err error
		if item.UnitPrice, err = taxed(f+".unitPrice", l.UnitPrice, currency); err != nil {
			return nil, err
		}
		out = append(out, item)
	}
	return out, nil
}

func sum(items []event.LineItem, currency string) (event.Money, error) {
	total := event.Money{Currency: currency}
	for _, it := range items {
		v, err := event.MulMinor(it.UnitPrice.Minor, it.Quantity)
		if err != nil {
			return event.Money{}, err
		}
		if total.Minor, err = event.AddMinor(total.Minor, v); err != nil {
			return event.Money{}, err
		}
	}
	return total, nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}
