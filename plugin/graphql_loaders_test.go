package plugin_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

// TestListsQueryConstantSQL counts the SQL statements of a page of
// campaigns and customers with their nested fields: the dataloaders answer
// every parent of a page at once, so a page of 50 costs what a page of 5
// does. Covered: Campaign audienceCount, sentCount, skippedCount,
// pendingCount; Customer segments, enrollments, hygiene and carts.
func TestListsQueryConstantSQL(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		e := newEnv(t, db, nil)
		ctx := context.Background()
		for i := 0; i < 50; i++ {
			_, _, err := customer.Upsert(ctx, db, t0, customer.Profile{Email: ptr(fmt.Sprintf("c%d@example.com", i)), Tags: []string{"vip"}})
			require.NoError(t, err)
			in := map[string]any{"name": fmt.Sprintf("c%d", i), "template": "welcome"}
			if i%2 == 0 {
				in["segment"] = "tag:vip"
			}
			res := e.do(testBootstrapKey, createCampaignMutation, map[string]any{"in": in})
			require.Empty(t, res.Errors)
		}
		counter := storetest.CountQueries(db.DB)
		q := `query($n: Int!) { refrain {
			campaigns(first: $n) { nodes { id audienceCount sentCount skippedCount pendingCount } }
			customers(first: $n) { nodes { id profile { email } lifecycle { stage } consent { state }
				segments { id } enrollments { id } hygiene { status } carts { status } } } } }`
		run := func(n int) (int64, string) {
			counter.Start()
			res := e.do(testBootstrapKey, q, map[string]any{"n": n})
			queries := counter.Stop()
			require.Empty(t, res.Errors)
			return queries, string(res.Data)
		}
		q5, _ := run(5)
		q50, data := run(50)
		t.Logf("SQL statements: page of 5: %d, page of 50: %d", q5, q50)
		require.Equal(t, q5, q50, "same number of SQL statements for a page of 5 and of 50")
		require.Contains(t, data, "c49@example.com")
	})
}
