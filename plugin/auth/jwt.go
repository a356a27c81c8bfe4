package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/jwks"
)

// DefaultLeeway is the clock skew tolerated on "exp" and "nbf" when
// JWTOptions.Leeway is zero.
const DefaultLeeway = 30 * time.Second

// DefaultCustomerClaim is the claim holding the customer ID when
// JWTOptions.CustomerClaim is empty.
const DefaultCustomerClaim = "sub"

// MinSecretBytes is the shortest HMAC secret accepted: RFC 7518 §3.2 requires
// a key at least as long as the hash output, 32 bytes for HS256.
const MinSecretBytes = 32

// KeySet hands out the public key for a token's "kid" header. *jwks.Set
// implements it. An unknown kid must yield an error wrapping
// jwks.ErrKeyNotFound; any other error is taken to mean the key set is
// unavailable, which is reported as an internal error rather than as a bad
// token.
type KeySet interface {
	Key(ctx context.Context, kid string) (crypto.PublicKey, error)
}

// JWTOptions configures a JWTVerifier. At least one of Secret and KeySet must
// be set; with both, the token's algorithm picks the path, and each path only
// accepts its own algorithms.
type JWTOptions struct {
	// Secret verifies HMAC tokens (HS256, HS384, HS512); at least
	// MinSecretBytes long. From REFRAIN_JWT_SECRET.
	Secret []byte
	// KeySet verifies RSA and ECDSA tokens (RS256/384/512, PS256/384/512,
	// ES256/384/512) by the token's "kid". Usually a *jwks.Set built from
	// REFRAIN_JWKS_URL.
	KeySet KeySet
	// CustomerClaim names the claim holding the customer ID. It may be a
	// string or a number. Default: "sub".
	CustomerClaim string
	// Issuer, when set, must equal the token's "iss".
	Issuer string
	// Audience, when set, must be one of the token's "aud".
	Audience string
	// Leeway is the clock skew tolerated on "exp" and "nbf". Zero means
	// DefaultLeeway (30 seconds); a negative value means none.
	Leeway time.Duration
	// Clock gives the time tokens are checked against. Default: clock.Real{}.
	Clock clock.Clock
}

// JWTVerifier verifies storefront customer tokens and extracts the customer
// ID. It is safe for concurrent use.
//
// Tokens must carry "exp": a storefront token that never expires would be a
// permanent credential. The "none" algorithm is never accepted, and a token
// is only verified with a key of the family its "alg" names, so an attacker
// cannot have an RS256 public key used as an HMAC secret, or the reverse
// (algorithm confusion).
type JWTVerifier struct {
	secret []byte
	keys   KeySet
	claim  string
	parser *jwt.Parser
}

// hmacAlgs and publicKeyAlgs are the algorithms each path accepts.
func hmacAlgs() []string { return []string{"HS256", "HS384", "HS512"} }

func publicKeyAlgs() []string {
	return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
}

// NewJWTVerifier returns a verifier configured by opts.
func NewJWTVerifier(opts JWTOptions) (*JWTVerifier, error) {
	if len(opts.Secret) == 0 && opts.KeySet == nil {
		return nil, errors.New("configure jwt verifier: set a secret (REFRAIN_JWT_SECRET) or a key set (REFRAIN_JWKS_URL)")
	}
	if len(opts.Secret) > 0 && len(opts.Secret) < MinSecretBytes {
		return nil, fmt.Errorf("configure jwt verifier: REFRAIN_JWT_SECRET is %d bytes, want at least %d", len(opts.Secret), MinSecretBytes)
	}
	v := &JWTVerifier{
		secret: slices.Clone(opts.Secret),
		keys:   opts.KeySet,
		claim:  opts.CustomerClaim,
	}
	if v.claim == "" {
		v.claim = DefaultCustomerClaim
	}
	leeway := opts.Leeway
	switch {
	case leeway == 0:
		leeway = DefaultLeeway
	case leeway < 0:
		leeway = 0
	}
	clk := opts.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	var algs []string
	if len(v.secret) > 0 {
		algs = append(algs, hmacAlgs()...)
	}
	if v.keys != nil {
		algs = append(algs, publicKeyAlgs()...)
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(algs),
		jwt.WithJSONNumber(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(clk.Now),
		jwt.WithExpirationRequired(),
		// A token issued in the future (beyond the leeway) is refused.
		jwt.WithIssuedAt(),
	}
	if opts.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(opts.Issuer))
	}
	if opts.Audience != "" {
		popts = append(popts, jwt.WithAudience(opts.Audience))
	}
	v.parser = jwt.NewParser(popts...)
	return v, nil
}

