package loyalty_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/commerce"
	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/loyalty"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

type shop struct {
	t    *testing.T
	db   bun.IDB
	proc *commerce.Processor
	svc  *loyalty.Service
}

func newShop(t *testing.T, db bun.IDB) *shop {
	svc := loyalty.New(loyalty.Options{PointsPerUnit: 1, ReferralURL: "https://shop.example/"})
	proc := commerce.NewProcessor(commerce.Options{OnOrder: svc.OnOrder}, slog.New(slog.DiscardHandler))
	return &shop{t: t, db: db, proc: proc, svc: svc}
}

func (s *shop) order(at time.Time, kind event.Kind, buyer, id string, totalMinor, refundMinor int64) {
	s.t.Helper()
	s.orderWith(at, kind, buyer, id, totalMinor, refundMinor, nil)
}

func (s *shop) orderWith(at time.Time, kind event.Kind, buyer, id string, totalMinor, refundMinor int64, attrs map[string]string) {
	s.t.Helper()
	o := &event.Order{ID: id, Customer: &event.Customer{ID: buyer, Email: buyer + "@exemple.fr"},
		Total: event.Money{Minor: totalMinor, Currency: "EUR"}, Attributes: attrs}
	if kind == event.KindOrderRefunded {
		o.Refunded, o.RefundIncrement = event.Money{Minor: refundMinor, Currency: "EUR"}, true
	}
	require.NoError(s.t, s.proc.Apply(context.Background(), s.db, at, event.Event{Kind: kind, Source: "shopify",
		Topic: string(kind), OccurredAt: at, Order: o}))
}

func (s *shop) customer(buyer string) *customer.Customer {
	s.t.Helper()
	c, err := customer.GetByEmail(context.Background(), s.db, buyer+"@exemple.fr")
	require.NoError(s.t, err)
	return c
}

func events(t *testing.T, db bun.IDB, pk int64, typ string) []map[string]any {
	t.Helper()
	var evs []*customer.Event
	require.NoError(t, db.NewSelect().Model(&evs).Where("customer_id = ? AND type = ?", pk, typ).Order("id").Scan(context.Background()))
	out := make([]map[string]any, len(evs))
	for i, e := range evs {
		out[i] = e.Properties
	}
	return out
}

