package jwks_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/jwks"
)

var b64 = base64.RawURLEncoding

// rsaJWK renders an RSA public key as a JWK.
func rsaJWK(kid string, k *rsa.PublicKey) map[string]any {
	return map[string]any{
		"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64.EncodeToString(k.N.Bytes()),
		"e": b64.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
	}
}

// ecJWK renders an EC public key as a JWK.
func ecJWK(t *testing.T, kid string, k *ecdsa.PublicKey) map[string]any {
	t.Helper()
	point, err := k.Bytes()
	require.NoError(t, err)
	size := (len(point) - 1) / 2
	return map[string]any{
		"kty": "EC", "kid": kid, "crv": k.Curve.Params().Name,
		"x": b64.EncodeToString(point[1 : 1+size]),
		"y": b64.EncodeToString(point[1+size:]),
	}
}

// issuer is a fake JWKS endpoint whose answer can be changed mid-test.
type issuer struct {
	*httptest.Server
	requests atomic.Int64

	mu     sync.Mutex
	status int
	body   []byte
	gate   chan struct{} // when non-nil, requests wait for it to close
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	is := &issuer{status: http.StatusOK}
	is.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is.requests.Add(1)
		is.mu.Lock()
		status, body, gate := is.status, is.body, is.gate
		is.mu.Unlock()
		if gate != nil {
			<-gate
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(is.Close)
	return is
}

func (is *issuer) serveKeys(t *testing.T, keys ...map[string]any) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"keys": keys})
	require.NoError(t, err)
	is.serve(http.StatusOK, body)
}

func (is *issuer) serve(status int, body []byte) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.status, is.body = status, body
}

