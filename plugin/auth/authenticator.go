package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/refrain-dev/refrain/plugin/clock"
)

// MinBootstrapKeyLen is the shortest bootstrap admin key accepted, in bytes.
// The key holds every scope, so it must not be guessable.
const MinBootstrapKeyLen = 32

// APIKeyRecord is a stored API key, as KeyLookup returns it.
type APIKeyRecord struct {
	// ID identifies the record; it becomes Principal.KeyID.
	ID string
	// Name is the operator's label for the key.
	Name string
	// Hash is HashAPIKey of the plaintext.
	Hash []byte
	// Scopes are the key's permissions.
	Scopes []Scope
	// RevokedAt, when set and not in the future, disables the key.
	RevokedAt *time.Time
}

// KeyLookup finds stored API keys by their public prefix. When no key has the
// prefix it returns an error wrapping ErrAPIKeyNotFound.
type KeyLookup interface {
	LookupAPIKey(ctx context.Context, prefix string) (APIKeyRecord, error)
}

// AuthenticatorOptions configures an Authenticator. Every field is optional;
// a credential whose verifier is not configured is rejected.
type AuthenticatorOptions struct {
	// Keys looks API keys up. Nil: only the bootstrap key is accepted as an
	// API key.
	Keys KeyLookup
	// JWT verifies customer tokens. Nil: customer tokens are rejected.
	JWT *JWTVerifier
	// BootstrapKey is an admin key with every scope that has no stored record
	// (REFRAIN_ADMIN_API_KEY), at least MinBootstrapKeyLen bytes. Empty:
	// disabled.
	BootstrapKey string
	// Clock decides whether a revocation time has passed.
	// Default: clock.Real{}.
	Clock clock.Clock
}

// Authenticator turns an Authorization header into a Principal. It is safe
// for concurrent use.
type Authenticator struct {
	keys          KeyLookup
	jwt           *JWTVerifier
	bootstrapHash []byte // SHA-256 of the bootstrap key, nil when disabled
	clock         clock.Clock
}

// NewAuthenticator returns an Authenticator configured by opts.
func NewAuthenticator(opts AuthenticatorOptions) (*Authenticator, error) {
	a := &Authenticator{keys: opts.Keys, jwt: opts.JWT, clock: opts.Clock}
	if opts.BootstrapKey != "" {
		if len(opts.BootstrapKey) < MinBootstrapKeyLen {
			return nil, fmt.Errorf("configure authenticator: REFRAIN_ADMIN_API_KEY is %d bytes, want at least %d",
				len(opts.BootstrapKey), MinBootstrapKeyLen)
		}
		// Comparing digests keeps the comparison constant-time even in the
		// key's length.
		a.bootstrapHash = HashAPIKey(opts.BootstrapKey)
	}
	if a.clock == nil {
		a.clock = clock.Real{}
	}
	return a, nil
}

// Authenticate returns the Principal for an Authorization header value. An
// empty header gives the anonymous principal and no error. Bad, unknown,
// revoked or expired credentials give an error wrapping ErrUnauthenticated
// (and, for tokens, ErrTokenExpired or ErrTokenInvalid). Any other error is an
// infrastructure failure (storage, key set) to be reported as internal.
//
// A bearer credential is, in this order: the bootstrap admin key; an API key
// when it starts with "rfn_"; otherwise a customer JWT.
func (a *Authenticator) Authenticate(ctx context.Context, header string) (Principal, error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return Principal{}, nil
	}
	scheme, credential, _ := strings.Cut(header, " ")
	credential = strings.TrimSpace(credential)
	// RFC 9110 §11.1: the scheme is case-insensitive.
	if !strings.EqualFold(scheme, "Bearer") {
		return Principal{}, fmt.Errorf("%w: authorization scheme is not Bearer", ErrUnauthenticated)
	}
	if credential == "" {
		return Principal{}, fmt.Errorf("%w: empty bearer credential", ErrUnauthenticated)
	}
	if a.bootstrapHash != nil && subtle.ConstantTimeCompare(HashAPIKey(credential), a.bootstrapHash) == 1 {
		return Principal{Kind: Admin, KeyID: BootstrapKeyID, Scopes: AllScopes()}, nil
	}
	if LooksLikeAPIKey(credential) {
		return a.apiKey(ctx, credential)
	}
	return a.customer(ctx, credential)
}

// apiKey authenticates a stored API key.
func (a *Authenticator) apiKey(ctx context.Context, plaintext string) (Principal, error) {
	prefix, ok := ParseAPIKey(plaintext)
	if !ok {
		return Principal{}, fmt.Errorf("%w: malformed api key", ErrUnauthenticated)
	}
	if a.keys == nil {
		return Principal{}, fmt.Errorf("%w: api keys not configured", ErrUnauthenticated)
	}
	rec, err := a.keys.LookupAPIKey(ctx, prefix)
	if errors.Is(err, ErrAPIKeyNotFound) {
		// Hash anyway so an unknown prefix costs the same as a wrong secret.
		_ = VerifyAPIKeyHash(plaintext, nil)
		return Principal{}, fmt.Errorf("%w: api key %s: %w", ErrUnauthenticated, prefix, err)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("look up api key %s: %w", prefix, err)
	}
	if !VerifyAPIKeyHash(plaintext, rec.Hash) {
		return Principal{}, fmt.Errorf("%w: api key %s: wrong secret", ErrUnauthenticated, prefix)
	}
	if rec.RevokedAt != nil && !rec.RevokedAt.After(a.clock.Now()) {
		return Principal{}, fmt.Errorf("%w: api key %s revoked at %s", ErrUnauthenticated, prefix,
			rec.RevokedAt.UTC().Format(time.RFC3339))
	}
	return Principal{Kind: Admin, KeyID: rec.ID, Scopes: slices.Clone(rec.Scopes)}, nil
}

// customer authenticates a customer JWT.
func (a *Authenticator) customer(ctx context.Context, token string) (Principal, error) {
	if a.jwt == nil {
		return Principal{}, fmt.Errorf("%w: customer tokens not configured", ErrUnauthenticated)
	}
	id, err := a.jwt.Verify(ctx, token)
	if err != nil {
		if errors.Is(err, ErrTokenExpired) || errors.Is(err, ErrTokenInvalid) {
			return Principal{}, fmt.Errorf("%w: verify customer token: %w", ErrUnauthenticated, err)
		}
		return Principal{}, fmt.Errorf("verify customer token: %w", err)
	}
	return Principal{Kind: Customer, CustomerID: id}, nil
}

// authErrorKey is the context key for the authentication error.
type authErrorKey struct{}

// WithAuthorization authenticates the value of a request's Authorization
// header and returns ctx with the Principal in it (see FromContext). It never
// fails itself: on failure the request goes on as anonymous with the error
// in its context (see ErrorFromContext), so that the GraphQL layer can
// answer with a proper UNAUTHENTICATED error, and public operations keep
// working. The HTTP middleware that calls it lives at the edge.
func (a *Authenticator) WithAuthorization(ctx context.Context, header string) context.Context {
	p, err := a.Authenticate(ctx, header)
	if err != nil {
		ctx = context.WithValue(ctx, authErrorKey{}, err)
		p = Principal{}
	}
	return WithPrincipal(ctx, p)
}

// ErrorFromContext returns the error Middleware met authenticating the
// request, or nil. A request carrying an error must not be served as
// anonymous where credentials were presented: report the error instead
// (UNAUTHENTICATED when it wraps ErrUnauthenticated, internal otherwise).
func ErrorFromContext(ctx context.Context) error {
	err, _ := ctx.Value(authErrorKey{}).(error)
	return err
}