// keySetError marks a failure to obtain a key that is not the token's fault.
type keySetError struct{ err error }

func (e *keySetError) Error() string { return e.err.Error() }
func (e *keySetError) Unwrap() error { return e.err }

// Verify checks token and returns the customer ID it carries. A rejected token
// yields an error wrapping ErrTokenExpired or ErrTokenInvalid; an error
// wrapping neither means the key set could not be reached.
func (v *JWTVerifier) Verify(ctx context.Context, token string) (customerID string, err error) {
	claims := jwt.MapClaims{}
	_, err = v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		return v.key(ctx, t)
	})
	if err != nil {
		if ke, ok := errors.AsType[*keySetError](err); ok {
			return "", fmt.Errorf("get token key: %w", ke.err)
		}
		if errors.Is(err, jwt.ErrTokenExpired) {
			return "", fmt.Errorf("%w: %w", ErrTokenExpired, err)
		}
		return "", fmt.Errorf("%w: %w", ErrTokenInvalid, err)
	}
	id, err := readCustomerID(claims, v.claim)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrTokenInvalid, err)
	}
	return id, nil
}

// key returns the key that may verify t, refusing any key whose type does not
// match t's algorithm.
func (v *JWTVerifier) key(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if slices.Contains(hmacAlgs(), alg) {
		if len(v.secret) == 0 {
			return nil, fmt.Errorf("algorithm %s not configured", alg)
		}
		return v.secret, nil
	}
	if v.keys == nil || !slices.Contains(publicKeyAlgs(), alg) {
		return nil, fmt.Errorf("algorithm %s not configured", alg)
	}
	kid, _ := t.Header["kid"].(string)
	pub, err := v.keys.Key(ctx, kid)
	if err != nil {
		if errors.Is(err, jwks.ErrKeyNotFound) {
			return nil, fmt.Errorf("find key %q: %w", kid, err)
		}
		return nil, &keySetError{err: err}
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if alg[0] != 'R' && alg[0] != 'P' {
			return nil, fmt.Errorf("key %q is RSA, token algorithm is %s", kid, alg)
		}
		return k, nil
	case *ecdsa.PublicKey:
		if want := ecCurveFor(alg); want == nil || k.Curve != want {
			return nil, fmt.Errorf("key %q is ECDSA %s, token algorithm is %s", kid, k.Curve.Params().Name, alg)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("key %q has unsupported type %T", kid, pub)
	}
}

// ecCurveFor returns the curve an ES algorithm is defined on (RFC 7518 §3.4),
// or nil for other algorithms.
func ecCurveFor(alg string) elliptic.Curve {
	switch alg {
	case "ES256":
		return elliptic.P256()
	case "ES384":
		return elliptic.P384()
	case "ES512":
		return elliptic.P521()
	default:
		return nil
	}
}

// readCustomerID reads the customer claim as a string. Numbers are rendered as
// plain integers ("12345678901234567890", never "1.2345678901234567e+19"),
// since storefronts such as Shopify use numeric customer IDs; a fractional
// number cannot be an ID and is refused.
func readCustomerID(claims jwt.MapClaims, name string) (string, error) {
	raw, ok := claims[name]
	if !ok {
		return "", fmt.Errorf("missing claim %q", name)
	}
	switch val := raw.(type) {
	case string:
		if val == "" {
			return "", fmt.Errorf("empty claim %q", name)
		}
		return val, nil
	case json.Number:
		r, ok := new(big.Rat).SetString(val.String())
		if !ok || !r.IsInt() {
			return "", fmt.Errorf("claim %q is not an integer", name)
		}
		return r.Num().String(), nil
	default:
		return "", fmt.Errorf("claim %q is a %T, want a string or a number", name, raw)
	}
}
