package outbox

import (
	"context"
	"errors"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/commerce"
	"github.com/refrain-dev/refrain/plugin/mail/template"
	"github.com/refrain-dev/refrain/plugin/store"
)

// CartOf is what cart templates see of the cart token of source: the
// stored cart, with the event's properties props filling what it lacks
// (all of it when the cart is not stored).
func CartOf(ctx context.Context, db bun.IDB, source, token string, props map[string]any) (*template.Cart, error) {
	cart, err := commerce.GetCart(ctx, db, source, token)
	switch {
	case err == nil:
		return cartData(cart, props), nil
	case errors.Is(err, store.ErrNotFound):
		return cartData(&commerce.Cart{}, props), nil
	}
	return nil, err
}

func cartData(c *commerce.Cart, props map[string]any) *template.Cart {
	currency := ""
	if c.Currency != nil {
		currency = *c.Currency
	} else if s, ok := props["currency"].(string); ok {
		currency = s
	}
	out := &template.Cart{Total: template.Money(c.ValueMinor, currency)}
	if c.RecoveryURL != nil {
		out.RecoveryURL = *c.RecoveryURL
	} else if s, ok := props["recovery_url"].(string); ok {
		out.RecoveryURL = s
	}
	if c.ValueMinor == 0 {
		if v, ok := props["value"].(float64); ok {
			out.Total = template.Money(int64(v), currency)
		}
	}
	for _, it := range c.Items {
		out.Items = append(out.Items, template.Item{Title: it.Title, Quantity: int(it.Quantity),
			Price: template.Money(it.PriceMinor*it.Quantity, currency)})
	}
	return out
}

// OrderOf is what order templates see of the order externalID of source:
// the stored order, with the event's properties props filling what it
// lacks (all of it when the order is not stored).
func OrderOf(ctx context.Context, db bun.IDB, source, externalID string, props map[string]any) (*template.Order, error) {
	o, err := commerce.GetOrder(ctx, db, source, externalID)
	switch {
	case err == nil:
		return orderData(o, props), nil
	case errors.Is(err, store.ErrNotFound):
		return orderData(&commerce.Order{ExternalID: externalID}, props), nil
	}
	return nil, err
}

func orderData(o *commerce.Order, props map[string]any) *template.Order {
	currency := ""
	if o.Currency != nil {
		currency = *o.Currency
	} else if s, ok := props["currency"].(string); ok {
		currency = s
	}
	out := &template.Order{Number: o.ExternalID}
	if o.Number != nil {
		out.Number = *o.Number
	} else if s, ok := props["number"].(string); ok {
		out.Number = s
	}
	total := o.TotalMinor
	if o.PK == 0 {
		if v, ok := props["total"].(float64); ok {
			total = int64(v)
		}
	}
	out.Total = template.Money(total, currency)
	for _, it := range o.Items {
		out.Items = append(out.Items, template.Item{Title: it.Title, Quantity: int(it.Quantity),
			Price: template.Money(it.PriceMinor*it.Quantity, currency)})
	}
	return out
}
