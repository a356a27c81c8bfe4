package segment_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/segment"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

func eventsOf(t *testing.T, db bun.IDB, pk int64, typ string) []*customer.Event {
	t.Helper()
	var out []*customer.Event
	require.NoError(t, db.NewSelect().Model(&out).Where("customer_id = ? AND type = ?", pk, typ).Order("id").Scan(context.Background()))
	return out
}

func sunsetCustomer(t *testing.T, db bun.IDB, name string) *customer.Customer {
	t.Helper()
	created := now.Add(-200 * 24 * time.Hour)
	c := &customer.Customer{PublicID: name, Source: "online", ConsentState: "subscribed", ConsentProof: map[string]any{},
		Attributes: map[string]any{}, Preferences: map[string]any{}, Tags: []string{}, Stage: "SUBSCRIBER",
		ObservedSince: &created, CreatedAt: created, UpdatedAt: created}
	_, err := db.NewInsert().Model(c).Exec(context.Background())
	require.NoError(t, err)
	return c
}

// TestSunsetSparesAnImportedBase: customers who signed up two years ago
// but were imported (or first synced) a week ago have no open history in
// Refrain; the seeded sunset segment counts its 3 months from when Refrain
// started observing them, not from the store sign-up.
func TestSunsetSparesAnImportedBase(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		sunset, err := segment.GetByName(ctx, db, "sunset")
		require.NoError(t, err)
		imported := sunsetCustomer(t, db, "imported")
		week := now.Add(-7 * 24 * time.Hour)
		_, err = db.NewUpdate().Model(imported).Set("created_at = ?", now.Add(-730*24*time.Hour)).
			Set("observed_since = ?", week).WherePK().Exec(ctx)
		require.NoError(t, err)
		watched := sunsetCustomer(t, db, "watched")
		ch, err := segment.Sweep(ctx, db, now)
		require.NoError(t, err)
		require.Equal(t, []segment.Change{{SegmentID: sunset.ID, CustomerPK: watched.PK, Entered: true}}, ch)
		member, known, err := segment.IsMember(ctx, db, "sunset", imported.PK)
		require.NoError(t, err)
		require.True(t, known)
		require.False(t, member)
		member, _, err = segment.IsMember(ctx, db, "sunset", watched.PK)
		require.NoError(t, err)
		require.True(t, member)
	})
}

func TestMembershipEntersAndExitsOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		sunset, err := segment.GetByName(ctx, db, "sunset")
		require.NoError(t, err, "the migration seeds the sunset segment")
		require.NoError(t, segment.Check(sunset.Rule))
		c := sunsetCustomer(t, db, "old")
		recent := sunsetCustomer(t, db, "recent")
		_, err = db.NewUpdate().Model(recent).Set("last_open_at = ?", now.Add(-24*time.Hour)).WherePK().Exec(ctx)
		require.NoError(t, err)

		ch, err := segment.Sweep(ctx, db, now)
		require.NoError(t, err)
		require.Equal(t, []segment.Change{{SegmentID: sunset.ID, CustomerPK: c.PK, Entered: true}}, ch)
		ch, err = segment.Sweep(ctx, db, now)
		require.NoError(t, err)
		require.Empty(t, ch, "a second sweep changes nothing")
		ev := eventsOf(t, db, c.PK, segment.EventEntered)
		require.Len(t, ev, 1)
		require.Equal(t, "sunset", ev[0].Properties["segment"])
		require.EqualValues(t, sunset.ID, ev[0].Properties["segment_id"])
		n, err := segment.CountMembers(ctx, db, sunset.ID)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		of, err := segment.Of(ctx, db, c.PK)
		require.NoError(t, err)
		require.Len(t, of, 1)

		// An order: refresh takes the customer out, once.
		_, err = db.NewUpdate().Model(c).Set("last_order_at = ?", now).Set("orders_count = 1").WherePK().Exec(ctx)
		require.NoError(t, err)
		later := now.Add(time.Minute)
		ch, err = segment.Refresh(ctx, db, later, c.PK)
		require.NoError(t, err)
		require.Equal(t, []segment.Change{{SegmentID: sunset.ID, CustomerPK: c.PK, Entered: false}}, ch)
		ch, err = segment.Refresh(ctx, db, later, c.PK)
		require.NoError(t, err)
		require.Empty(t, ch)
		require.Len(t, eventsOf(t, db, c.PK, segment.EventExited), 1)
		stays, err := segment.History(ctx, db, sunset.ID, c.PK)
		require.NoError(t, err)
		require.Len(t, stays, 1)
		require.NotNil(t, stays[0].ExitedAt)
		require.True(t, stays[0].ExitedAt.Equal(later))
	})
}

// TestTwoReplicasExitOnce: two replicas (separate connection pools) refresh
// and sweep the same customer at once after an order; one exit, one event.
func TestTwoReplicasExitOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		other := db.Reopen(t)
		for round := 0; round < 5; round++ {
			c := sunsetCustomer(t, db, "r"+string(rune('0'+round)))
			_, err := segment.Refresh(ctx, db, now, c.PK)
			require.NoError(t, err)
			require.Len(t, eventsOf(t, db, c.PK, segment.EventEntered), 1)
			_, err = db.NewUpdate().Model(c).Set("last_order_at = ?", now).WherePK().Exec(ctx)
			require.NoError(t, err)
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i, r := range []bun.IDB{db, other, db, other} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						if i%2 == 0 {
							_, errs[i] = segment.Refresh(ctx, r, now, c.PK)
						} else {
							_, errs[i] = segment.Sweep(ctx, r, now)
						}
						if !busy(errs[i]) {
							return
						}
					}
				}()
			}
			wg.Wait()
			require.NoError(t, errors.Join(errs...))
			require.Len(t, eventsOf(t, db, c.PK, segment.EventExited), 1)
			require.Len(t, eventsOf(t, db, c.PK, segment.EventEntered), 1)
		}
	})
}

// busy reports an SQLite lock error, which a second writer may meet; the
// replica retries as the sweep worker would on its next pass.
func busy(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "SQLITE_BUSY") || strings.Contains(err.Error(), "database is locked"))
}

func TestUpsertChecksRule(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		_, err := segment.Upsert(ctx, db, now, 0, "bad", `orders_count == "x"`)
		var e *segment.Error
		require.ErrorAs(t, err, &e)
		s, err := segment.Upsert(ctx, db, now, 0, "vip", `has(tags, "vip")`)
		require.NoError(t, err)
		s2, err := segment.Upsert(ctx, db, now.Add(time.Hour), s.ID, "vips", `has(tags, "vip") && orders_count > 0`)
		require.NoError(t, err)
		require.Equal(t, "vips", s2.Name)
		require.True(t, s2.CreatedAt.Equal(now))
		require.NoError(t, segment.Delete(ctx, db, s.ID))
		require.ErrorIs(t, segment.Delete(ctx, db, s.ID), segment.ErrNotFound)
	})
}
