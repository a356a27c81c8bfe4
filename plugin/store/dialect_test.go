package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/store"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

func TestDialectHelpers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		pg := store.DialectOf(db.DB) == store.Postgres

		q := db.NewSelect().Table("customers").Column("id")
		lock, claim := store.ForUpdate(q).String(), store.SkipLocked(db.NewSelect().Table("customers").Column("id")).String()
		if pg {
			require.Contains(t, lock, "FOR UPDATE")
			require.Contains(t, claim, "FOR UPDATE SKIP LOCKED")
		} else {
			require.NotContains(t, lock, "FOR UPDATE")
			require.NotContains(t, claim, "FOR UPDATE")
		}
		require.Equal(t, pg, store.Arrays(db.DB))
		require.Equal(t, pg, store.ConcurrentWriters(db.DB))
		require.Equal(t, pg, store.Copy(db.DB))

		require.NoError(t, db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if err := store.SetLocal(ctx, tx, "jit = off"); err != nil {
				return err
			}
			return store.Analyze(ctx, tx, "customers")
		}))

		for _, body := range []string{`{"email":"ann@shop.example"}`, `{"email":"bob@shop.example"}`} {
			_, err := db.NewRaw(`INSERT INTO inbound_events (source, topic, dedupe_key, body, received_at, next_attempt_at)
				VALUES (?, ?, ?, ?, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`, "test", "t", body, []byte(body)).Exec(ctx)
			require.NoError(t, err)
		}
		var keys []string
		require.NoError(t, db.NewSelect().Table("inbound_events").Column("dedupe_key").
			Where(store.BytesContain(db.DB, "body"), "ann@shop.example").Scan(ctx, &keys))
		require.Equal(t, []string{`{"email":"ann@shop.example"}`}, keys)
	})
}
