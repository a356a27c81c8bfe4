package commerce

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/uptrace/bun"
)

func orderEventType(k event.Kind) string {
	switch k {
	case event.KindOrderPaid:
		return EventOrderPaid
	case event.KindOrderFulfilled:
		return EventOrderFulfilled
	case event.KindOrderRefunded:
		return EventOrderRefunded
	case event.KindOrderCancelled:
		return EventOrderCancelled
	}
	return EventOrderCreated
}

func (p *Processor) applyOrder(ctx context.Context, db bun.IDB, now time.Time, ev event.Event) error {
	o := ev.Order
	if o == nil || o.ID == "" {
		return &ParseGap{What: "order event without an order id"}
	}
	at := eventTime(ev, now)
	source := string(ev.Source)
	cust, err := p.resolve(ctx, db, now, source, o.Customer, o.Email)
	if err != nil {
		return err
	}
	stored := new(Order)
	err = db.NewSelect().Model(stored).Where("source = ? AND external_id = ?", source, o.ID).Scan(ctx)
	isNew := errors.Is(err, sql.ErrNoRows)
	if err != nil && !isNew {
		return fmt.Errorf("load order: %w", err)
	}
	if isNew {
		stored = &Order{Source: source, ExternalID: o.ID, Items: []Item{}, CreatedAt: now, PlacedAt: at}
	}
	fresh := newer(o.UpdatedAt, stored.PlatformUpdatedAt)
	if fresh {
		// The newest payload wins for what can change.
		if o.Status != "" {
			stored.Status = o.Status
		}
		if o.Total.Currency != "" || o.Total.Minor != 0 {
			stored.TotalMinor = o.Total.Minor
			stored.Currency = strp(o.Total.Currency)
		}
		if len(o.Items) > 0 {
			stored.Items = itemsOf(o.Items)
		}
		if o.Number != "" {
			stored.Number = strp(o.Number)
		}
		if o.Email != "" {
			stored.ContactEmail = strp(o.Email)
		}
		stored.PlatformUpdatedAt = timep(o.UpdatedAt)
	}
	if stored.Status == "" {
		stored.Status = string(ev.Kind)
	}
	if stored.CustomerPK == nil && cust != nil {
		stored.CustomerPK = &cust.PK
	}
	// Facts only ever fill in: a time once known is kept.
	fill := func(dst **time.Time, t time.Time) {
		if *dst == nil && !t.IsZero() {
			*dst = timep(t)
		}
	}
	if !o.PlacedAt.IsZero() && (isNew || o.PlacedAt.Before(stored.PlacedAt)) {
		stored.PlacedAt = o.PlacedAt.UTC()
	}
	fill(&stored.PaidAt, o.PaidAt)
	fill(&stored.FulfilledAt, o.FulfilledAt)
	fill(&stored.CancelledAt, o.CancelledAt)
	switch ev.Kind {
	case event.KindOrderPaid:
		fill(&stored.PaidAt, at)
	case event.KindOrderFulfilled:
		fill(&stored.FulfilledAt, at)
	case event.KindOrderCancelled:
		fill(&stored.CancelledAt, at)
	case event.KindOrderRefunded:
		if o.Refunded.Minor > 0 && o.RefundIncrement {
			// The event carries this one refund; several refunds add up,
			// and the inbox guarantees each delivery is applied once.
			stored.RefundedMinor += o.Refunded.Minor
		}
		if !o.RefundedAt.IsZero() {
			stored.RefundedAt = timep(o.RefundedAt)
		} else {
			stored.RefundedAt = timep(at)
		}
	}
	if !o.RefundIncrement && o.Refunded.Minor > stored.RefundedMinor {
		// A running total: refunds only grow, whatever the delivery order.
		stored.RefundedMinor = o.Refunded.Minor
	}
	if stored.RefundedMinor > stored.TotalMinor && stored.TotalMinor > 0 {
		stored.RefundedMinor = stored.TotalMinor
	}
	if o.CartToken != "" {
		stored.CartToken = strp(o.CartToken)
	}
	if o.CheckoutToken != "" {
		stored.CheckoutToken = strp(o.CheckoutToken)
	}
	stored.UpdatedAt = now
	if isNew {
		if _, err := db.NewInsert().Model(stored).Exec(ctx); err != nil {
			return fmt.Errorf("insert order: %w", err)
		}
	} else if _, err := db.NewUpdate().Model(stored).WherePK().Exec(ctx); err != nil {
		return fmt.Errorf("update order: %w", err)
	}
	if err := p.convertCarts(ctx, db, now, source, stored); err != nil {
		return err
	}
	if cust == nil && stored.CustomerPK != nil {
		if cust, err = customer.Get(ctx, db, *stored.CustomerPK); err != nil {
			return err
		}
	}
	if cust == nil {
		return nil
	}
	props := map[string]any{"order_id": stored.ExternalID, "total": stored.TotalMinor, "items": len(stored.Items)}
	if stored.Currency != nil {
		props["currency"] = *stored.Currency
	}
	if stored.Number != nil {
		props["number"] = *stored.Number
	}
	if stored.CheckoutToken != nil {
		props["checkout_token"] = *stored.CheckoutToken
	}
	if stored.CartToken != nil {
		props["cart_token"] = *stored.CartToken
	}
	products := make([]any, 0, len(stored.Items))
	for _, it := range stored.Items {
		products = append(products, map[string]any{"product_id": it.ProductID, "title": it.Title, "quantity": it.Quantity})
	}
	props["products"] = products
	typ := orderEventType(ev.Kind)
	key := fmt.Sprintf("%s:%s:%s", source, typ, stored.ExternalID)
	if typ == EventOrderRefunded {
		key = "" // one event per refund delivery
	}
	if isNew && typ != EventOrderCreated {
		// The first word of an order may be its payment: it is placed all the same.
		if _, _, err := customer.AppendEvent(ctx, db, now, cust.PK, customer.EventInput{Type: EventOrderCreated,
			OccurredAt: stored.PlacedAt, Source: source, Properties: props,
			IdempotencyKey: fmt.Sprintf("%s:%s:%s", source, EventOrderCreated, stored.ExternalID)}); err != nil {
			return err
		}
	}
	if _, _, err := customer.AppendEvent(ctx, db, now, cust.PK, customer.EventInput{Type: typ, OccurredAt: at,
		Source: source, Properties: props, IdempotencyKey: key}); err != nil {
		return err
	}
	if err := p.refreshRollups(ctx, db, now, cust.PK); err != nil {
		return err
	}
	if p.opts.OnOrder != nil {
		// Loyalty and referral programs, in this same transaction.
		stored.Attributes = o.Attributes
		return p.opts.OnOrder(ctx, db, now, stored)
	}
	return nil
}

