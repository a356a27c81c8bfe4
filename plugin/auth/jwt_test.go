package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/auth"
	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/jwks"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// sign makes a token with the given method, key id and claims.
func sign(t *testing.T, method jwt.SigningMethod, kid string, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

// claimsFor returns valid claims for customer id at t0.
func claimsFor(id any) jwt.MapClaims {
	return jwt.MapClaims{"sub": id, "iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix()}
}

func newHSVerifier(t *testing.T, mutate func(*auth.JWTOptions)) *auth.JWTVerifier {
	t.Helper()
	opts := auth.JWTOptions{Secret: testSecret, Clock: clock.NewVirtual(t0)}
	if mutate != nil {
		mutate(&opts)
	}
	v, err := auth.NewJWTVerifier(opts)
	require.NoError(t, err)
	return v
}

// keyServer is a JWKS endpoint whose keys can be swapped.
type keyServer struct {
	*httptest.Server
	requests atomic.Int64
	mu       sync.Mutex
	keys     []map[string]any
}

func newKeyServer(t *testing.T, keys ...map[string]any) *keyServer {
	t.Helper()
	ks := &keyServer{keys: keys}
	ks.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.requests.Add(1)
		ks.mu.Lock()
		defer ks.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": ks.keys})
	}))
	t.Cleanup(ks.Close)
	return ks
}

func (ks *keyServer) setKeys(keys ...map[string]any) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.keys = keys
}

func (ks *keyServer) set(clk clock.Clock) *jwks.Set {
	return jwks.New(ks.URL, &jwks.Options{HTTPClient: ks.Client(), Clock: clk})
}

var b64 = base64.RawURLEncoding

func rsaJWK(kid string, k *rsa.PublicKey) map[string]any {
	return map[string]any{
		"kty": "RSA", "kid": kid, "use": "sig",
		"n": b64.EncodeToString(k.N.Bytes()),
		"e": b64.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
	}
}

func ecJWK(t *testing.T, kid string, k *ecdsa.PublicKey) map[string]any {
	t.Helper()
	point, err := k.Bytes()
	require.NoError(t, err)
	size := (len(point) - 1) / 2
	return map[string]any{
		"kty": "EC", "kid": kid, "crv": k.Curve.Params().Name,
		"x": b64.EncodeToString(point[1 : 1+size]), "y": b64.EncodeToString(point[1+size:]),
	}
}

// testKeys are generated once: RSA generation is slow.
type testKeys struct {
	rsa1, rsa2 *rsa.PrivateKey
	ec256      *ecdsa.PrivateKey
	ec384      *ecdsa.PrivateKey
}

func newTestKeys(t *testing.T) testKeys {
	t.Helper()
	var k testKeys
	var err error
	k.rsa1, err = rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	k.ec256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	k.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	return k
}

func TestNewJWTVerifierValidatesOptions(t *testing.T) {
	_, err := auth.NewJWTVerifier(auth.JWTOptions{})
	require.ErrorContains(t, err, "REFRAIN_JWT_SECRET")

	_, err = auth.NewJWTVerifier(auth.JWTOptions{Secret: []byte("short")})
	require.ErrorContains(t, err, "at least 32")
}

func TestVerifyHS256(t *testing.T) {
	v := newHSVerifier(t, nil)
	id, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodHS256, "", testSecret, claimsFor("cust_42")))
	require.NoError(t, err)
	require.Equal(t, "cust_42", id)
}

func TestVerifyRejectsExpiredAndNotYetValidTokens(t *testing.T) {
	v := newHSVerifier(t, nil)
	ctx := t.Context()

	expired := claimsFor("c1")
	expired["exp"] = t0.Add(-time.Minute).Unix()
	_, err := v.Verify(ctx, sign(t, jwt.SigningMethodHS256, "", testSecret, expired))
	require.ErrorIs(t, err, auth.ErrTokenExpired)
	require.NotErrorIs(t, err, auth.ErrTokenInvalid)

	withinLeeway := claimsFor("c1")
	withinLeeway["exp"] = t0.Add(-20 * time.Second).Unix()
	id, err := v.Verify(ctx, sign(t, jwt.SigningMethodHS256, "", testSecret, withinLeeway))
	require.NoError(t, err, "30 s of clock skew are tolerated")
	require.Equal(t, "c1", id)

	early := claimsFor("c1")
	early["nbf"] = t0.Add(5 * time.Minute).Unix()
	_, err = v.Verify(ctx, sign(t, jwt.SigningMethodHS256, "", testSecret, early))
	require.ErrorIs(t, err, auth.ErrTokenInvalid)

	noExp := jwt.MapClaims{"sub": "c1"}
	_, err = v.Verify(ctx, sign(t, jwt.SigningMethodHS256, "", testSecret, noExp))
	require.ErrorIs(t, err, auth.ErrTokenInvalid, "a token without exp is refused")

	strict := newHSVerifier(t, func(o *auth.JWTOptions) { o.Leeway = -1 })
	_, err = strict.Verify(ctx, sign(t, jwt.SigningMethodHS256, "", testSecret, withinLeeway))
	require.ErrorIs(t, err, auth.ErrTokenExpired, "a negative leeway disables the tolerance")
}

