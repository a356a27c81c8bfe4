package auth_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/auth"
)

func TestZeroPrincipalIsAnonymous(t *testing.T) {
	p := auth.FromContext(context.Background())
	require.Equal(t, auth.Anonymous, p.Kind)
	require.True(t, p.IsAnonymous())
	require.False(t, p.IsAdmin())
	require.False(t, p.Can(auth.ScopeRead))
	require.False(t, p.IsCustomer(""))
	require.Equal(t, "anonymous", p.Kind.String())
}

func TestContextCarriesPrincipal(t *testing.T) {
	want := auth.Principal{Kind: auth.Customer, CustomerID: "c1"}
	got := auth.FromContext(auth.WithPrincipal(t.Context(), want))
	require.Equal(t, want, got)
}

func TestCanAppliesScopes(t *testing.T) {
	for _, tc := range []struct {
		name        string
		p           auth.Principal
		read, write bool
	}{
		{"read only", auth.Principal{Kind: auth.Admin, Scopes: []auth.Scope{auth.ScopeRead}}, true, false},
		{"write implies read", auth.Principal{Kind: auth.Admin, Scopes: []auth.Scope{auth.ScopeWrite}}, true, true},
		{"both", auth.Principal{Kind: auth.Admin, Scopes: auth.AllScopes()}, true, true},
		{"admin without scopes", auth.Principal{Kind: auth.Admin}, false, false},
		{"customer", auth.Principal{Kind: auth.Customer, CustomerID: "c1", Scopes: auth.AllScopes()}, false, false},
		{"anonymous", auth.Principal{Scopes: auth.AllScopes()}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.read, tc.p.Can(auth.ScopeRead), "read")
			require.Equal(t, tc.write, tc.p.Can(auth.ScopeWrite), "write")
			require.False(t, tc.p.Can(auth.Scope("admin")), "unknown scope")
		})
	}
}

func TestIsCustomerMatchesOnlyOwnID(t *testing.T) {
	p := auth.Principal{Kind: auth.Customer, CustomerID: "c1"}
	require.True(t, p.IsCustomer("c1"))
	require.False(t, p.IsCustomer("c2"))
	require.False(t, p.IsCustomer(""))
	require.False(t, p.IsAdmin())

	admin := auth.Principal{Kind: auth.Admin, CustomerID: "c1", Scopes: auth.AllScopes()}
	require.False(t, admin.IsCustomer("c1"), "an admin is not a customer")
	require.True(t, admin.IsAdmin())

	require.False(t, auth.Principal{Kind: auth.Customer}.IsCustomer(""), "an empty ID never matches")
}

func TestParseScopes(t *testing.T) {
	got, err := auth.ParseScopes("read,write")
	require.NoError(t, err)
	require.Equal(t, []auth.Scope{auth.ScopeRead, auth.ScopeWrite}, got)

	got, err = auth.ParseScopes(" WRITE , read,write,")
	require.NoError(t, err)
	require.Equal(t, []auth.Scope{auth.ScopeWrite, auth.ScopeRead}, got)
	require.Equal(t, "write,read", auth.FormatScopes(got))

	_, err = auth.ParseScopes("read,admin")
	var unknown *auth.UnknownScopeError
	require.True(t, errors.As(err, &unknown))
	require.Equal(t, "admin", unknown.Scope)
	require.EqualError(t, err, `unknown scope "admin" (valid scopes: read, write)`)

	_, err = auth.ParseScopes(" , ")
	require.ErrorContains(t, err, "no scope given")
}
