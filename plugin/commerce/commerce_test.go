package commerce_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/refrain-dev/refrain/plugin/commerce"
	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/store"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newProcessor() *commerce.Processor {
	return commerce.NewProcessor(commerce.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func usd(minor int64) event.Money { return event.Money{Minor: minor, Currency: "USD"} }

func orderEvent(kind event.Kind, id string, total int64, placed time.Time, buyer *event.Customer) event.Event {
	return event.Event{Kind: kind, Source: event.SourceStandard, Topic: string(kind), OccurredAt: placed,
		Order: &event.Order{ID: id, Total: usd(total), PlacedAt: placed, UpdatedAt: placed, Customer: buyer}}
}

func eventTypes(t *testing.T, db bun.IDB, pk int64, typ string) []*customer.Event {
	t.Helper()
	page, err := customer.ListEvents(context.Background(), db, pk, typ, 500, "")
	require.NoError(t, err)
	return page.Events
}

func TestRollupsWithRefundsAndCancellations(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		p := newProcessor()
		ann := &event.Customer{ID: "cus_ann", Email: "ann@example.com"}
		apply := func(ev event.Event) {
			t.Helper()
			require.NoError(t, p.Apply(ctx, db, t0, ev))
		}
		apply(orderEvent(event.KindOrderCreated, "o1", 10000, t0.Add(-40*24*time.Hour), ann))
		apply(orderEvent(event.KindOrderCreated, "o2", 5000, t0.Add(-10*24*time.Hour), ann))
		apply(orderEvent(event.KindOrderCreated, "o3", 7000, t0.Add(-5*24*time.Hour), ann))

		c, err := customer.GetByRef(ctx, db, "cus_ann")
		require.NoError(t, err)
		require.Equal(t, 3, c.OrdersCount)
		require.Equal(t, int64(22000), c.TotalSpentMinor)
		require.Equal(t, "USD", *c.Currency)
		require.Equal(t, t0.Add(-40*24*time.Hour), c.FirstOrderAt.UTC())
		require.Equal(t, t0.Add(-5*24*time.Hour), c.LastOrderAt.UTC())

		// Two partial refunds of o1 add up; the same order delivered again changes nothing.
		refund := func(amount int64, at time.Time) event.Event {
			return event.Event{Kind: event.KindOrderRefunded, Source: event.SourceStandard, OccurredAt: at,
				Order: &event.Order{ID: "o1", Refunded: usd(amount), RefundIncrement: true, RefundedAt: at}}
		}
		apply(refund(2500, t0.Add(-9*24*time.Hour)))
		apply(refund(1500, t0.Add(-8*24*time.Hour)))
		apply(orderEvent(event.KindOrderCreated, "o2", 5000, t0.Add(-10*24*time.Hour), ann))
		c, err = customer.GetByRef(ctx, db, "cus_ann")
		require.NoError(t, err)
		require.Equal(t, 3, c.OrdersCount)
		require.Equal(t, int64(22000-4000), c.TotalSpentMinor)

		// A running refund total (another platform's shape) only ever grows.
		apply(event.Event{Kind: event.KindOrderPaid, Source: event.SourceStandard,
			Order: &event.Order{ID: "o3", Refunded: usd(1000)}})
		apply(event.Event{Kind: event.KindOrderPaid, Source: event.SourceStandard,
			Order: &event.Order{ID: "o3", Refunded: usd(400)}})
		o3, err := commerce.GetOrder(ctx, db, "standard", "o3")
		require.NoError(t, err)
		require.Equal(t, int64(1000), o3.RefundedMinor)

		// Cancelling the latest order removes it from the rollups.
		apply(event.Event{Kind: event.KindOrderCancelled, Source: event.SourceStandard, OccurredAt: t0,
			Order: &event.Order{ID: "o3", CancelledAt: t0}})
		c, err = customer.GetByRef(ctx, db, "cus_ann")
		require.NoError(t, err)
		require.Equal(t, 2, c.OrdersCount)
		require.Equal(t, int64(15000-4000), c.TotalSpentMinor)
		require.Equal(t, t0.Add(-10*24*time.Hour), c.LastOrderAt.UTC())

		types := map[string]int{}
		for _, e := range eventTypes(t, db, c.PK, "") {
			types[e.Type]++
		}
		require.Equal(t, 3, types["order.created"], "one per order, redeliveries included")
		require.Equal(t, 2, types["order.refunded"], "one per refund")
		require.Equal(t, 1, types["order.cancelled"])
	})
}