func (is *issuer) hold() chan struct{} {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.gate = make(chan struct{})
	return is.gate
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newSet(is *issuer, clk clock.Clock) *jwks.Set {
	return jwks.New(is.URL, &jwks.Options{HTTPClient: is.Client(), Clock: clk})
}

func newRSA(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	return k
}

func newEC(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	require.NoError(t, err)
	return k
}

type equaler interface{ Equal(crypto.PublicKey) bool }

func requireSameKey(t *testing.T, want crypto.PublicKey, got crypto.PublicKey) {
	t.Helper()
	require.NotNil(t, got)
	require.True(t, want.(equaler).Equal(got), "got a different key: %T", got)
}

func TestKeyParsesRSAAndECKeys(t *testing.T) {
	is := newIssuer(t)
	r := newRSA(t)
	p256, p384, p521 := newEC(t, elliptic.P256()), newEC(t, elliptic.P384()), newEC(t, elliptic.P521())
	is.serveKeys(t,
		rsaJWK("rsa", &r.PublicKey),
		ecJWK(t, "p256", &p256.PublicKey),
		ecJWK(t, "p384", &p384.PublicKey),
		ecJWK(t, "p521", &p521.PublicKey),
	)
	set := newSet(is, clock.NewVirtual(t0))
	ctx := t.Context()

	for kid, want := range map[string]crypto.PublicKey{
		"rsa": &r.PublicKey, "p256": &p256.PublicKey, "p384": &p384.PublicKey, "p521": &p521.PublicKey,
	} {
		got, err := set.Key(ctx, kid)
		require.NoError(t, err, kid)
		requireSameKey(t, want, got)
	}
	require.Equal(t, int64(1), is.requests.Load())
}

func TestKeyServesFromCache(t *testing.T) {
	is := newIssuer(t)
	r := newRSA(t)
	is.serveKeys(t, rsaJWK("k1", &r.PublicKey))
	clk := clock.NewVirtual(t0)
	set := newSet(is, clk)

	for range 10 {
		got, err := set.Key(t.Context(), "k1")
		require.NoError(t, err)
		requireSameKey(t, &r.PublicKey, got)
	}
	require.Equal(t, int64(1), is.requests.Load())

	clk.Advance(59 * time.Minute)
	_, err := set.Key(t.Context(), "k1")
	require.NoError(t, err)
	require.Equal(t, int64(1), is.requests.Load(), "cache younger than max age is used")

	clk.Advance(time.Minute)
	_, err = set.Key(t.Context(), "k1")
	require.NoError(t, err)
	require.Equal(t, int64(2), is.requests.Load(), "cache at max age is refreshed")
}

func TestKeyFollowsRotation(t *testing.T) {
	is := newIssuer(t)
	oldKey, newKey := newRSA(t), newEC(t, elliptic.P256())
	is.serveKeys(t, rsaJWK("old", &oldKey.PublicKey))
	clk := clock.NewVirtual(t0)
	set := newSet(is, clk)

	_, err := set.Key(t.Context(), "old")
	require.NoError(t, err)

	// The issuer rotates: the old key is gone, a new one signs.
	is.serveKeys(t, ecJWK(t, "new", &newKey.PublicKey))
	clk.Advance(2 * time.Minute)

	digest := sha256.Sum256([]byte("payload"))
	sig, err := ecdsa.SignASN1(rand.Reader, newKey, digest[:])
	require.NoError(t, err)

	got, err := set.Key(t.Context(), "new")
	require.NoError(t, err)
	require.Equal(t, int64(2), is.requests.Load(), "an unknown kid triggers one refetch")
	require.True(t, ecdsa.VerifyASN1(got.(*ecdsa.PublicKey), digest[:], sig))

	_, err = set.Key(t.Context(), "old")
	require.ErrorIs(t, err, jwks.ErrKeyNotFound, "a key removed by the issuer is no longer served")
	require.Equal(t, int64(2), is.requests.Load())
}

func TestKeyRateLimitsUnknownKids(t *testing.T) {
	is := newIssuer(t)
	r := newRSA(t)
	is.serveKeys(t, rsaJWK("k1", &r.PublicKey))
	clk := clock.NewVirtual(t0)
	set := newSet(is, clk)

	_, err := set.Key(t.Context(), "k1")
	require.NoError(t, err)

	_, err = set.Key(t.Context(), "bogus")
	require.ErrorIs(t, err, jwks.ErrKeyNotFound)
	require.Equal(t, int64(1), is.requests.Load(), "no refetch within a minute of the last one")

	clk.Advance(61 * time.Second)
	_, err = set.Key(t.Context(), "bogus")
	require.ErrorIs(t, err, jwks.ErrKeyNotFound)
	require.Equal(t, int64(2), is.requests.Load())

	// A flood of made-up kids costs nothing more.
	var wg sync.WaitGroup
	errs := make([]error, 100)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = set.Key(t.Context(), "flood-"+string(rune('a'+i%26)))
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.ErrorIs(t, err, jwks.ErrKeyNotFound)
	}
	require.Equal(t, int64(2), is.requests.Load())

	// The known key is still served throughout.
	got, err := set.Key(t.Context(), "k1")
	require.NoError(t, err)
	requireSameKey(t, &r.PublicKey, got)

	clk.Advance(time.Minute)
	_, err = set.Key(t.Context(), "bogus")
	require.ErrorIs(t, err, jwks.ErrKeyNotFound)
	require.Equal(t, int64(3), is.requests.Load())
}

func TestKeyConcurrentCallersShareOneFetch(t *testing.T) {
	is := newIssuer(t)
	r := newRSA(t)
	is.serveKeys(t, rsaJWK("k1", &r.PublicKey))
	gate := is.hold()
	set := newSet(is, clock.NewVirtual(t0))

	var wg sync.WaitGroup
	keys := make([]crypto.PublicKey, 20)
	errs := make([]error, 20)
	for i := range keys {
		wg.Go(func() { keys[i], errs[i] = set.Key(t.Context(), "k1") })
	}
	require.Eventually(t, func() bool { return is.requests.Load() == 1 }, 5*time.Second, time.Millisecond)
	close(gate)
	wg.Wait()
	for i := range keys {
		require.NoError(t, errs[i])
		requireSameKey(t, &r.PublicKey, keys[i])
	}
	require.Equal(t, int64(1), is.requests.Load())
}