// refreshRollups recomputes a customer's order rollups from the orders
// table (so redeliveries and out-of-order events cannot skew them), then the
// lifecycle stage. Cancelled orders do not count; refunds reduce the total.
// The total is kept in the currency of the customer's first order; orders
// in other currencies count as orders but not in the total.
func (p *Processor) refreshRollups(ctx context.Context, db bun.IDB, now time.Time, customerPK int64) error {
	var orders []*Order
	if err := db.NewSelect().Model(&orders).Column("total_minor", "refunded_minor", "currency", "placed_at").
		Where("customer_id = ? AND cancelled_at IS NULL", customerPK).Order("placed_at ASC").Scan(ctx); err != nil {
		return fmt.Errorf("load orders for rollups: %w", err)
	}
	c, err := customer.Get(ctx, db, customerPK)
	if err != nil {
		return err
	}
	c.OrdersCount, c.TotalSpentMinor, c.FirstOrderAt, c.LastOrderAt = len(orders), 0, nil, nil
	if len(orders) > 0 {
		c.Currency = orders[0].Currency
		first, last := orders[0].PlacedAt, orders[len(orders)-1].PlacedAt
		c.FirstOrderAt, c.LastOrderAt = &first, &last
	}
	for _, o := range orders {
		if o.Currency == nil || c.Currency == nil || *o.Currency == *c.Currency {
			c.TotalSpentMinor += o.TotalMinor - o.RefundedMinor
		}
	}
	if _, err := db.NewUpdate().Model(c).
		Column("orders_count", "total_spent_minor", "currency", "first_order_at", "last_order_at").
		WherePK().Exec(ctx); err != nil {
		return fmt.Errorf("store rollups: %w", err)
	}
	_, err = customer.RefreshStage(ctx, db, now, c, p.opts.Thresholds)
	return err
}