func TestStageChangesAreRecorded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		p := newProcessor()
		bob := &event.Customer{ID: "cus_bob", Email: "bob@example.com",
			EmailConsent: &event.Consent{State: event.ConsentSubscribed, UpdatedAt: t0.Add(-time.Hour)}}
		require.NoError(t, p.Apply(ctx, db, t0, event.Event{Kind: event.KindCustomerCreated,
			Source: event.SourceStandard, Customer: bob}))
		c, err := customer.GetByRef(ctx, db, "cus_bob")
		require.NoError(t, err)
		require.Equal(t, "SUBSCRIBER", c.Stage)

		require.NoError(t, p.Apply(ctx, db, t0, orderEvent(event.KindOrderCreated, "b1", 3000, t0, &event.Customer{ID: "cus_bob"})))
		require.NoError(t, p.Apply(ctx, db, t0, orderEvent(event.KindOrderCreated, "b2", 3000, t0, &event.Customer{ID: "cus_bob"})))
		// Time passes: ACTIVE after 100 days, AT_RISK after 200, LAPSED after 400.
		th := customer.DefaultThresholds()
		for _, days := range []int{100, 200, 400} {
			_, err := customer.SweepStages(ctx, db, t0.Add(time.Duration(days)*24*time.Hour), th, 10)
			require.NoError(t, err)
		}
		changes := eventTypes(t, db, c.PK, customer.EventStageChanged)
		var got [][2]string
		for i := len(changes) - 1; i >= 0; i-- {
			got = append(got, [2]string{changes[i].Properties["from"].(string), changes[i].Properties["to"].(string)})
		}
		require.Equal(t, [][2]string{{"SUBSCRIBER", "NEW_CUSTOMER"}, {"NEW_CUSTOMER", "ACTIVE"}, {"ACTIVE", "AT_RISK"}, {"AT_RISK", "LAPSED"}}, got)

		// Withdrawn consent wins over every order-based stage.
		require.NoError(t, p.Apply(ctx, db, t0.Add(401*24*time.Hour), event.Event{Kind: event.KindNewsletterUnsubscribed,
			Source: event.SourceStandard, OccurredAt: t0.Add(401 * 24 * time.Hour), Customer: &event.Customer{ID: "cus_bob"}}))
		c, err = customer.GetByRef(ctx, db, "cus_bob")
		require.NoError(t, err)
		require.Equal(t, "UNSUBSCRIBED", c.Stage)
		last := eventTypes(t, db, c.PK, customer.EventStageChanged)[0]
		require.Equal(t, map[string]any{"from": "LAPSED", "to": "UNSUBSCRIBED"}, last.Properties)
	})
}

func TestCartAbandonedOnceThenConverted(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		p := newProcessor()
		const carts = 40
		for i := range carts {
			require.NoError(t, p.Apply(ctx, db, t0, event.Event{Kind: event.KindCartUpdated, Source: event.SourceStandard,
				OccurredAt: t0, Cart: &event.Cart{Token: tokenOf(i), Email: emailOf(i), Total: usd(1200), UpdatedAt: t0,
					Items: []event.LineItem{{ProductID: "p1", Quantity: 1, UnitPrice: usd(1200)}}}}))
		}
		// A cart with neither customer nor email is never abandoned: nobody to remind.
		require.NoError(t, p.Apply(ctx, db, t0, event.Event{Kind: event.KindCartUpdated, Source: event.SourceStandard,
			Cart: &event.Cart{Token: "anonymous", UpdatedAt: t0}}))

		n, err := p.SweepAbandoned(ctx, db.DB, t0.Add(59*time.Minute))
		require.NoError(t, err)
		require.Zero(t, n, "not idle for an hour yet")

		// Two replicas sweep at the same time, twice each.
		replicas := []*bun.DB{db.DB, db.DB}
		if store.DialectOf(db.DB) == store.Postgres {
			replicas[1] = db.Reopen(t)
		}
		var mu sync.Mutex
		total := 0
		var wg sync.WaitGroup
		for _, r := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 2 {
					n, err := newProcessor().SweepAbandoned(ctx, r, t0.Add(61*time.Minute))
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					total += n
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		require.Equal(t, carts, total)
		for i := range carts {
			c, err := customer.GetByEmail(ctx, db, emailOf(i))
			require.NoError(t, err)
			require.Len(t, eventTypes(t, db, c.PK, "cart.abandoned"), 1, emailOf(i))
		}
		anon, err := commerce.GetCart(ctx, db, "standard", "anonymous")
		require.NoError(t, err)
		require.Equal(t, commerce.CartOpen, anon.Status)

		// An order from cart 0 converts it, once.
		for range 2 {
			ev := orderEvent(event.KindOrderCreated, "ord-0", 1200, t0.Add(2*time.Hour), &event.Customer{Email: emailOf(0)})
			ev.Order.CartToken = tokenOf(0)
			require.NoError(t, p.Apply(ctx, db, t0.Add(2*time.Hour), ev))
		}
		cart, err := commerce.GetCart(ctx, db, "standard", tokenOf(0))
		require.NoError(t, err)
		require.Equal(t, commerce.CartConverted, cart.Status)
		require.Equal(t, "ord-0", *cart.OrderExternalID)
		c, err := customer.GetByEmail(ctx, db, emailOf(0))
		require.NoError(t, err)
		conv := eventTypes(t, db, c.PK, "cart.converted")
		require.Len(t, conv, 1)
		require.Equal(t, tokenOf(0), conv[0].Properties["cart_token"])
	})
}

