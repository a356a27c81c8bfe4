package shopify

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/storefront"
)

// Parse turns a Shopify webhook body of the given topic into normalised
// events (see the package documentation for the mapping). It does no I/O and
// never panics; a body that does not decode is a *storefront.ParseError and an
// unhandled topic is storefront.ErrUnknownTopic.
func Parse(topic string, body []byte) ([]event.Event, error) {
	topic = strings.TrimSpace(topic)
	var (
		events []event.Event
		err    error
	)
	switch topic {
	case "orders/create":
		events, err = parseOrder(body, event.KindOrderCreated)
	case "orders/paid":
		events, err = parseOrder(body, event.KindOrderPaid)
	case "orders/fulfilled":
		events, err = parseOrder(body, event.KindOrderFulfilled)
	case "orders/cancelled":
		events, err = parseOrder(body, event.KindOrderCancelled)
	case "refunds/create":
		events, err = parseRefund(body)
	case "checkouts/create", "checkouts/update":
		events, err = parseCheckout(body, true)
	case "carts/create", "carts/update":
		events, err = parseCheckout(body, false)
	case "customers/create":
		events, err = parseCustomer(body, event.KindCustomerCreated)
	case "customers/update":
		events, err = parseCustomer(body, event.KindCustomerUpdated)
	case "customers/delete":
		events, err = parseCustomer(body, event.KindCustomerDeleted)
	case "customers_email_marketing_consent/update":
		events, err = parseConsent(body)
	case "customers/redact":
		events, err = parsePrivacy(body, event.KindCustomerRedacted)
	case "customers/data_request":
		events, err = parsePrivacy(body, event.KindCustomerDataRequest)
	default:
		return nil, fmt.Errorf("parse shopify %q: %w", topic, storefront.ErrUnknownTopic)
	}
	if err != nil {
		return nil, fmt.Errorf("parse shopify %s: %w", topic, err)
	}
	for i := range events {
		events[i].Source = event.SourceShopify
		events[i].Topic = topic
	}
	return events, nil
}

// gid returns Shopify's GraphQL id for a numeric REST id, or "" for none.
func gid(kind string, id storefront.Text) string {
	if id == "" {
		return ""
	}
	return "gid://shopify/" + kind + "/" + string(id)
}

func parseOrder(body []byte, kind event.Kind) ([]event.Event, error) {
	var p order
	if err := storefront.DecodeJSON(body, &p); err != nil {
		return nil, err
	}
	o, err := convertOrder(&p)
	if err != nil {
		return nil, err
	}
	switch kind {
	case event.KindOrderPaid:
		// The paid payload has no paid time of its own: its updated_at is when
		// the order became paid.
		if o.PaidAt.IsZero() {
			o.PaidAt = o.UpdatedAt
		}
	case event.KindOrderFulfilled:
		if o.FulfilledAt.IsZero() {
			o.FulfilledAt = o.UpdatedAt
		}
	case event.KindOrderCancelled:
		if o.CancelledAt.IsZero() {
			o.CancelledAt = o.UpdatedAt
		}
	}
	return []event.Event{{
		Kind:       kind,
		OccurredAt: storefront.Latest(o.UpdatedAt, o.PlacedAt),
		Customer:   o.Customer,
		Order:      o,
		Ref:        &event.ResourceRef{Type: event.ResourceOrder, ID: o.ID},
	}}, nil
}

