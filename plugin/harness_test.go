package plugin_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/golang-jwt/jwt/v5"
	"github.com/refrain-dev/refrain/plugin"
	"github.com/refrain-dev/refrain/plugin/auth"
	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
	"github.com/stretchr/testify/require"
)

const (
	testBootstrapKey = "bootstrap-key-for-tests-0123456789abcdef"
	testJWTSecret    = "jwt-secret-for-tests-0123456789abcdef-xyz"
)

var t0 = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// env is one plugin under test on a real database, behind the real handler.
type env struct {
	t      *testing.T
	db     *storetest.DB
	p      *plugin.Plugin
	clock  *clock.Virtual
	client *client.Client
}

func newEnv(t *testing.T, db *storetest.DB, mutate func(*plugin.Config)) *env {
	t.Helper()
	cfg := plugin.DefaultConfig()
	cfg.DatabaseURL = db.URL
	cfg.AdminAPIKey = testBootstrapKey
	cfg.JWTSecret = testJWTSecret
	if mutate != nil {
		mutate(&cfg)
	}
	clk := clock.NewVirtual(t0)
	p, err := plugin.New(context.Background(), cfg, plugin.WithDB(db.DB), plugin.WithClock(clk), plugin.WithLogger(quietLogger()))
	require.NoError(t, err)
	return &env{t: t, db: db, p: p, clock: clk, client: client.New(p.Handler(), client.Path("/graphql"))}
}

// gqlResult is a decoded GraphQL response.
type gqlResult struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Path       []any          `json:"path"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// codes lists the extensions.code of every error.
func (r gqlResult) codes() []string {
	var out []string
	for _, e := range r.Errors {
		c, _ := e.Extensions["code"].(string)
		out = append(out, c)
	}
	return out
}

func (r gqlResult) decode(t *testing.T, v any) {
	t.Helper()
	require.Empty(t, r.Errors, "unexpected errors")
	require.NoError(t, json.Unmarshal(r.Data, v))
}

// do posts a query with an optional bearer credential and variables.
func (e *env) do(bearer, query string, vars map[string]any) gqlResult {
	e.t.Helper()
	opts := []client.Option{}
	if bearer != "" {
		opts = append(opts, client.AddHeader("Authorization", "Bearer "+bearer))
	}
	for k, v := range vars {
		opts = append(opts, client.Var(k, v))
	}
	resp, err := e.client.RawPost(query, opts...)
	require.NoError(e.t, err)
	var out gqlResult
	raw, err := json.Marshal(resp)
	require.NoError(e.t, err)
	require.NoError(e.t, json.Unmarshal(raw, &out))
	return out
}

// apiKey creates a stored API key with scopes.
func (e *env) apiKey(scopes string) (string, *auth.StoredKey) {
	e.t.Helper()
	key, rec, err := auth.KeyStore{DB: e.db.DB}.Create(context.Background(), e.clock.Now(), "test", scopes)
	require.NoError(e.t, err)
	return key, rec
}

// customerToken signs an HS256 customer token for id, valid for ttl from now.
func (e *env) customerToken(id string, ttl time.Duration, secret string) string {
	e.t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": id, "exp": e.clock.Now().Add(ttl).Unix(), "iat": e.clock.Now().Unix()})
	s, err := tok.SignedString([]byte(secret))
	require.NoError(e.t, err)
	return s
}

// jwksServer serves a key set that a test can rotate.
type jwksServer struct {
	mu    sync.Mutex
	keys  []map[string]any
	hits  int
	serve *httptest.Server
}

func newJWKSServer(t *testing.T) *jwksServer {
	s := &jwksServer{}
	s.serve = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.hits++
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": s.keys})
	}))
	t.Cleanup(s.serve.Close)
	return s
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (s *jwksServer) setRSA(kid string, k *rsa.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = []map[string]any{{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
		"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}}
}

func (s *jwksServer) addEC(kid string, k *ecdsa.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	size := (k.Curve.Params().BitSize + 7) / 8
	x, y := make([]byte, size), make([]byte, size)
	k.X.FillBytes(x)
	k.Y.FillBytes(y)
	s.keys = append(s.keys, map[string]any{"kty": "EC", "kid": kid, "crv": "P-256", "alg": "ES256", "x": b64(x), "y": b64(y)})
}

func signWith(t *testing.T, method jwt.SigningMethod, kid string, key any, sub string, exp time.Time) string {
	tok := jwt.NewWithClaims(method, jwt.MapClaims{"sub": sub, "exp": exp.Unix()})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

func mustRSA(t *testing.T) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	return k
}

func mustEC(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

func requireNode(t *testing.T) {
	if _, err := os.Stat("../e2e/federation/node_modules/@apollo/composition"); err != nil {
		if os.Getenv("REFRAIN_REQUIRE_NODE") != "" {
			t.Fatalf("federation node packages missing: run npm ci in e2e/federation (%v)", err)
		}
		t.Skip("e2e/federation/node_modules is missing: run npm ci in e2e/federation")
	}
}
