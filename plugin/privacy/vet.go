package privacy

import (
	"context"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/hygiene"
)

// VetEvent keeps an erased customer erased when the store sends them
// again: an order or cart from an erased address is kept without its
// buyer (it still counts), and a customer or consent event about one is
// skipped (false). Other events pass unchanged.
func VetEvent(ctx context.Context, db bun.IDB, ev event.Event) (event.Event, bool, error) {
	var emails []string
	add := func(e string) {
		if n, err := customer.NormalizeEmail(e); err == nil {
			emails = append(emails, n)
		}
	}
	if ev.Customer != nil {
		add(ev.Customer.Email)
	}
	if ev.Order != nil {
		add(ev.Order.Email)
		if ev.Order.Customer != nil {
			add(ev.Order.Customer.Email)
		}
	}
	if ev.Cart != nil {
		add(ev.Cart.Email)
		if ev.Cart.Customer != nil {
			add(ev.Cart.Customer.Email)
		}
	}
	if len(emails) == 0 {
		return ev, true, nil
	}
	erased, err := hygiene.Erased(ctx, db, emails)
	if err != nil || len(erased) == 0 {
		return ev, err == nil, err
	}
	switch {
	case ev.Order != nil:
		o := *ev.Order
		o.Email, o.Customer = "", nil
		ev.Order, ev.Customer = &o, nil
		return ev, true, nil
	case ev.Cart != nil:
		c := *ev.Cart
		c.Email, c.Customer, c.RecoveryURL = "", nil, ""
		ev.Cart, ev.Customer = &c, nil
		return ev, true, nil
	}
	return ev, false, nil
}
