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
