package customer_test

import (
	"context"
	"testing"
	"time"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/ptr"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func TestNormalizeEmail(t *testing.T) {
	cases := map[string]string{
		" Bob@Biller.COM ":       "bob@biller.com",
		"ann.lee+news@gmail.com": "ann.lee+news@gmail.com",
		"josé@bücher.de":         "josé@xn--bcher-kva.de",
		"x@example.com.":         "x@example.com",
	}
	for in, want := range cases {
		got, err := customer.NormalizeEmail(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "plain", "@example.com", "a@", "a b@example.com", "a@localhost", "a@@b.com", "a@b..com"} {
		_, err := customer.NormalizeEmail(bad)
		require.ErrorIs(t, err, customer.ErrInvalidEmail, bad)
	}
}

func TestUpsertAndLookup(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		// A customer known only by email keeps Refrain's own id.
		c, created, err := customer.Upsert(ctx, db, t0, customer.Profile{
			Email: ptr.To("Bob@Biller.com"), FirstName: ptr.To("Bob"), Source: customer.SourceImport,
			Attributes: map[string]any{"city": "Ottawa"}, Tags: []string{"vip"},
		})
		require.NoError(t, err)
		require.True(t, created)
		require.Regexp(t, `^rfn_[a-z2-7]{26}$`, c.ID())
		require.Equal(t, customer.SourceImport, c.Source)

		byEmail, err := customer.GetByEmail(ctx, db, "  BOB@biller.COM")
		require.NoError(t, err)
		require.Equal(t, c.PK, byEmail.PK)
		require.Equal(t, "Bob@Biller.com", *byEmail.Email, "stored as given")
		require.Equal(t, map[string]any{"city": "Ottawa"}, byEmail.Attributes)
		require.Equal(t, []string{"vip"}, byEmail.Tags)

		// The store's id is learned later: same customer, both ids resolve.
		c2, created, err := customer.Upsert(ctx, db, t0.Add(time.Hour), customer.Profile{
			ExternalID: ptr.To("gid://shopify/Customer/706405506930370084"), ExternalSource: ptr.To("shopify"),
			Email: ptr.To("bob@biller.com"), LastName: ptr.To("Biller"), Attributes: map[string]any{"note": "ice cream"},
			Tags: []string{"newsletter", "vip"},
		})
		require.NoError(t, err)
		require.False(t, created)
		require.Equal(t, c.PK, c2.PK)
		require.Equal(t, "gid://shopify/Customer/706405506930370084", c2.ID())
		for _, ref := range []string{c.PublicID, "gid://shopify/Customer/706405506930370084"} {
			got, err := customer.GetByRef(ctx, db, ref)
			require.NoError(t, err, ref)
			require.Equal(t, c.PK, got.PK)
			require.Equal(t, "Bob", *got.FirstName, "a missing field leaves the stored value")
			require.Equal(t, "Biller", *got.LastName)
			require.Equal(t, map[string]any{"city": "Ottawa", "note": "ice cream"}, got.Attributes)
			require.Equal(t, []string{"newsletter", "vip"}, got.Tags)
		}

		// Another store customer with the same address is another person.
		other, created, err := customer.Upsert(ctx, db, t0, customer.Profile{
			ExternalID: ptr.To("gid://shopify/Customer/1"), ExternalSource: ptr.To("shopify"), Email: ptr.To("bob@biller.com"),
		})
		require.NoError(t, err)
		require.True(t, created)
		require.NotEqual(t, c.PK, other.PK)
		require.Nil(t, other.EmailNormalized)

		many, err := customer.GetManyByRefs(ctx, db, []string{"gid://shopify/Customer/1", "nope", c.PublicID})
		require.NoError(t, err)
		require.Equal(t, other.PK, many[0].PK)
		require.Nil(t, many[1])
		require.Equal(t, c.PK, many[2].PK)

		_, err = customer.GetByRef(ctx, db, "gid://shopify/Customer/404")
		require.ErrorIs(t, err, customer.ErrNotFound)

		_, _, err = customer.Upsert(ctx, db, t0, customer.Profile{Email: ptr.To("not-an-address")})
		require.ErrorIs(t, err, customer.ErrInvalidEmail)
		_, _, err = customer.Upsert(ctx, db, t0, customer.Profile{FirstName: ptr.To("Nobody")})
		require.ErrorContains(t, err, "neither a store id nor an email")
	})
}

