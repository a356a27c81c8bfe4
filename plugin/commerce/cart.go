package commerce

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/store"
	"github.com/uptrace/bun"
)

func (p *Processor) applyCart(ctx context.Context, db bun.IDB, now time.Time, ev event.Event) error {
	ct := ev.Cart
	if ct == nil || ct.Token == "" {
		return &ParseGap{What: "cart event without a token"}
	}
	at := eventTime(ev, now)
	source := string(ev.Source)
	cust, err := p.resolve(ctx, db, now, source, ct.Customer, ct.Email)
	if err != nil {
		return err
	}
	stored := new(Cart)
	err = db.NewSelect().Model(stored).Where("source = ? AND token = ?", source, ct.Token).Scan(ctx)
	isNew := errors.Is(err, sql.ErrNoRows)
	if err != nil && !isNew {
		return fmt.Errorf("load cart: %w", err)
	}
	if isNew {
		stored = &Cart{Source: source, Token: ct.Token, Items: []Item{}, Status: CartOpen, CreatedAt: now, LastActivityAt: at}
		if !ct.CreatedAt.IsZero() {
			stored.CreatedAt = ct.CreatedAt.UTC()
		}
	}
	activity := ct.UpdatedAt
	if activity.IsZero() {
		activity = at
	}
	if newer(ct.UpdatedAt, stored.PlatformUpdatedAt) {
		if len(ct.Items) > 0 || ev.Kind == event.KindCartUpdated {
			stored.Items = itemsOf(ct.Items)
			stored.ValueMinor = ct.Total.Minor
			stored.Currency = strp(ct.Total.Currency)
		}
		if ct.RecoveryURL != "" {
			stored.RecoveryURL = strp(ct.RecoveryURL)
		}
		if ct.Email != "" {
			stored.Email = strp(ct.Email)
		}
		if ct.CartToken != "" {
			stored.CartToken = strp(ct.CartToken)
		}
		if activity.After(stored.LastActivityAt) {
			stored.LastActivityAt = activity.UTC()
		}
		stored.PlatformUpdatedAt = timep(ct.UpdatedAt)
	}
	if stored.CustomerPK == nil && cust != nil {
		stored.CustomerPK = &cust.PK
	}
	stored.UpdatedAt = now
	convert := ev.Kind == event.KindCartConverted || ct.Status == event.CartConverted
	abandon := ev.Kind == event.KindCartAbandoned || ct.Status == event.CartAbandoned
	if isNew {
		if _, err := db.NewInsert().Model(stored).Exec(ctx); err != nil {
			return fmt.Errorf("insert cart: %w", err)
		}
	} else if _, err := db.NewUpdate().Model(stored).WherePK().
		ExcludeColumn("status", "abandoned_at", "converted_at", "order_external_id").Exec(ctx); err != nil {
		return fmt.Errorf("update cart: %w", err)
	}
	switch {
	case convert:
		return markConverted(ctx, db, now, stored, ct.OrderID)
	case abandon:
		_, err := markAbandoned(ctx, db, now, stored.PK)
		return err
	}
	if cust == nil || stored.Status != CartOpen {
		return nil
	}
	_, _, err = customer.AppendEvent(ctx, db, now, cust.PK, customer.EventInput{Type: EventCartUpdated, OccurredAt: at,
		Source: source, Properties: cartProps(stored)})
	return err
}

func cartProps(c *Cart) map[string]any {
	props := map[string]any{"cart_token": c.Token, "value": c.ValueMinor, "items": len(c.Items)}
	if c.Currency != nil {
		props["currency"] = *c.Currency
	}
	if c.RecoveryURL != nil {
		props["recovery_url"] = *c.RecoveryURL
	}
	if c.OrderExternalID != nil {
		props["order_id"] = *c.OrderExternalID
	}
	return props
}