func TestVerifyRejectsBadSignatures(t *testing.T) {
	v := newHSVerifier(t, nil)
	ctx := t.Context()

	other := []byte("fedcba9876543210fedcba9876543210")
	_, err := v.Verify(ctx, sign(t, jwt.SigningMethodHS256, "", other, claimsFor("c1")))
	require.ErrorIs(t, err, auth.ErrTokenInvalid)

	// Swap in the payload of another customer's token.
	good := sign(t, jwt.SigningMethodHS256, "", testSecret, claimsFor("c1"))
	forged := strings.Split(sign(t, jwt.SigningMethodHS256, "", other, claimsFor("c2")), ".")
	parts := strings.Split(good, ".")
	_, err = v.Verify(ctx, parts[0]+"."+forged[1]+"."+parts[2])
	require.ErrorIs(t, err, auth.ErrTokenInvalid)

	for _, garbage := range []string{"", "abc", "a.b.c", good + "x"} {
		_, err = v.Verify(ctx, garbage)
		require.ErrorIs(t, err, auth.ErrTokenInvalid, garbage)
	}
}

func TestVerifyRejectsAlgNone(t *testing.T) {
	v := newHSVerifier(t, nil)
	token := sign(t, jwt.SigningMethodNone, "", jwt.UnsafeAllowNoneSignatureType, claimsFor("c1"))
	_, err := v.Verify(t.Context(), token)
	require.ErrorIs(t, err, auth.ErrTokenInvalid)

	// Also with a signature part left in place.
	_, err = v.Verify(t.Context(), token+"c2lnbmF0dXJl")
	require.ErrorIs(t, err, auth.ErrTokenInvalid)
}

func TestVerifyRejectsAlgorithmConfusion(t *testing.T) {
	keys := newTestKeys(t)
	ks := newKeyServer(t, rsaJWK("rsa", &keys.rsa1.PublicKey), ecJWK(t, "p256", &keys.ec256.PublicKey))
	clk := clock.NewVirtual(t0)
	ctx := t.Context()

	der, err := x509.MarshalPKIXPublicKey(&keys.rsa1.PublicKey)
	require.NoError(t, err)
	publicPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})

	jwksOnly, err := auth.NewJWTVerifier(auth.JWTOptions{KeySet: ks.set(clk), Clock: clk})
	require.NoError(t, err)
	secretOnly := newHSVerifier(t, nil)
	both, err := auth.NewJWTVerifier(auth.JWTOptions{Secret: testSecret, KeySet: ks.set(clk), Clock: clk})
	require.NoError(t, err)

	// An HS256 token "signed" with the issuer's public key, the classic attack.
	for _, material := range [][]byte{publicPEM, der, keys.rsa1.N.Bytes()} {
		forged := sign(t, jwt.SigningMethodHS256, "rsa", material, claimsFor("victim"))
		_, err = jwksOnly.Verify(ctx, forged)
		require.ErrorIs(t, err, auth.ErrTokenInvalid)
		_, err = both.Verify(ctx, forged)
		require.ErrorIs(t, err, auth.ErrTokenInvalid)
	}

	// A genuine RS256 token is not for the secret path.
	rs := sign(t, jwt.SigningMethodRS256, "rsa", keys.rsa1, claimsFor("c1"))
	_, err = secretOnly.Verify(ctx, rs)
	require.ErrorIs(t, err, auth.ErrTokenInvalid)
	id, err := both.Verify(ctx, rs)
	require.NoError(t, err)
	require.Equal(t, "c1", id)

	// An HS256 token signed with the real secret is not for the JWKS-only path.
	_, err = jwksOnly.Verify(ctx, sign(t, jwt.SigningMethodHS256, "rsa", testSecret, claimsFor("c1")))
	require.ErrorIs(t, err, auth.ErrTokenInvalid)

	// The algorithm must match the key found by kid: ES256 naming an RSA key,
	// RS256 naming an EC key, ES384 naming a P-256 key.
	_, err = jwksOnly.Verify(ctx, sign(t, jwt.SigningMethodES256, "rsa", keys.ec256, claimsFor("c1")))
	require.ErrorIs(t, err, auth.ErrTokenInvalid)
	_, err = jwksOnly.Verify(ctx, sign(t, jwt.SigningMethodRS256, "p256", keys.rsa1, claimsFor("c1")))
	require.ErrorIs(t, err, auth.ErrTokenInvalid)
	_, err = jwksOnly.Verify(ctx, sign(t, jwt.SigningMethodES384, "p256", keys.ec384, claimsFor("c1")))
	require.ErrorIs(t, err, auth.ErrTokenInvalid)
}