func convertOrder(p *order) (*event.Order, error) {
	o := &event.Order{
		ID:            p.AdminGraphQLAPIID,
		Number:        p.Name,
		Status:        p.FinancialStatus,
		CartToken:     p.CartToken,
		CheckoutToken: p.CheckoutToken,
		Email:         firstNonEmpty(p.ContactEmail, p.Email),
		Attributes:    p.NoteAttributes,
	}
	if o.ID == "" {
		o.ID = gid("Order", p.ID)
	}
	if o.Number == "" {
		o.Number = string(p.OrderNumber)
	}
	var err error
	if o.Total, err = pickMoney(p.Currency, "current_total_price", p.CurrentTotalPriceSet, p.CurrentTotalPrice,
		"total_price", p.TotalPriceSet, p.TotalPrice); err != nil {
		return nil, err
	}
	if o.Items, err = convertLines("line_items", p.LineItems, o.Total.Currency); err != nil {
		return nil, err
	}
	if o.PlacedAt, err = firstTime("processed_at", p.ProcessedAt, "created_at", p.CreatedAt); err != nil {
		return nil, err
	}
	if o.UpdatedAt, err = storefront.OptionalTime("updated_at", p.UpdatedAt); err != nil {
		return nil, err
	}
	if o.CancelledAt, err = storefront.OptionalTime("cancelled_at", p.CancelledAt); err != nil {
		return nil, err
	}
	for i, f := range p.Fulfillments {
		t, err := storefront.OptionalTime(fmt.Sprintf("fulfillments.%d.created_at", i), f.CreatedAt)
		if err != nil {
			return nil, err
		}
		o.FulfilledAt = storefront.Latest(o.FulfilledAt, t)
	}
	for i := range p.Refunds {
		r, at, err := convertRefund(&p.Refunds[i], o.Total.Currency)
		if err != nil {
			return nil, storefront.FieldError(fmt.Sprintf("refunds.%d", i), err)
		}
		if o.Refunded.Currency == "" {
			o.Refunded.Currency = r.Currency
		}
		if o.Refunded.Minor, err = event.AddMinor(o.Refunded.Minor, r.Minor); err != nil {
			return nil, &storefront.ParseError{Field: "refunds", Err: err}
		}
		o.RefundedAt = storefront.Latest(o.RefundedAt, at)
	}
	if p.Customer != nil {
		c, err := convertCustomer(p.Customer)
		if err != nil {
			return nil, storefront.FieldError("customer", err)
		}
		if c.Locale == "" {
			c.Locale = p.CustomerLocale
		}
		o.Customer = c
	}
	return o, nil
}

func parseRefund(body []byte) ([]event.Event, error) {
	var p refund
	if err := storefront.DecodeJSON(body, &p); err != nil {
		return nil, err
	}
	if p.OrderID == "" {
		return nil, &storefront.ParseError{Field: "order_id", Err: fmt.Errorf("missing")}
	}
	amount, at, err := convertRefund(&p, "")
	if err != nil {
		return nil, err
	}
	o := &event.Order{
		ID:              gid("Order", p.OrderID),
		Refunded:        amount,
		RefundIncrement: true,
		RefundedAt:      at,
	}
	refundID := p.AdminGraphQLAPIID
	if refundID == "" {
		refundID = gid("Refund", p.ID)
	}
	return []event.Event{{
		Kind:       event.KindOrderRefunded,
		OccurredAt: at,
		Order:      o,
		Ref:        &event.ResourceRef{Type: event.ResourceOrder, ID: o.ID, RefundID: refundID},
	}}, nil
}

// convertRefund returns the amount refunded (the successful refund
// transactions, else the refunded lines' subtotals) and the refund's time.
func convertRefund(p *refund, currency string) (event.Money, time.Time, error) {
	at, err := firstTime("processed_at", p.ProcessedAt, "created_at", p.CreatedAt)
	if err != nil {
		return event.Money{}, time.Time{}, err
	}
	total := event.Money{Currency: strings.ToUpper(currency)}
	seen := false
	for i, tx := range p.Transactions {
		if tx.Kind != "refund" || (tx.Status != "" && tx.Status != "success") {
			continue
		}
		m, err := event.ParseMoney(string(tx.Amount), firstNonEmpty(tx.Currency, currency))
		if err != nil {
			return event.Money{}, time.Time{}, &storefront.ParseError{Field: fmt.Sprintf("transactions.%d.amount", i), Err: err}
		}
		if total, err = addMoney(total, m); err != nil {
			return event.Money{}, time.Time{}, &storefront.ParseError{Field: "transactions", Err: err}
		}
		seen = true
	}
	if !seen {
		for i, l := range p.RefundLineItems {
			m, err := pickMoney(currency, fmt.Sprintf("refund_line_items.%d.subtotal", i), l.SubtotalSet, l.Subtotal, "", nil, "")
			if err != nil {
				return event.Money{}, time.Time{}, err
			}
			if total, err = addMoney(total, m); err != nil {
				return event.Money{}, time.Time{}, &storefront.ParseError{Field: "refund_line_items", Err: err}
			}
		}
	}
	return total, at, nil
}

