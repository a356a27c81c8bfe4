package plugin_test

import (
	"context"
	"testing"

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