func TestVerifyRS256AndES256ViaJWKS(t *testing.T) {
	keys := newTestKeys(t)
	ks := newKeyServer(t,
		rsaJWK("rsa", &keys.rsa1.PublicKey),
		ecJWK(t, "p256", &keys.ec256.PublicKey),
		ecJWK(t, "p384", &keys.ec384.PublicKey),
	)
	clk := clock.NewVirtual(t0)
	v, err := auth.NewJWTVerifier(auth.JWTOptions{
		KeySet: ks.set(clk), Clock: clk, Issuer: "https://shop.example", Audience: "refrain",
	})
	require.NoError(t, err)
	ctx := t.Context()

	claims := func(id string) jwt.MapClaims {
		c := claimsFor(id)
		c["iss"] = "https://shop.example"
		c["aud"] = []string{"storefront", "refrain"}
		return c
	}
	for _, tc := range []struct {
		method jwt.SigningMethod
		kid    string
		key    any
	}{
		{jwt.SigningMethodRS256, "rsa", keys.rsa1},
		{jwt.SigningMethodPS256, "rsa", keys.rsa1},
		{jwt.SigningMethodES256, "p256", keys.ec256},
		{jwt.SigningMethodES384, "p384", keys.ec384},
	} {
		id, err := v.Verify(ctx, sign(t, tc.method, tc.kid, tc.key, claims("c-"+tc.method.Alg())))
		require.NoError(t, err, tc.method.Alg())
		require.Equal(t, "c-"+tc.method.Alg(), id)
	}
	require.Equal(t, int64(1), ks.requests.Load())

	// Signed by a key the issuer does not publish under that kid.
	_, err = v.Verify(ctx, sign(t, jwt.SigningMethodRS256, "rsa", keys.rsa2, claims("c1")))
	require.ErrorIs(t, err, auth.ErrTokenInvalid)
	// Unknown kid.
	_, err = v.Verify(ctx, sign(t, jwt.SigningMethodRS256, "nope", keys.rsa1, claims("c1")))
	require.ErrorIs(t, err, auth.ErrTokenInvalid)

	wrongIss := claims("c1")
	wrongIss["iss"] = "https://evil.example"
	_, err = v.Verify(ctx, sign(t, jwt.SigningMethodRS256, "rsa", keys.rsa1, wrongIss))
	require.ErrorIs(t, err, auth.ErrTokenInvalid)

	wrongAud := claims("c1")
	wrongAud["aud"] = "someone-else"
	_, err = v.Verify(ctx, sign(t, jwt.SigningMethodRS256, "rsa", keys.rsa1, wrongAud))
	require.ErrorIs(t, err, auth.ErrTokenInvalid)
}

