package auth

import "errors"

// Errors of this package. Their messages, and those of the errors wrapping
// them, are for logs: they may name a key prefix or the reason a token failed.
// Clients must be told only the GraphQL code (UNAUTHENTICATED) and a fixed
// message.
var (
	// ErrUnauthenticated is wrapped by every error the Authenticator returns
	// for bad, unknown, revoked or expired credentials. An error that does not
	// wrap it (a storage failure, an unreachable JWKS) is an internal error,
	// not the caller's fault.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrTokenExpired is wrapped by JWTVerifier.Verify for a token past its
	// "exp" (plus leeway).
	ErrTokenExpired = errors.New("token expired")
	// ErrTokenInvalid is wrapped by JWTVerifier.Verify for every other
	// rejected token: malformed, bad signature, disallowed or mismatched
	// algorithm, unknown key id, not yet valid, wrong issuer or audience,
	// missing customer claim.
	ErrTokenInvalid = errors.New("token invalid")
	// ErrAPIKeyNotFound must be returned (possibly wrapped) by a KeyLookup
	// when no key has the given prefix, so that the Authenticator can tell an
	// unknown key from a storage failure.
	ErrAPIKeyNotFound = errors.New("api key not found")
)