func TestPointsAndTiersOverOrders(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		s := newShop(t, db)
		day := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		account := func(at time.Time) loyalty.Account {
			a, err := s.svc.Account(ctx, db, at, s.customer("anne").PK)
			require.NoError(t, err)
			return a
		}

		s.order(day, event.KindOrderCreated, "anne", "1001", 6000, 0)
		require.Equal(t, int64(0), account(day).Points, "an order earns when it is paid")
		s.order(day, event.KindOrderPaid, "anne", "1001", 6000, 0)
		a := account(day)
		require.Equal(t, int64(60), a.Points)
		require.Nil(t, a.Tier)
		require.Equal(t, &loyalty.NextTier{Name: "bronze", MissingMinor: 4000}, a.NextTier)

		day2 := day.Add(24 * time.Hour)
		s.order(day2, event.KindOrderPaid, "anne", "1002", 8000, 0)
		s.order(day2, event.KindOrderPaid, "anne", "1002", 8000, 0) // redelivered
		a = account(day2)
		require.Equal(t, int64(140), a.Points)
		require.Equal(t, "bronze", *a.Tier)
		require.Equal(t, day2, a.TierSince.UTC())
		require.Equal(t, &loyalty.NextTier{Name: "silver", MissingMinor: 36000}, a.NextTier)

		day3 := day2.Add(24 * time.Hour)
		s.order(day3, event.KindOrderRefunded, "anne", "1002", 8000, 3000)
		a = account(day3)
		require.Equal(t, int64(110), a.Points, "a refund takes its points back")
		require.Equal(t, "bronze", *a.Tier)

		day4 := day3.Add(24 * time.Hour)
		s.order(day4, event.KindOrderPaid, "anne", "1003", 45000, 0)
		a = account(day4)
		require.Equal(t, int64(560), a.Points)
		require.Equal(t, "silver", *a.Tier)
		s.order(day4.Add(time.Hour), event.KindOrderCancelled, "anne", "1003", 45000, 0)
		a = account(day4.Add(time.Hour))
		require.Equal(t, int64(110), a.Points, "a cancellation takes all its points back")
		require.Equal(t, "bronze", *a.Tier)

		pk := s.customer("anne").PK
		page, err := loyalty.Ledger(ctx, db, pk, 10, 0)
		require.NoError(t, err)
		var deltas, balances []int64
		for _, e := range page.Entries {
			deltas, balances = append(deltas, e.Delta), append(balances, e.Balance)
		}
		require.Equal(t, []int64{-450, 450, -30, 80, 60}, deltas, "newest first; the redelivery wrote nothing")
		require.Equal(t, []int64{110, 560, 110, 140, 60}, balances)
		page2, err := loyalty.Ledger(ctx, db, pk, 2, page.Entries[1].ID)
		require.NoError(t, err)
		require.Len(t, page2.Entries, 2)
		require.True(t, page2.HasNextPage)
		require.Equal(t, int64(-30), page2.Entries[0].Delta)

		tiers := events(t, db, pk, loyalty.EventTierChanged)
		require.Len(t, tiers, 3)
		require.Equal(t, []any{"", "bronze"}, []any{tiers[0]["from"], tiers[0]["to"]})
		require.Equal(t, []any{"bronze", "silver"}, []any{tiers[1]["from"], tiers[1]["to"]})
		require.Equal(t, []any{"silver", "bronze"}, []any{tiers[2]["from"], tiers[2]["to"]})
		require.Len(t, events(t, db, pk, loyalty.EventPointsEarned), 3)

		bal, err := s.svc.Adjust(ctx, db, day4, pk, -100, "goodwill used")
		require.NoError(t, err)
		require.Equal(t, int64(10), bal)
		_, err = s.svc.Adjust(ctx, db, day4, pk, -11, "too much")
		require.ErrorIs(t, err, loyalty.ErrInsufficientPoints)

		// A year later the spend has left the period: the tier goes.
		later := day4.Add(400 * 24 * time.Hour)
		require.NoError(t, s.svc.RefreshTier(ctx, db, later, pk))
		require.Nil(t, account(later).Tier)
	})
}

func TestReferral(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		s := newShop(t, db)
		now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
		mk := func(name string) *customer.Customer {
			e := name + "@exemple.fr"
			c, _, err := customer.Upsert(ctx, db, now, customer.Profile{Email: &e})
			require.NoError(t, err)
			return c
		}
		alice, bob, carl := mk("alice"), mk("bob"), mk("carl")
		code, err := s.svc.Code(ctx, db, now, alice.PK)
		require.NoError(t, err)
		require.Regexp(t, `^[2-9A-HJKMNP-Z]{10}$`, code)
		again, err := s.svc.Code(ctx, db, now.Add(time.Hour), alice.PK)
		require.NoError(t, err)
		require.Equal(t, code, again, "a customer keeps one code")
		bobCode, err := s.svc.Code(ctx, db, now, bob.PK)
		require.NoError(t, err)
		require.NotEqual(t, code, bobCode)
		require.Equal(t, "https://shop.example/?ref="+code, s.svc.Link(code))

		_, err = s.svc.Redeem(ctx, db, now, alice.PK, code, loyalty.ChannelAccount)
		require.ErrorIs(t, err, loyalty.ErrSelfReferral)
		_, err = s.svc.Redeem(ctx, db, now, bob.PK, "NOSUCHCODE", loyalty.ChannelAccount)
		require.ErrorIs(t, err, loyalty.ErrUnknownCode)
		r, err := s.svc.Redeem(ctx, db, now, bob.PK, " "+code+" ", loyalty.ChannelSubscribe)
		require.NoError(t, err)
		require.Equal(t, alice.PK, r.ReferrerPK)
		_, err = s.svc.Redeem(ctx, db, now, bob.PK, code, loyalty.ChannelAccount)
		require.ErrorIs(t, err, loyalty.ErrAlreadyReferred)

		s.order(now, event.KindOrderPaid, "carl", "2001", 2000, 0)
		_, err = s.svc.Redeem(ctx, db, now, carl.PK, code, loyalty.ChannelAccount)
		require.ErrorIs(t, err, loyalty.ErrNotNew)

		st, err := loyalty.ReferralStats(ctx, db, alice.PK)
		require.NoError(t, err)
		require.Equal(t, loyalty.Stats{ReferredCount: 1}, st)

		s.order(now, event.KindOrderCreated, "bob", "3001", 5000, 0)
		require.Empty(t, events(t, db, alice.PK, loyalty.EventReferralRewarded), "an unpaid order does not qualify")
		s.order(now.Add(time.Minute), event.KindOrderPaid, "bob", "3001", 5000, 0)
		s.order(now.Add(time.Hour), event.KindOrderPaid, "bob", "3002", 5000, 0)
		rewarded := events(t, db, alice.PK, loyalty.EventReferralRewarded)
		require.Len(t, rewarded, 1, "the first paid order rewards, once")
		require.Equal(t, "3001", rewarded[0]["order_id"])
		require.EqualValues(t, 500, rewarded[0]["points"])
		st, err = loyalty.ReferralStats(ctx, db, alice.PK)
		require.NoError(t, err)
		require.Equal(t, loyalty.Stats{ReferredCount: 1, RewardsEarned: 1, RewardPoints: 500}, st)
		a, err := s.svc.Account(ctx, db, now, alice.PK)
		require.NoError(t, err)
		require.Equal(t, int64(500), a.Points)
	})
}