func parseCheckout(body []byte, isCheckout bool) ([]event.Event, error) {
	var p checkout
	if err := storefront.DecodeJSON(body, &p); err != nil {
		return nil, err
	}
	c := &event.Cart{
		Token:       p.Token,
		Email:       p.Email,
		RecoveryURL: p.AbandonedCheckoutURL,
		Status:      event.CartOpen,
	}
	if isCheckout {
		c.CartToken = p.CartToken
	}
	if c.Token == "" {
		c.Token = string(p.ID)
	}
	if c.Token == "" {
		return nil, &storefront.ParseError{Field: "token", Err: fmt.Errorf("missing")}
	}
	var err error
	if c.Items, err = convertLines("line_items", p.LineItems, p.Currency); err != nil {
		return nil, err
	}
	if p.TotalPrice != "" {
		if c.Total, err = event.ParseMoney(string(p.TotalPrice), p.Currency); err != nil {
			return nil, &storefront.ParseError{Field: "total_price", Err: err}
		}
	} else if c.Total, err = sumLines(p.LineItems, p.Currency); err != nil {
		return nil, err
	}
	if c.CreatedAt, err = storefront.OptionalTime("created_at", p.CreatedAt); err != nil {
		return nil, err
	}
	if c.UpdatedAt, err = storefront.OptionalTime("updated_at", p.UpdatedAt); err != nil {
		return nil, err
	}
	completedAt, err := storefront.OptionalTime("completed_at", p.CompletedAt)
	if err != nil {
		return nil, err
	}
	if p.Customer != nil {
		if c.Customer, err = convertCustomer(p.Customer); err != nil {
			return nil, storefront.FieldError("customer", err)
		}
		if c.Customer.Locale == "" {
			c.Customer.Locale = p.CustomerLocale
		}
	}
	kind := event.KindCartUpdated
	if !completedAt.IsZero() {
		kind = event.KindCartConverted
		c.Status = event.CartConverted
		c.OrderID = gid("Order", p.OrderID)
	}
	return []event.Event{{
		Kind:       kind,
		OccurredAt: storefront.Latest(c.UpdatedAt, c.CreatedAt, completedAt),
		Customer:   c.Customer,
		Cart:       c,
		Ref:        &event.ResourceRef{Type: event.ResourceCart, ID: c.Token, OrderID: c.OrderID},
	}}, nil
}

func parseCustomer(body []byte, kind event.Kind) ([]event.Event, error) {
	var p customer
	if err := storefront.DecodeJSON(body, &p); err != nil {
		return nil, err
	}
	c, err := convertCustomer(&p)
	if err != nil {
		return nil, err
	}
	if c.ID == "" {
		return nil, &storefront.ParseError{Field: "id", Err: fmt.Errorf("missing")}
	}
	return []event.Event{{
		Kind:       kind,
		OccurredAt: storefront.Latest(c.UpdatedAt, c.CreatedAt),
		Customer:   c,
		Ref:        &event.ResourceRef{Type: event.ResourceCustomer, ID: c.ID},
	}}, nil
}

func convertCustomer(p *customer) (*event.Customer, error) {
	c := &event.Customer{
		ID:        p.AdminGraphQLAPIID,
		Email:     p.Email,
		Phone:     p.Phone,
		FirstName: p.FirstName,
		LastName:  p.LastName,
		Locale:    p.Locale,
	}
	if c.ID == "" {
		c.ID = gid("Customer", p.ID)
	}
	var err error
	if c.CreatedAt, err = storefront.OptionalTime("created_at", p.CreatedAt); err != nil {
		return nil, err
	}
	if c.UpdatedAt, err = storefront.OptionalTime("updated_at", p.UpdatedAt); err != nil {
		return nil, err
	}
	if p.EmailMarketingConsent != nil {
		if c.EmailConsent, err = convertConsent(p.EmailMarketingConsent); err != nil {
			return nil, storefront.FieldError("email_marketing_consent", err)
		}
	}
	return c, nil
}

