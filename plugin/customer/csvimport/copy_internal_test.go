package csvimport

import (
	"context"
	"testing"
	"time"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
	"github.com/stretchr/testify/require"
)

// The COPY of new customers runs on the connection that holds the batch
// transaction, so rolling the batch back removes the copied rows too: a
// failed batch leaves nothing behind and its retry cannot insert twice.
func TestCopyRunsInsideTheBatchTransaction(t *testing.T) {
	db := storetest.Postgres(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	w, err := newWriter(ctx, db.DB, Options{}.withDefaults())
	require.NoError(t, err)
	defer w.close()

	tx, err := w.conn.BeginTx(ctx, nil)
	require.NoError(t, err)
	news := []newCustomer{{publicID: customer.NewPublicID(), email: "Tab\tand\\back@example.com", norm: "x@example.com",
		firstName: "Line\nbreak", consent: customer.ConsentUnknown, consentProof: []byte("{}"),
		attributes: attrsJSON([]attr{{key: "k\"ey", value: "v\\a\tl\u0001"}}), tags: tagsJSON([]string{"a", "b"}), createdAt: now}}
	require.NoError(t, copyNew(ctx, w.conn, news, now, "import"))
	var n int
	require.NoError(t, tx.NewRaw("SELECT count(*) FROM customers").Scan(ctx, &n))
	require.Equal(t, 1, n, "the copied row is visible inside the transaction")
	require.NoError(t, tx.Rollback())
	require.NoError(t, db.NewRaw("SELECT count(*) FROM customers").Scan(ctx, &n))
	require.Zero(t, n, "the rollback removed the copied row")

	// Committed, every special character comes back as it went in.
	tx, err = w.conn.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, copyNew(ctx, w.conn, news, now, "import"))
	require.NoError(t, tx.Commit())
	c, err := customer.GetByEmail(ctx, db, "x@example.com")
	require.NoError(t, err)
	require.Equal(t, "Tab\tand\\back@example.com", *c.Email)
	require.Equal(t, "Line\nbreak", *c.FirstName)
	require.Equal(t, map[string]any{"k\"ey": "v\\a\tl\u0001"}, c.Attributes)
	require.Equal(t, []string{"a", "b"}, c.Tags)
	require.True(t, now.Equal(c.CreatedAt))
}