func TestReferralFromOrderAttribute(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		s := newShop(t, db)
		now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
		s.order(now, event.KindOrderCreated, "alice", "1001", 1000, 0)
		alice := s.customer("alice")
		code, err := s.svc.Code(ctx, db, now, alice.PK)
		require.NoError(t, err)

		// A new buyer arriving through the referral link: the storefront put
		// the code in the order attributes.
		for i := 0; i < 2; i++ { // the second time is a redelivery
			s.orderWith(now.Add(time.Hour), event.KindOrderPaid, "dave", "2001", 4000, 0, map[string]string{"ref": strings.ToLower(code)})
		}
		dave := s.customer("dave")
		var refs []*loyalty.Referral
		require.NoError(t, db.NewSelect().Model(&refs).Scan(ctx))
		require.Len(t, refs, 1)
		require.Equal(t, alice.PK, refs[0].ReferrerPK)
		require.Equal(t, dave.PK, refs[0].ReferredPK)
		require.Equal(t, loyalty.ChannelOrder, refs[0].Channel)
		require.Len(t, events(t, db, alice.PK, loyalty.EventReferralRewarded), 1, "the referring order is the qualifying order, rewarded once")
		require.Empty(t, events(t, db, dave.PK, loyalty.EventReferralRefused))

		// Refused codes never fail the order; each is recorded once.
		s.orderWith(now.Add(2*time.Hour), event.KindOrderPaid, "erin", "3001", 4000, 0, map[string]string{"referral_code": "NOSUCHCODE"})
		s.orderWith(now.Add(2*time.Hour), event.KindOrderPaid, "erin", "3001", 4000, 0, map[string]string{"referral_code": "NOSUCHCODE"})
		erin := s.customer("erin")
		refused := events(t, db, erin.PK, loyalty.EventReferralRefused)
		require.Len(t, refused, 1)
		require.Equal(t, loyalty.ErrUnknownCode.Error(), refused[0]["reason"])
		s.orderWith(now.Add(3*time.Hour), event.KindOrderPaid, "alice", "1002", 4000, 0, map[string]string{"ref": code})
		require.Equal(t, loyalty.ErrSelfReferral.Error(), events(t, db, alice.PK, loyalty.EventReferralRefused)[0]["reason"])
		// Erin has a paid order now: a code on her second order is refused.
		s.orderWith(now.Add(4*time.Hour), event.KindOrderPaid, "erin", "3002", 4000, 0, map[string]string{"ref": code})
		refused = events(t, db, erin.PK, loyalty.EventReferralRefused)
		require.Len(t, refused, 2)
		require.Equal(t, loyalty.ErrNotNew.Error(), refused[1]["reason"])
		n, err := db.NewSelect().Model((*loyalty.Referral)(nil)).Count(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
	})
}