func convertConsent(p *consent) (*event.Consent, error) {
	at, err := storefront.OptionalTime("consent_updated_at", p.ConsentUpdatedAt)
	if err != nil {
		return nil, err
	}
	return &event.Consent{
		State:         consentState(p.State),
		PlatformState: p.State,
		OptInLevel:    p.OptInLevel,
		UpdatedAt:     at,
	}, nil
}

// consentState maps Shopify's CustomerEmailMarketingState. "redacted" and
// "invalid" mean no usable consent: not_subscribed.
func consentState(s string) event.ConsentState {
	switch strings.ToLower(s) {
	case "subscribed":
		return event.ConsentSubscribed
	case "pending":
		return event.ConsentPending
	case "unsubscribed":
		return event.ConsentUnsubscribed
	case "not_subscribed", "redacted", "invalid":
		return event.ConsentNotSubscribed
	}
	return event.ConsentUnknown
}

func parseConsent(body []byte) ([]event.Event, error) {
	var p marketingConsentUpdate
	if err := storefront.DecodeJSON(body, &p); err != nil {
		return nil, err
	}
	if p.CustomerID == "" {
		return nil, &storefront.ParseError{Field: "customer_id", Err: fmt.Errorf("missing")}
	}
	if p.EmailMarketingConsent == nil {
		return nil, &storefront.ParseError{Field: "email_marketing_consent", Err: fmt.Errorf("missing")}
	}
	cons, err := convertConsent(p.EmailMarketingConsent)
	if err != nil {
		return nil, storefront.FieldError("email_marketing_consent", err)
	}
	c := &event.Customer{ID: gid("Customer", p.CustomerID), Email: p.EmailAddress, EmailConsent: cons}
	ref := &event.ResourceRef{Type: event.ResourceCustomer, ID: c.ID}
	events := []event.Event{{Kind: event.KindConsentUpdated, OccurredAt: cons.UpdatedAt, Customer: c, Ref: ref}}
	switch cons.State {
	case event.ConsentSubscribed:
		events = append(events, event.Event{Kind: event.KindNewsletterSubscribed, OccurredAt: cons.UpdatedAt, Customer: c, Ref: ref})
	case event.ConsentUnsubscribed:
		events = append(events, event.Event{Kind: event.KindNewsletterUnsubscribed, OccurredAt: cons.UpdatedAt, Customer: c, Ref: ref})
	}
	return events, nil
}

func parsePrivacy(body []byte, kind event.Kind) ([]event.Event, error) {
	var p privacyRequest
	if err := storefront.DecodeJSON(body, &p); err != nil {
		return nil, err
	}
	if p.Customer == nil || (p.Customer.ID == "" && p.Customer.Email == "") {
		return nil, &storefront.ParseError{Field: "customer", Err: fmt.Errorf("missing")}
	}
	c := &event.Customer{ID: gid("Customer", p.Customer.ID), Email: p.Customer.Email, Phone: p.Customer.Phone}
	req := &event.PrivacyRequest{ShopID: string(p.ShopID), ShopDomain: p.ShopDomain}
	if p.DataRequest != nil {
		req.RequestID = string(p.DataRequest.ID)
	}
	ids := p.OrdersToRedact
	if kind == event.KindCustomerDataRequest {
		ids = p.OrdersRequested
	}
	for _, id := range ids {
		if id != "" {
			req.OrderIDs = append(req.OrderIDs, gid("Order", id))
		}
	}
	return []event.Event{{
		Kind:     kind,
		Customer: c,
		Privacy:  req,
		Ref:      &event.ResourceRef{Type: event.ResourceCustomer, ID: c.ID},
	}}, nil
}