func TestKeyCallerCancellationDoesNotFailOthers(t *testing.T) {
	is := newIssuer(t)
	r := newRSA(t)
	is.serveKeys(t, rsaJWK("k1", &r.PublicKey))
	gate := is.hold()
	set := newSet(is, clock.NewVirtual(t0))

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := set.Key(ctx, "k1")
		done <- err
	}()
	require.Eventually(t, func() bool { return is.requests.Load() == 1 }, 5*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)

	close(gate)
	got, err := set.Key(t.Context(), "k1")
	require.NoError(t, err)
	requireSameKey(t, &r.PublicKey, got)
	require.Equal(t, int64(1), is.requests.Load(), "the fetch started by the cancelled caller was reused")
}

func TestKeyRejectsBadJSON(t *testing.T) {
	for name, body := range map[string]string{
		"not json":     `{"keys": [`,
		"no keys":      `{"keys": []}`,
		"only unknown": `{"keys": [{"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "AAAA"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			is := newIssuer(t)
			is.serve(http.StatusOK, []byte(body))
			set := newSet(is, clock.NewVirtual(t0))

			key, err := set.Key(t.Context(), "ed")
			require.Error(t, err)
			require.Nil(t, key)
			require.NotErrorIs(t, err, jwks.ErrKeyNotFound, "a broken set is not a missing key")
			require.Contains(t, err.Error(), "parse")
		})
	}
}

func TestKeyReportsHTTPErrors(t *testing.T) {
	is := newIssuer(t)
	is.serve(http.StatusInternalServerError, []byte("boom"))
	clk := clock.NewVirtual(t0)
	set := newSet(is, clk)

	_, err := set.Key(t.Context(), "k1")
	require.ErrorContains(t, err, "500")
	require.NotErrorIs(t, err, jwks.ErrKeyNotFound)

	_, err = set.Key(t.Context(), "k1")
	require.ErrorContains(t, err, "500", "the last failure is reported without a new request")
	require.Equal(t, int64(1), is.requests.Load())

	r := newRSA(t)
	is.serveKeys(t, rsaJWK("k1", &r.PublicKey))
	clk.Advance(time.Minute)
	got, err := set.Key(t.Context(), "k1")
	require.NoError(t, err)
	requireSameKey(t, &r.PublicKey, got)
	require.Equal(t, int64(2), is.requests.Load())
}

func TestKeyServesStaleKeysWhenRefreshFails(t *testing.T) {
	is := newIssuer(t)
	r := newRSA(t)
	is.serveKeys(t, rsaJWK("k1", &r.PublicKey))
	clk := clock.NewVirtual(t0)
	set := newSet(is, clk)

	_, err := set.Key(t.Context(), "k1")
	require.NoError(t, err)

	is.serve(http.StatusBadGateway, nil)
	clk.Advance(2 * time.Hour)
	got, err := set.Key(t.Context(), "k1")
	require.NoError(t, err)
	requireSameKey(t, &r.PublicKey, got)
	require.Equal(t, int64(2), is.requests.Load())

	_, err = set.Key(t.Context(), "other")
	require.ErrorIs(t, err, jwks.ErrKeyNotFound)
	require.Equal(t, int64(2), is.requests.Load())
}

func TestKeySkipsUnusableEntries(t *testing.T) {
	is := newIssuer(t)
	good := newRSA(t)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	ec := newEC(t, elliptic.P256())
	offCurve := ecJWK(t, "off-curve", &ec.PublicKey)
	offCurve["y"] = offCurve["x"]
	encKey := rsaJWK("enc", &good.PublicKey)
	encKey["use"] = "enc"
	shortX := ecJWK(t, "short-x", &ec.PublicKey)
	shortX["x"] = b64.EncodeToString([]byte{1, 2, 3})
	is.serveKeys(t,
		rsaJWK("good", &good.PublicKey),
		rsaJWK("weak", &weak.PublicKey),
		offCurve,
		encKey,
		shortX,
		map[string]any{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
		rsaJWK("good", &weak.PublicKey), // a duplicate kid does not replace the first
	)
	set := newSet(is, clock.NewVirtual(t0))

	got, err := set.Key(t.Context(), "good")
	require.NoError(t, err)
	requireSameKey(t, &good.PublicKey, got)
	for _, kid := range []string{"weak", "off-curve", "enc", "short-x", "hmac"} {
		_, err := set.Key(t.Context(), kid)
		require.True(t, errors.Is(err, jwks.ErrKeyNotFound), "%s: %v", kid, err)
	}
}
