// Package commerce turns normalised storefront events into Refrain's state:
// customers matched by the store's id (by normalised email only for guests),
// orders with their times and rollups, carts and checkouts with their
// abandonment, and the customer events that segments and scenarios start on.
// State never moves backwards: an event older than what is stored only fills
// in facts that were missing.
//
// It reads events as plugin/commerce/event values and writes through
// plugin/customer and plugin/store. It must not import plugin/storefront or
// a storefront adapter, graph, net/http or the assembly; what it needs from
// other domains (loyalty on a paid order, privacy erasure) it takes as
// functions in Options that the assembly wires.
package commerce

import (
	"context"
	"time"

	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/uptrace/bun"
)

// CartStatus is where a cart is in its life.
type CartStatus string

// Cart statuses.
const (
	CartOpen      CartStatus = "open"
	CartAbandoned CartStatus = "abandoned"
	CartConverted CartStatus = "converted"
)

// Item is one product line of an order or cart as stored.
type Item struct {
	ProductID  string `json:"productId,omitempty"`
	VariantID  string `json:"variantId,omitempty"`
	SKU        string `json:"sku,omitempty"`
	Title      string `json:"title,omitempty"`
	Quantity   int64  `json:"quantity"`
	PriceMinor int64  `json:"priceMinor"`
}

// Order is a store order as Refrain keeps it.
type Order struct {
	bun.BaseModel `bun:"table:orders"`

	PK                int64      `bun:"id,pk,autoincrement"`
	Source            string     `bun:"source,notnull"`
	ExternalID        string     `bun:"external_id,notnull"`
	CustomerPK        *int64     `bun:"customer_id"`
	Number            *string    `bun:"number"`
	Status            string     `bun:"status,notnull"`
	TotalMinor        int64      `bun:"total_minor,notnull"`
	RefundedMinor     int64      `bun:"refunded_minor,notnull"`
	Currency          *string    `bun:"currency"`
	Items             []Item     `bun:"items,notnull,type:jsonb"`
	CartToken         *string    `bun:"cart_token"`
	CheckoutToken     *string    `bun:"checkout_token"`
	ContactEmail      *string    `bun:"contact_email"`
	PlacedAt          time.Time  `bun:"placed_at,notnull"`
	PaidAt            *time.Time `bun:"paid_at"`
	FulfilledAt       *time.Time `bun:"fulfilled_at"`
	RefundedAt        *time.Time `bun:"refunded_at"`
	CancelledAt       *time.Time `bun:"cancelled_at"`
	Counted           bool       `bun:"counted,notnull"`
	PlatformUpdatedAt *time.Time `bun:"platform_updated_at"`
	CreatedAt         time.Time  `bun:"created_at,notnull"`
	UpdatedAt         time.Time  `bun:"updated_at,notnull"`
	// Attributes are the custom attributes of the delivery being applied
	// (event.Order.Attributes), handed to OnOrder; they are not
	// stored, since only the referral code in them is used, once.
	Attributes map[string]string `bun:"-"`
}

// Cart is a cart or checkout as Refrain keeps it.
type Cart struct {
	bun.BaseModel `bun:"table:carts"`

	PK                int64      `bun:"id,pk,autoincrement"`
	Source            string     `bun:"source,notnull"`
	Token             string     `bun:"token,notnull"`
	CartToken         *string    `bun:"cart_token"`
	CustomerPK        *int64     `bun:"customer_id"`
	Email             *string    `bun:"email"`
	Items             []Item     `bun:"items,notnull,type:jsonb"`
	ValueMinor        int64      `bun:"value_minor,notnull"`
	Currency          *string    `bun:"currency"`
	RecoveryURL       *string    `bun:"recovery_url"`
	Status            CartStatus `bun:"status,notnull"`
	LastActivityAt    time.Time  `bun:"last_activity_at,notnull"`
	AbandonedAt       *time.Time `bun:"abandoned_at"`
	ConvertedAt       *time.Time `bun:"converted_at"`
	OrderExternalID   *string    `bun:"order_external_id"`
	PlatformUpdatedAt *time.Time `bun:"platform_updated_at"`
	CreatedAt         time.Time  `bun:"created_at,notnull"`
	UpdatedAt         time.Time  `bun:"updated_at,notnull"`
}

// Options are the settings of commerce processing.
type Options struct {
	// AbandonAfter is the idle time after which an open cart is abandoned. Default 1 h.
	AbandonAfter time.Duration
	// Thresholds are the lifecycle stage thresholds.
	Thresholds customer.Thresholds
	// OnOrder, when set, runs after an order is stored and its rollups
	// refreshed, in the same transaction (loyalty points, tiers, referrals).
	OnOrder func(ctx context.Context, db bun.IDB, now time.Time, o *Order) error
	// Erase erases a customer for the storefront's deletion and GDPR
	// webhooks. Default Erase; privacy.Erase covers every table.
	Erase func(ctx context.Context, db bun.IDB, now time.Time, customerPK int64, reason string) error
}

func (o Options) withDefaults() Options {
	if o.AbandonAfter <= 0 {
		o.AbandonAfter = time.Hour
	}
	if o.Thresholds == (customer.Thresholds{}) {
		o.Thresholds = customer.DefaultThresholds()
	}
	return o
}

func itemsOf(in []event.LineItem) []Item {
	out := make([]Item, 0, len(in))
	for _, li := range in {
		out = append(out, Item{ProductID: li.ProductID, VariantID: li.VariantID, SKU: li.SKU, Title: li.Title,
			Quantity: li.Quantity, PriceMinor: li.UnitPrice.Minor})
	}
	return out
}

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func timep(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// newer reports whether an event time is not older than the stored platform
// time (equal counts as newer: the same state redelivered is harmless).
func newer(event time.Time, stored *time.Time) bool {
	return stored == nil || event.IsZero() || !event.Before(*stored)
}
