package plugin_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/refrain-dev/refrain/plugin"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
	"github.com/stretchr/testify/require"
)

// An anonymous subscribe for a known address changes nothing of the
// customer's profile, and answers as it does for a new address.
func TestAnonymousSubscribeNeverOverwritesAProfile(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		e := newEnv(t, db, nil)
		ctx := context.Background()
		_, _, err := customer.Upsert(ctx, db, t0, customer.Profile{Email: ptr("victim@example.com"),
			FirstName: ptr("Ann"), Locale: ptr("en")})
		require.NoError(t, err)
		sub := func(email string) string {
			res := e.do("", `mutation { refrain { subscribe(input: {email: "`+email+`", firstName: "Your account is locked, call +1-555-0100", locale: "fr"}) { state userErrors { message } } } }`, nil)
			require.Empty(t, res.Errors, "%+v", res.Errors)
			return string(res.Data)
		}
		require.Equal(t, sub("newcomer@example.com"), sub("victim@example.com"))
		c, err := customer.GetByEmail(ctx, db, "victim@example.com")
		require.NoError(t, err)
		require.Equal(t, "Ann", *c.FirstName)
		require.Equal(t, "en", *c.Locale)
		require.Equal(t, customer.ConsentPending, c.ConsentState)
		// The newcomer keeps what they typed.
		n, err := customer.GetByEmail(ctx, db, "newcomer@example.com")
		require.NoError(t, err)
		require.Equal(t, "fr", *n.Locale)
	})
}

// The README's production settings, as a set: introspection and GraphiQL
// off, the dashboard on. _service still answers, so a gateway composes,
// while __schema stays refused.
func TestProductionSettingsServeTheSDL(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), func(c *plugin.Config) {
		c.Introspection = false
		c.GraphiQL = false
	})
	rec := httptest.NewRecorder()
	e.p.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/dashboard", nil))
	require.NotEqual(t, http.StatusNotFound, rec.Code, "the dashboard stays on (it asks for a key)")
	res := e.do("", `{ __schema { types { name } } }`, nil)
	require.Equal(t, []string{"INTROSPECTION_DISABLED"}, res.codes())
	res = e.do("", `{ __type(name: "Customer") { name } _service { sdl } }`, nil)
	require.NotEmpty(t, res.Errors)
	var out struct {
		Service struct{ SDL string } `json:"_service"`
	}
	e.do("", `{ _service { sdl } }`, nil).decode(t, &out)
	require.Contains(t, out.Service.SDL, `type Customer @key(fields: "id")`)

	requireNode(t)
	path := filepath.Join(t.TempDir(), "refrain.graphql")
	require.NoError(t, os.WriteFile(path, []byte(out.Service.SDL), 0o600))
	cmd := exec.Command("node", "compose.mjs", "store=store.graphql", "refrain="+path)
	cmd.Dir = "../e2e/federation"
	outb, err := cmd.CombinedOutput()
	require.NoError(t, err, "composition failed:\n%s", outb)
}
