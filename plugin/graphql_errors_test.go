package plugin_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/99designs/gqlgen/client"
	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

// TestStorageErrorsAreInternal breaks the database under the real handler:
// the caller sees INTERNAL_SERVER_ERROR with the request id, never the SQL
// or the driver's text, while a bad cursor stays BAD_USER_INPUT.
func TestStorageErrorsAreInternal(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		e := newEnv(t, db, nil)

		res := e.do(testBootstrapKey, `{ refrain { campaigns(after: "not-a-cursor") { nodes { id } } } }`, nil)
		require.Equal(t, []string{"BAD_USER_INPUT"}, res.codes())
		require.Contains(t, res.Errors[0].Message, "invalid cursor")

		_, err := db.DB.ExecContext(context.Background(), "DROP TABLE campaign_recipients")
		require.NoError(t, err)
		_, err = db.DB.ExecContext(context.Background(), "DROP TABLE campaigns")
		require.NoError(t, err)

		for _, q := range []string{
			`{ refrain { campaigns { nodes { id } } } }`,
			`{ refrain { campaign(id: "x") { id } } }`,
		} {
			resp, err := e.client.RawPost(q, client.AddHeader("Authorization", "Bearer "+testBootstrapKey),
				client.AddHeader("X-Request-Id", "req-test-42"))
			require.NoError(t, err)
			raw, err := json.Marshal(resp)
			require.NoError(t, err)
			var out gqlResult
			require.NoError(t, json.Unmarshal(raw, &out))
			require.Equal(t, []string{"INTERNAL_SERVER_ERROR"}, out.codes(), q)
			require.Equal(t, "internal error", out.Errors[0].Message)
			require.Equal(t, "req-test-42", out.Errors[0].Extensions["requestId"])
			require.Equal(t, map[string]any{"code": "INTERNAL_SERVER_ERROR", "requestId": "req-test-42"}, out.Errors[0].Extensions)
			require.NotContains(t, string(raw), "SELECT")
			require.NotContains(t, string(raw), "no such table")
			require.NotContains(t, string(raw), "does not exist")
		}

		// Without a request id header the server makes one.
		res = e.do(testBootstrapKey, `{ refrain { campaigns { nodes { id } } } }`, nil)
		require.Equal(t, []string{"INTERNAL_SERVER_ERROR"}, res.codes())
		id, _ := res.Errors[0].Extensions["requestId"].(string)
		require.Len(t, id, 16)
	})
}
