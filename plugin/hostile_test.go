package plugin_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/refrain-dev/refrain/plugin"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
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

// A customer token cannot send the events Refrain writes itself (an order,
// a segment entry, a lifecycle change); an admin write key can.
func TestReservedEventTypesNeedAnAdminKey(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		e := newEnv(t, db, nil)
		_, _, err := customer.Upsert(context.Background(), db, t0, customer.Profile{ExternalID: ptr("gid://shopify/Customer/7"),
			ExternalSource: ptr("shopify"), Email: ptr("eve@example.com")})
		require.NoError(t, err)
		tok := e.customerToken("gid://shopify/Customer/7", time.Hour, testJWTSecret)
		track := func(bearer, typ string) string {
			res := e.do(bearer, `mutation { refrain { trackEvent(input: {customerId: "gid://shopify/Customer/7", type: "`+typ+`"}) { userErrors { message } } } }`, nil)
			require.Empty(t, res.Errors, "%+v", res.Errors)
			return string(res.Data)
		}
		for _, typ := range []string{"cart.abandoned", "order.created", "lifecycle.stage_changed", "segment.entered", "email.clicked", "scenario.exited"} {
			require.Contains(t, track(tok, typ), "written by Refrain itself", typ)
		}
		require.NotContains(t, track(tok, "viewed_size_guide"), "written by Refrain")
		require.Contains(t, track(testBootstrapKey, "order.created"), `"userErrors":[]`)
		var n int
		require.NoError(t, db.NewSelect().Table("customer_events").ColumnExpr("count(*)").
			Where("type IN (?)", bun.In([]string{"cart.abandoned", "lifecycle.stage_changed", "segment.entered"})).Scan(context.Background(), &n))
		require.Zero(t, n)
	})
}