func convertLines(field string, lines []lineItem, currency string) ([]event.LineItem, error) {
	if len(lines) == 0 {
		return nil, nil
	}
	out := make([]event.LineItem, 0, len(lines))
	for i, l := range lines {
		f := fmt.Sprintf("%s.%d", field, i)
		qty, err := quantity(f+".quantity", l.Quantity)
		if err != nil {
			return nil, err
		}
		price, err := pickMoney(currency, f+".price", l.PriceSet, l.Price, "", nil, "")
		if err != nil {
			return nil, err
		}
		out = append(out, event.LineItem{
			ProductID: gid("Product", l.ProductID),
			VariantID: gid("ProductVariant", l.VariantID),
			SKU:       l.SKU,
			Title:     firstNonEmpty(l.Title, l.Name),
			Quantity:  qty,
			UnitPrice: price,
		})
	}
	return out, nil
}

// sumLines totals a cart that has no total: line_price when given, else
// price times quantity.
func sumLines(lines []lineItem, currency string) (event.Money, error) {
	total := event.Money{Currency: strings.ToUpper(currency)}
	for i, l := range lines {
		f := fmt.Sprintf("line_items.%d", i)
		m, err := pickMoney(currency, f+".line_price", l.LineSet, l.LinePrice, "", nil, "")
		if err != nil {
			return event.Money{}, err
		}
		if l.LineSet == nil && l.LinePrice == "" {
			unit, err := pickMoney(currency, f+".price", l.PriceSet, l.Price, "", nil, "")
			if err != nil {
				return event.Money{}, err
			}
			qty, err := quantity(f+".quantity", l.Quantity)
			if err != nil {
				return event.Money{}, err
			}
			if m.Minor, err = event.MulMinor(unit.Minor, qty); err != nil {
				return event.Money{}, &storefront.ParseError{Field: f, Err: err}
			}
			m.Currency = unit.Currency
		}
		if total, err = addMoney(total, m); err != nil {
			return event.Money{}, &storefront.ParseError{Field: f, Err: err}
		}
	}
	return total, nil
}

// pickMoney reads the first amount present: a *_set's shop money (the shop's
// currency, stable across presentment currencies), else the bare amount in
// the payload's currency. An absent amount is zero in that currency.
func pickMoney(currency, field1 string, set1 *moneySet, amount1 storefront.Text, field2 string, set2 *moneySet, amount2 storefront.Text) (event.Money, error) {
	try := func(field string, set *moneySet, amount storefront.Text) (event.Money, bool, error) {
		if set != nil && set.ShopMoney.Amount != "" {
			m, err := event.ParseMoney(string(set.ShopMoney.Amount), firstNonEmpty(set.ShopMoney.CurrencyCode, currency))
			if err != nil {
				return m, false, &storefront.ParseError{Field: field + "_set.shop_money.amount", Err: err}
			}
			return m, true, nil
		}
		if amount != "" {
			m, err := event.ParseMoney(string(amount), currency)
			if err != nil {
				return m, false, &storefront.ParseError{Field: field, Err: err}
			}
			return m, true, nil
		}
		return event.Money{}, false, nil
	}
	if m, ok, err := try(field1, set1, amount1); ok || err != nil {
		return m, err
	}
	if field2 != "" {
		if m, ok, err := try(field2, set2, amount2); ok || err != nil {
			return m, err
		}
	}
	return event.Money{Currency: strings.ToUpper(currency)}, nil
}

func addMoney(total, m event.Money) (event.Money, error) {
	if total.Currency == "" {
		total.Currency = m.Currency
	}
	if m.Currency != "" && m.Currency != total.Currency {
		return event.Money{}, fmt.Errorf("mixed currencies %s and %s", total.Currency, m.Currency)
	}
	var err error
	total.Minor, err = event.AddMinor(total.Minor, m.Minor)
	return total, err
}

func quantity(field string, t storefront.Text) (int64, error) {
	if t == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(t), 10, 64)
	if err != nil {
		return 0, &storefront.ParseError{Field: field, Err: err}
	}
	return n, nil
}

func firstTime(field1, s1, field2, s2 string) (time.Time, error) {
	t, err := storefront.OptionalTime(field1, s1)
	if err != nil || !t.IsZero() {
		return t, err
	}
	return storefront.OptionalTime(field2, s2)
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}