func TestListFilters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		for i, p := range []customer.Profile{
			{Email: ptr.To("ann@shop.example"), Source: customer.SourceOnline, Tags: []string{"vip"}},
			{Email: ptr.To("ben@shop.example"), Source: customer.SourceStore},
			{Email: ptr.To("cat_1@other.example"), Source: customer.SourceStore, Tags: []string{"vip"}},
			{Email: ptr.To("cat11@other.example"), Source: customer.SourceImport},
		} {
			_, _, err := customer.Upsert(ctx, db, t0.Add(time.Duration(i)*24*time.Hour), p)
			require.NoError(t, err)
		}
		emails := func(p customer.Page) []string {
			var out []string
			for _, c := range p.Customers {
				out = append(out, *c.Email)
			}
			return out
		}
		p, err := customer.List(ctx, db, customer.Filter{Source: customer.SourceStore}, 10, "")
		require.NoError(t, err)
		require.Equal(t, []string{"ben@shop.example", "cat_1@other.example"}, emails(p))

		p, err = customer.List(ctx, db, customer.Filter{Tag: "vip"}, 10, "")
		require.NoError(t, err)
		require.Equal(t, []string{"ann@shop.example", "cat_1@other.example"}, emails(p))

		p, err = customer.List(ctx, db, customer.Filter{EmailContains: "CAT_"}, 10, "")
		require.NoError(t, err)
		require.Equal(t, []string{"cat_1@other.example"}, emails(p), "_ is matched literally")

		after := t0.Add(36 * time.Hour)
		p, err = customer.List(ctx, db, customer.Filter{CreatedAfter: &after}, 10, "")
		require.NoError(t, err)
		require.Equal(t, []string{"cat_1@other.example", "cat11@other.example"}, emails(p))

		p, err = customer.List(ctx, db, customer.Filter{}, 3, "")
		require.NoError(t, err)
		require.True(t, p.HasNextPage)
		p2, err := customer.List(ctx, db, customer.Filter{}, 3, p.EndCursor)
		require.NoError(t, err)
		require.False(t, p2.HasNextPage)
		require.Equal(t, []string{"cat11@other.example"}, emails(p2))

		_, err = customer.List(ctx, db, customer.Filter{}, 3, "garbage")
		require.ErrorContains(t, err, "invalid cursor")
	})
}

func TestAppendEventIdempotent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		c, _, err := customer.Upsert(ctx, db, t0, customer.Profile{Email: ptr.To("ev@example.com")})
		require.NoError(t, err)
		in := customer.EventInput{Type: "page.viewed", OccurredAt: t0, Properties: map[string]any{"path": "/"}, IdempotencyKey: "k1"}
		e1, inserted, err := customer.AppendEvent(ctx, db, t0, c.PK, in)
		require.NoError(t, err)
		require.True(t, inserted)
		e2, inserted, err := customer.AppendEvent(ctx, db, t0, c.PK, in)
		require.NoError(t, err)
		require.False(t, inserted)
		require.Equal(t, e1.ID, e2.ID)
		_, _, err = customer.AppendEvent(ctx, db, t0, c.PK, customer.EventInput{Type: "Bad Type"})
		require.ErrorContains(t, err, "only lower-case")

		_, _, err = customer.AppendEvent(ctx, db, t0, c.PK, customer.EventInput{Type: "order.created", OccurredAt: t0.Add(time.Hour)})
		require.NoError(t, err)
		page, err := customer.ListEvents(ctx, db, c.PK, "", 10, "")
		require.NoError(t, err)
		require.Len(t, page.Events, 2)
		require.Equal(t, "order.created", page.Events[0].Type, "newest first")
		require.Equal(t, map[string]any{"path": "/"}, page.Events[1].Properties)
		require.True(t, page.Events[1].OccurredAt.Equal(t0))
		page, err = customer.ListEvents(ctx, db, c.PK, "page.viewed", 10, "")
		require.NoError(t, err)
		require.Len(t, page.Events, 1)
	})
}