func TestVerifyFollowsJWKSRotation(t *testing.T) {
	keys := newTestKeys(t)
	ks := newKeyServer(t, rsaJWK("2026-01", &keys.rsa1.PublicKey))
	clk := clock.NewVirtual(t0)
	v, err := auth.NewJWTVerifier(auth.JWTOptions{KeySet: ks.set(clk), Clock: clk})
	require.NoError(t, err)
	ctx := t.Context()

	_, err = v.Verify(ctx, sign(t, jwt.SigningMethodRS256, "2026-01", keys.rsa1, claimsFor("c1")))
	require.NoError(t, err)

	ks.setKeys(rsaJWK("2026-01", &keys.rsa1.PublicKey), rsaJWK("2026-02", &keys.rsa2.PublicKey))
	clk.Advance(2 * time.Minute)

	claims := claimsFor("c2")
	claims["exp"] = clk.Now().Add(time.Hour).Unix()
	id, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, "2026-02", keys.rsa2, claims))
	require.NoError(t, err)
	require.Equal(t, "c2", id)
	require.Equal(t, int64(2), ks.requests.Load(), "the new kid caused exactly one refetch")

	id, err = v.Verify(ctx, sign(t, jwt.SigningMethodRS256, "2026-02", keys.rsa2, claims))
	require.NoError(t, err)
	require.Equal(t, "c2", id)
	require.Equal(t, int64(2), ks.requests.Load())
}

func TestVerifyReportsUnreachableKeySetAsInternal(t *testing.T) {
	keys := newTestKeys(t)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	clk := clock.NewVirtual(t0)
	v, err := auth.NewJWTVerifier(auth.JWTOptions{
		KeySet: jwks.New(down.URL, &jwks.Options{HTTPClient: down.Client(), Clock: clk}), Clock: clk,
	})
	require.NoError(t, err)

	_, err = v.Verify(t.Context(), sign(t, jwt.SigningMethodRS256, "rsa", keys.rsa1, claimsFor("c1")))
	require.ErrorContains(t, err, "503")
	require.NotErrorIs(t, err, auth.ErrTokenInvalid)
	require.NotErrorIs(t, err, auth.ErrTokenExpired)
}

func TestVerifyReadsCustomerClaim(t *testing.T) {
	ctx := t.Context()
	custom := newHSVerifier(t, func(o *auth.JWTOptions) { o.CustomerClaim = "customer_id" })

	claims := claimsFor("not-this")
	claims["customer_id"] = "Q3VzdG9tZXI6MTI="
	id, err := custom.Verify(ctx, sign(t, jwt.SigningMethodHS256, "", testSecret, claims))
	require.NoError(t, err)
	require.Equal(t, "Q3VzdG9tZXI6MTI=", id)

	_, err = custom.Verify(ctx, sign(t, jwt.SigningMethodHS256, "", testSecret, claimsFor("c1")))
	require.ErrorIs(t, err, auth.ErrTokenInvalid, "the custom claim is missing")

	v := newHSVerifier(t, nil)
	for raw, want := range map[string]string{
		"7021458964567":        "7021458964567",
		"12345678901234567890": "12345678901234567890", // beyond int64 and float64 precision
		"1e3":                  "1000",
		"42.0":                 "42",
	} {
		id, err := v.Verify(ctx, sign(t, jwt.SigningMethodHS256, "", testSecret, claimsFor(json.Number(raw))))
		require.NoError(t, err, raw)
		require.Equal(t, want, id, raw)
	}
	for name, bad := range map[string]any{
		"fraction": json.Number("1.5"),
		"empty":    "",
		"bool":     true,
		"object":   map[string]any{"id": "c1"},
		"null":     nil,
	} {
		_, err := v.Verify(ctx, sign(t, jwt.SigningMethodHS256, "", testSecret, claimsFor(bad)))
		require.ErrorIs(t, err, auth.ErrTokenInvalid, name)
	}
	noSub := claimsFor("c1")
	delete(noSub, "sub")
	_, err = v.Verify(ctx, sign(t, jwt.SigningMethodHS256, "", testSecret, noSub))
	require.ErrorIs(t, err, auth.ErrTokenInvalid)
}

// A token issued in the future, beyond the clock skew, is refused.
func TestVerifyRejectsTokensIssuedInTheFuture(t *testing.T) {
	v := newHSVerifier(t, nil)
	future := claimsFor("c1")
	future["iat"] = t0.Add(time.Hour).Unix()
	future["exp"] = t0.Add(2 * time.Hour).Unix()
	_, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodHS256, "", testSecret, future))
	require.ErrorIs(t, err, auth.ErrTokenInvalid)

	skewed := claimsFor("c1")
	skewed["iat"] = t0.Add(20 * time.Second).Unix()
	_, err = v.Verify(t.Context(), sign(t, jwt.SigningMethodHS256, "", testSecret, skewed))
	require.NoError(t, err, "30 s of clock skew are tolerated")
}
