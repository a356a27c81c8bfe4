package store_test

import (
	"context"
	"sync"
	"testing"

	"github.com/refrain-dev/refrain/plugin/store"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
	"github.com/stretchr/testify/require"
)

func TestParseURL(t *testing.T) {
	cases := []struct {
		in      string
		dialect store.Dialect
		addr    string
		wantErr string
	}{
		{in: "postgres://u@127.0.0.1:5432/db", dialect: store.Postgres, addr: "postgres://u@127.0.0.1:5432/db"},
		{in: "postgresql://u@h/db", dialect: store.Postgres, addr: "postgresql://u@h/db"},
		{in: "sqlite:refrain.db", dialect: store.SQLite, addr: "refrain.db"},
		{in: "sqlite:///tmp/x.db", dialect: store.SQLite, addr: "/tmp/x.db"},
		{in: "file:data/r.db", dialect: store.SQLite, addr: "data/r.db"},
		{in: "refrain.db", dialect: store.SQLite, addr: "refrain.db"},
		{in: "mysql://root@h/db", wantErr: "unsupported database URL scheme"},
		{in: "", wantErr: "empty database URL"},
	}
	for _, c := range cases {
		d, addr, err := store.ParseURL(c.in)
		if c.wantErr != "" {
			require.ErrorContains(t, err, c.wantErr, c.in)
			continue
		}
		require.NoError(t, err, c.in)
		require.Equal(t, c.dialect, d, c.in)
		require.Equal(t, c.addr, addr, c.in)
	}
}

func TestMigrateUpDownStatus(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		m, err := store.NewMigrator(db.DB)
		require.NoError(t, err)

		pending, err := m.Pending(ctx)
		require.NoError(t, err)
		require.Zero(t, pending, "storetest migrates every database")

		status, err := m.Status(ctx)
		require.NoError(t, err)
		require.NotEmpty(t, status)
		for _, s := range status {
			require.True(t, s.Applied, s.Name)
		}

		require.NoError(t, m.Reset(ctx))
		pending, err = m.Pending(ctx)
		require.NoError(t, err)
		require.Equal(t, len(status), pending)
		var n int
		err = db.NewRaw("SELECT count(*) FROM customers").Scan(ctx, &n)
		require.Error(t, err, "customers table must be gone after migrating down")

		applied, err := m.Up(ctx)
		require.NoError(t, err)
		require.Len(t, applied, len(status))
		require.NoError(t, db.NewRaw("SELECT count(*) FROM customers").Scan(ctx, &n))
		require.Zero(t, n)

		again, err := m.Up(ctx)
		require.NoError(t, err)
		require.Empty(t, again, "a second up applies nothing")
	})
}

// Two replicas starting at once on one PostgreSQL: the advisory lock lets one
// migrate while the other waits, then finds nothing left to do.
func TestMigrateConcurrentReplicas(t *testing.T) {
	db := storetest.Postgres(t)
	ctx := context.Background()
	m0, err := store.NewMigrator(db.DB)
	require.NoError(t, err)
	require.NoError(t, m0.Reset(ctx))

	const replicas = 4
	results := make([][]string, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := 0; i < replicas; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			m, err := store.NewMigrator(db.Reopen(t))
			if err != nil {
				errs[i] = err
				return
			}
			results[i], errs[i] = m.Up(ctx)
		}(i)
	}
	wg.Wait()
	total := 0
	for i := range results {
		require.NoError(t, errs[i])
		total += len(results[i])
	}
	status, err := m0.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, len(status), total, "every migration applied exactly once across replicas")
}
