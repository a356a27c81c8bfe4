package commerce

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/cursor"
	"github.com/refrain-dev/refrain/plugin/store"
)

// ErrBadCursor is returned for a cursor that ListOrders did not make.
var ErrBadCursor = cursor.ErrInvalid

// OrderPage is one page of a customer's orders, newest placed first.
type OrderPage struct {
	Orders      []*Order
	HasNextPage bool
	// EndCursor is the cursor of the last order of the page, empty when the page is empty.
	EndCursor string
}

// OrderCursor is the opaque cursor of an order in a listing.
func OrderCursor(o *Order) string {
	return cursor.Encode(":", "o", strconv.FormatInt(o.PlacedAt.UnixNano(), 10), strconv.FormatInt(o.PK, 10))
}

func decodeOrderCursor(c string) (time.Time, int64, error) {
	parts, err := cursor.Decode(c, ":", 3)
	if err != nil {
		return time.Time{}, 0, err
	}
	if parts[0] != "o" {
		return time.Time{}, 0, fmt.Errorf("%w: %q", ErrBadCursor, c)
	}
	ns, err1 := strconv.ParseInt(parts[1], 10, 64)
	pk, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return time.Time{}, 0, fmt.Errorf("%w: %q", ErrBadCursor, c)
	}
	return time.Unix(0, ns).UTC(), pk, nil
}

// ListOrders lists a customer's orders, newest placed first, first at a
// time, after the order of cursor after ("" for the first page).
func ListOrders(ctx context.Context, db bun.IDB, customerPK int64, first int, after string) (OrderPage, error) {
	q := db.NewSelect().Model((*Order)(nil)).Where("customer_id = ?", customerPK)
	if after != "" {
		at, pk, err := decodeOrderCursor(after)
		if err != nil {
			return OrderPage{}, err
		}
		q = q.Where("(placed_at < ? OR (placed_at = ? AND id < ?))", at, at, pk)
	}
	var os []*Order
	if err := q.Order("placed_at DESC", "id DESC").Limit(int64(first)+1).Scan(ctx, &os); err != nil {
		return OrderPage{}, fmt.Errorf("list orders of customer %d: %w", customerPK, err)
	}
	p := OrderPage{Orders: os}
	if len(os) > first {
		p.Orders, p.HasNextPage = os[:first], true
	}
	if n := len(p.Orders); n > 0 {
		p.EndCursor = OrderCursor(p.Orders[n-1])
	}
	return p, nil
}

// maxCarts bounds ListCarts: a customer has few carts that matter.
const maxCarts = 100

// ListCarts lists a customer's carts and checkouts, latest activity first,
// optionally only those in status (empty: all), at most 100.
func ListCarts(ctx context.Context, db bun.IDB, customerPK int64, status CartStatus) ([]*Cart, error) {
	q := db.NewSelect().Model((*Cart)(nil)).Where("customer_id = ?", customerPK)
	if status != "" {
		q = q.Where("status = ?", status)
	}
	var cs []*Cart
	if err := q.Order("last_activity_at DESC", "id DESC").Limit(maxCarts).Scan(ctx, &cs); err != nil {
		return nil, fmt.Errorf("list carts of customer %d: %w", customerPK, err)
	}
	return cs, nil
}

// GetCart loads a cart by source and token.
func GetCart(ctx context.Context, db bun.IDB, source, token string) (*Cart, error) {
	c := new(Cart)
	err := db.NewSelect().Model(c).Where("source = ? AND token = ?", source, token).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("cart %s/%s: %w", source, token, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load cart %s/%s: %w", source, token, err)
	}
	return c, nil
}

// GetOrder loads an order by source and platform id.
func GetOrder(ctx context.Context, db bun.IDB, source, externalID string) (*Order, error) {
	o := new(Order)
	err := db.NewSelect().Model(o).Where("source = ? AND external_id = ?", source, externalID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("order %s/%s: %w", source, externalID, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load order %s/%s: %w", source, externalID, err)
	}
	return o, nil
}

// ListCartsOf is ListCarts for several customers in one statement, keyed
// by customer.
func ListCartsOf(ctx context.Context, db bun.IDB, customerPKs []int64, status CartStatus) (map[int64][]*Cart, error) {
	cond, arg := store.In(db, "customer_id", customerPKs)
	q := db.NewSelect().Model((*Cart)(nil)).Where(cond, arg)
	if status != "" {
		q = q.Where("status = ?", status)
	}
	var cs []*Cart
	if err := q.Order("last_activity_at DESC", "id DESC").Scan(ctx, &cs); err != nil {
		return nil, fmt.Errorf("list carts of %d customers: %w", len(customerPKs), err)
	}
	out := make(map[int64][]*Cart, len(customerPKs))
	for _, c := range cs {
		if pk := *c.CustomerPK; len(out[pk]) < maxCarts {
			out[pk] = append(out[pk], c)
		}
	}
	return out, nil
}