// convertCarts marks the carts an order came from as converted.
func (p *Processor) convertCarts(ctx context.Context, db bun.IDB, now time.Time, source string, o *Order) error {
	var tokens []string
	for _, t := range []*string{o.CheckoutToken, o.CartToken} {
		if t != nil && *t != "" {
			tokens = append(tokens, *t)
		}
	}
	if len(tokens) == 0 {
		return nil
	}
	var carts []*Cart
	if err := db.NewSelect().Model(&carts).Where("source = ?", source).
		WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
			return q.Where("token IN (?)", bun.List(tokens)).WhereOr("cart_token IN (?)", bun.List(tokens))
		}).Scan(ctx); err != nil {
		return fmt.Errorf("find carts of order: %w", err)
	}
	for _, c := range carts {
		if err := markConverted(ctx, db, now, c, o.ExternalID); err != nil {
			return err
		}
	}
	return nil
}

// markConverted moves a cart to converted once and records cart.converted.
func markConverted(ctx context.Context, db bun.IDB, now time.Time, c *Cart, orderID string) error {
	res, err := db.NewUpdate().Model((*Cart)(nil)).
		Set("status = ?", CartConverted).Set("converted_at = ?", now).Set("order_external_id = ?", strp(orderID)).
		Where("id = ? AND status <> ?", c.PK, CartConverted).Exec(ctx)
	if err != nil {
		return fmt.Errorf("mark cart converted: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 || c.CustomerPK == nil {
		return nil
	}
	c.Status, c.OrderExternalID = CartConverted, strp(orderID)
	_, _, err = customer.AppendEvent(ctx, db, now, *c.CustomerPK, customer.EventInput{Type: EventCartConverted, OccurredAt: now,
		Source: c.Source, Properties: cartProps(c), IdempotencyKey: fmt.Sprintf("cart.converted:%d", c.PK)})
	return err
}

// markAbandoned moves an open cart to abandoned and records cart.abandoned;
// the status guard and the idempotency key make it happen once per cart,
// whichever replica gets there first.
func markAbandoned(ctx context.Context, db bun.IDB, now time.Time, cartPK int64) (bool, error) {
	res, err := db.NewUpdate().Model((*Cart)(nil)).
		Set("status = ?", CartAbandoned).Set("abandoned_at = ?", now).
		Where("id = ? AND status = ?", cartPK, CartOpen).Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("mark cart abandoned: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	c := new(Cart)
	if err := db.NewSelect().Model(c).Where("id = ?", cartPK).Scan(ctx); err != nil {
		return false, fmt.Errorf("load abandoned cart: %w", err)
	}
	pk := c.CustomerPK
	if pk == nil && c.Email != nil {
		cust, _, err := customer.Upsert(ctx, db, now, customer.Profile{Email: c.Email, Source: customer.Source(c.Source)})
		if err != nil {
			return false, err
		}
		pk = &cust.PK
	}
	if pk == nil {
		return true, nil
	}
	_, _, err = customer.AppendEvent(ctx, db, now, *pk, customer.EventInput{Type: EventCartAbandoned, OccurredAt: now,
		Source: c.Source, Properties: cartProps(c), IdempotencyKey: fmt.Sprintf("cart.abandoned:%d", c.PK)})
	return true, err
}

// SweepAbandoned abandons every open cart with a customer or an email and
// no activity since now minus AbandonAfter. It is safe on several replicas
// at once: each cart is abandoned, and its event recorded, exactly once.
// It returns how many carts it abandoned.
func (p *Processor) SweepAbandoned(ctx context.Context, db *bun.DB, now time.Time) (int, error) {
	cutoff := now.Add(-p.opts.AbandonAfter)
	total := 0
	for {
		n := 0
		err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			var ids []int64
			q := tx.NewSelect().Model((*Cart)(nil)).Column("id").
				Where("status = ? AND last_activity_at <= ?", CartOpen, cutoff).
				Where("(customer_id IS NOT NULL OR email IS NOT NULL)").
				Order("id ASC").Limit(200)
			q = store.SkipLocked(q)
			if err := q.Scan(ctx, &ids); err != nil {
				return fmt.Errorf("select idle carts: %w", err)
			}
			for _, id := range ids {
				ok, err := markAbandoned(ctx, tx, now, id)
				if err != nil {
					return err
				}
				if ok {
					n++
				}
			}
			if len(ids) == 0 {
				n = -1
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		if n < 0 {
			return total, nil
		}
		total += n
	}
}
