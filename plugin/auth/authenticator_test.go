package auth_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/auth"
	"github.com/refrain-dev/refrain/plugin/clock"
)

// fakeKeys is an in-memory KeyLookup.
type fakeKeys struct {
	records map[string]auth.APIKeyRecord
	err     error // returned for every lookup when set
	lookups int
}

func (f *fakeKeys) LookupAPIKey(_ context.Context, prefix string) (auth.APIKeyRecord, error) {
	f.lookups++
	if f.err != nil {
		return auth.APIKeyRecord{}, f.err
	}
	rec, ok := f.records[prefix]
	if !ok {
		return auth.APIKeyRecord{}, fmt.Errorf("load key %s: %w", prefix, auth.ErrAPIKeyNotFound)
	}
	return rec, nil
}

// add stores a new key and returns its plaintext.
func (f *fakeKeys) add(t *testing.T, id string, scopes []auth.Scope, revokedAt *time.Time) string {
	t.Helper()
	plaintext, prefix, hash, err := auth.GenerateAPIKey()
	require.NoError(t, err)
	f.records[prefix] = auth.APIKeyRecord{ID: id, Name: "key " + id, Hash: hash, Scopes: scopes, RevokedAt: revokedAt}
	return plaintext
}

const bootstrapKey = "bootstrap-admin-key-of-enough-length-42"

type fixture struct {
	a     *auth.Authenticator
	keys  *fakeKeys
	clock *clock.Virtual
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	clk := clock.NewVirtual(t0)
	keys := &fakeKeys{records: map[string]auth.APIKeyRecord{}}
	v, err := auth.NewJWTVerifier(auth.JWTOptions{Secret: testSecret, Clock: clk})
	require.NoError(t, err)
	a, err := auth.NewAuthenticator(auth.AuthenticatorOptions{Keys: keys, JWT: v, BootstrapKey: bootstrapKey, Clock: clk})
	require.NoError(t, err)
	return fixture{a: a, keys: keys, clock: clk}
}

func requireUnauthenticated(t *testing.T, p auth.Principal, err error) {
	t.Helper()
	require.ErrorIs(t, err, auth.ErrUnauthenticated)
	require.Equal(t, auth.Principal{}, p)
}

func TestAuthenticateWithoutCredentialsIsAnonymous(t *testing.T) {
	f := newFixture(t)
	for _, header := range []string{"", "  "} {
		p, err := f.a.Authenticate(t.Context(), header)
		require.NoError(t, err)
		require.True(t, p.IsAnonymous())
	}
}

func TestAuthenticateRejectsOtherSchemes(t *testing.T) {
	f := newFixture(t)
	for _, header := range []string{"Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "Token " + bootstrapKey, bootstrapKey} {
		p, err := f.a.Authenticate(t.Context(), header)
		requireUnauthenticated(t, p, err)
	}
}

func TestAuthenticateAPIKeys(t *testing.T) {
	f := newFixture(t)
	reader := f.keys.add(t, "k-read", []auth.Scope{auth.ScopeRead}, nil)
	writer := f.keys.add(t, "k-write", []auth.Scope{auth.ScopeWrite}, nil)

	p, err := f.a.Authenticate(t.Context(), "Bearer "+reader)
	require.NoError(t, err)
	require.Equal(t, auth.Principal{Kind: auth.Admin, KeyID: "k-read", Scopes: []auth.Scope{auth.ScopeRead}}, p)
	require.True(t, p.IsAdmin())
	require.True(t, p.Can(auth.ScopeRead))
	require.False(t, p.Can(auth.ScopeWrite), "a read key cannot write")

	p, err = f.a.Authenticate(t.Context(), "bearer "+writer)
	require.NoError(t, err, "the scheme is case-insensitive")
	require.Equal(t, "k-write", p.KeyID)
	require.True(t, p.Can(auth.ScopeWrite))
	require.True(t, p.Can(auth.ScopeRead), "write implies read")
}

func TestAuthenticateRejectsRevokedKeys(t *testing.T) {
	f := newFixture(t)
	past := t0.Add(-time.Hour)
	future := t0.Add(time.Hour)
	revoked := f.keys.add(t, "k-revoked", auth.AllScopes(), &past)
	scheduled := f.keys.add(t, "k-scheduled", auth.AllScopes(), &future)

	p, err := f.a.Authenticate(t.Context(), "Bearer "+revoked)
	requireUnauthenticated(t, p, err)
	require.ErrorContains(t, err, "revoked")

	p, err = f.a.Authenticate(t.Context(), "Bearer "+scheduled)
	require.NoError(t, err, "a revocation in the future has not happened yet")
	require.Equal(t, "k-scheduled", p.KeyID)

	f.clock.Set(future)
	p, err = f.a.Authenticate(t.Context(), "Bearer "+scheduled)
	requireUnauthenticated(t, p, err)
}

func TestAuthenticateRejectsUnknownAndWrongKeys(t *testing.T) {
	f := newFixture(t)
	stored := f.keys.add(t, "k1", auth.AllScopes(), nil)
	unknown, _, _, err := auth.GenerateAPIKey()
	require.NoError(t, err)
	other, _, _, err := auth.GenerateAPIKey()
	require.NoError(t, err)
	wrongSecret := stored[:13] + other[13:] // right prefix, another secret

	p, err := f.a.Authenticate(t.Context(), "Bearer "+unknown)
	requireUnauthenticated(t, p, err)
	require.ErrorIs(t, err, auth.ErrAPIKeyNotFound)

	p, err = f.a.Authenticate(t.Context(), "Bearer "+wrongSecret)
	requireUnauthenticated(t, p, err)
	require.ErrorContains(t, err, "wrong secret")

	lookups := f.keys.lookups
	p, err = f.a.Authenticate(t.Context(), "Bearer rfn_notakey")
	requireUnauthenticated(t, p, err)
	require.Equal(t, lookups, f.keys.lookups, "a malformed key is not looked up")
}