func TestThinEventsRecordWhatTheyCarry(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		p := newProcessor()
		thin := func(kind event.Kind, typ event.ResourceType, id string) event.Event {
			return event.Event{Kind: kind, Source: event.SourceBigCommerce, OccurredAt: t0, Thin: true,
				Ref: &event.ResourceRef{Type: typ, ID: id}}
		}
		require.NoError(t, p.Apply(ctx, db, t0, thin(event.KindCustomerCreated, event.ResourceCustomer, "32")))
		c, err := customer.GetByRef(ctx, db, "32")
		require.NoError(t, err)
		require.Equal(t, "bigcommerce", *c.ExternalSource)
		require.NoError(t, p.Apply(ctx, db, t0, thin(event.KindOrderPaid, event.ResourceOrder, "250")))
		o, err := commerce.GetOrder(ctx, db, "bigcommerce", "250")
		require.NoError(t, err)
		require.Equal(t, t0, o.PaidAt.UTC())
		require.Nil(t, o.CustomerPK)
		require.ErrorIs(t, p.Apply(ctx, db, t0, thin(event.KindNewsletterSubscribed, event.ResourceSubscriber, "5")), commerce.ErrThin)
	})
}

func tokenOf(i int) string { return "cart-" + string(rune('a'+i%26)) + string(rune('a'+i/26)) }
func emailOf(i int) string { return "shopper-" + tokenOf(i) + "@example.com" }

// TestStorefrontSubscriptionStartsTheWelcome: a customer whose account
// existed subscribes at the storefront; the consent change records
// newsletter.subscribed (which the welcome is triggered by), once.
func TestStorefrontSubscriptionStartsTheWelcome(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		p := newProcessor()
		ann := &event.Customer{ID: "cus_ann", Email: "ann@example.com",
			EmailConsent: &event.Consent{State: event.ConsentNotSubscribed, UpdatedAt: t0.Add(-time.Hour)}}
		require.NoError(t, p.Apply(ctx, db, t0, event.Event{Kind: event.KindCustomerCreated, Source: event.SourceStandard, Customer: ann}))
		c, err := customer.GetByRef(ctx, db, "cus_ann")
		require.NoError(t, err)
		require.Empty(t, eventTypes(t, db, c.PK, commerce.EventNewsletterSubscribed))
		consent := event.Event{Kind: event.KindConsentUpdated, Source: event.SourceStandard, OccurredAt: t0,
			Customer: &event.Customer{ID: "cus_ann", Email: "ann@example.com",
				EmailConsent: &event.Consent{State: event.ConsentSubscribed, UpdatedAt: t0}}}
		require.NoError(t, p.Apply(ctx, db, t0, consent))
		require.NoError(t, p.Apply(ctx, db, t0, consent))
		require.Len(t, eventTypes(t, db, c.PK, commerce.EventNewsletterSubscribed), 1)
	})
}