func TestAuthenticateReportsStorageFailureAsInternal(t *testing.T) {
	f := newFixture(t)
	key := f.keys.add(t, "k1", auth.AllScopes(), nil)
	f.keys.err = errors.New("connection refused")

	_, err := f.a.Authenticate(t.Context(), "Bearer "+key)
	require.ErrorContains(t, err, "connection refused")
	require.NotErrorIs(t, err, auth.ErrUnauthenticated)
}

func TestAuthenticateBootstrapKey(t *testing.T) {
	f := newFixture(t)
	p, err := f.a.Authenticate(t.Context(), "Bearer "+bootstrapKey)
	require.NoError(t, err)
	require.Equal(t, auth.Principal{Kind: auth.Admin, KeyID: auth.BootstrapKeyID, Scopes: auth.AllScopes()}, p)
	require.True(t, p.Can(auth.ScopeRead))
	require.True(t, p.Can(auth.ScopeWrite))
	require.Zero(t, f.keys.lookups)

	p, err = f.a.Authenticate(t.Context(), "Bearer "+bootstrapKey[:len(bootstrapKey)-1])
	requireUnauthenticated(t, p, err)

	// The bootstrap key may itself use the rfn_ format.
	generated, _, _, err := auth.GenerateAPIKey()
	require.NoError(t, err)
	a, err := auth.NewAuthenticator(auth.AuthenticatorOptions{BootstrapKey: generated})
	require.NoError(t, err)
	p, err = a.Authenticate(t.Context(), "Bearer "+generated)
	require.NoError(t, err)
	require.Equal(t, auth.BootstrapKeyID, p.KeyID)

	// Without a bootstrap key or a key store, no key is accepted.
	none, err := auth.NewAuthenticator(auth.AuthenticatorOptions{})
	require.NoError(t, err)
	p, err = none.Authenticate(t.Context(), "Bearer "+generated)
	requireUnauthenticated(t, p, err)

	_, err = auth.NewAuthenticator(auth.AuthenticatorOptions{BootstrapKey: "admin"})
	require.ErrorContains(t, err, "REFRAIN_ADMIN_API_KEY")
}

func TestAuthenticateCustomerTokens(t *testing.T) {
	f := newFixture(t)
	token := sign(t, jwt.SigningMethodHS256, "", testSecret, claimsFor("cust_7"))

	p, err := f.a.Authenticate(t.Context(), "Bearer "+token)
	require.NoError(t, err)
	require.Equal(t, auth.Principal{Kind: auth.Customer, CustomerID: "cust_7"}, p)
	require.True(t, p.IsCustomer("cust_7"))
	require.False(t, p.IsCustomer("cust_8"))
	require.False(t, p.Can(auth.ScopeRead))

	f.clock.Advance(2 * time.Hour)
	p, err = f.a.Authenticate(t.Context(), "Bearer "+token)
	requireUnauthenticated(t, p, err)
	require.ErrorIs(t, err, auth.ErrTokenExpired)

	forged := sign(t, jwt.SigningMethodHS256, "", []byte("fedcba9876543210fedcba9876543210"), claimsFor("cust_7"))
	p, err = f.a.Authenticate(t.Context(), "Bearer "+forged)
	requireUnauthenticated(t, p, err)
	require.ErrorIs(t, err, auth.ErrTokenInvalid)

	none := sign(t, jwt.SigningMethodNone, "", jwt.UnsafeAllowNoneSignatureType, claimsFor("cust_7"))
	p, err = f.a.Authenticate(t.Context(), "Bearer "+none)
	requireUnauthenticated(t, p, err)

	noJWT, err := auth.NewAuthenticator(auth.AuthenticatorOptions{Keys: f.keys})
	require.NoError(t, err)
	p, err = noJWT.Authenticate(t.Context(), "Bearer "+token)
	requireUnauthenticated(t, p, err)
}

func TestMiddlewarePutsPrincipalOrErrorInContext(t *testing.T) {
	f := newFixture(t)
	key := f.keys.add(t, "k1", []auth.Scope{auth.ScopeRead}, nil)

	var got auth.Principal
	var gotErr error
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := f.a.WithAuthorization(r.Context(), r.Header.Get("Authorization"))
		got = auth.FromContext(ctx)
		gotErr = auth.ErrorFromContext(ctx)
		w.WriteHeader(http.StatusTeapot)
	})
	serve := func(header string) int {
		req := httptest.NewRequest(http.MethodPost, "/graphql", nil)
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}

	require.Equal(t, http.StatusTeapot, serve(""))
	require.True(t, got.IsAnonymous())
	require.NoError(t, gotErr)

	require.Equal(t, http.StatusTeapot, serve("Bearer "+key))
	require.Equal(t, "k1", got.KeyID)
	require.NoError(t, gotErr)

	require.Equal(t, http.StatusTeapot, serve("Bearer rfn_bad"), "the middleware never answers itself")
	require.True(t, got.IsAnonymous())
	require.ErrorIs(t, gotErr, auth.ErrUnauthenticated)
}
