// Package auth decides who is calling Refrain: an anonymous visitor, an admin
// tool holding an API key, or a logged-in storefront customer holding a JWT.
//
// It holds only the pure parts of access control: key generation and
// verification, token verification, the Principal a request runs as, and an
// HTTP middleware that puts it in the request context. Storage of API keys sits
// behind the KeyLookup interface; mapping errors to GraphQL codes is the
// GraphQL layer's job (every error that wraps ErrUnauthenticated becomes
// UNAUTHENTICATED, a Principal lacking a scope becomes FORBIDDEN).
package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Kind says what sort of credential a Principal was established with.
//
// It is an integer rather than a typed string so that the zero Principal is
// Anonymous: code that forgets to authenticate gets the least privilege.
type Kind uint8

// The kinds of principal.
const (
	// Anonymous is a caller without credentials.
	Anonymous Kind = iota
	// Admin is a caller holding an API key (or the bootstrap admin key).
	Admin
	// Customer is a storefront customer holding a verified JWT.
	Customer
)

// String returns the lower-case name of the kind, for logs.
func (k Kind) String() string {
	switch k {
	case Anonymous:
		return "anonymous"
	case Admin:
		return "admin"
	case Customer:
		return "customer"
	default:
		return fmt.Sprintf("kind(%d)", uint8(k))
	}
}

// Scope is a permission carried by an API key.
//
// ScopeWrite implies ScopeRead: Principal.Can(ScopeRead) is true for a key
// holding only ScopeWrite. A write-only key could not be honoured anyway,
// since every Refrain mutation returns the object it changed (the payload
// types), so a key that may write can always read what it writes; pretending
// otherwise would be a promise the API does not keep.
type Scope string

// The scopes an API key can hold.
const (
	// ScopeRead allows every query.
	ScopeRead Scope = "read"
	// ScopeWrite allows every mutation, and implies ScopeRead.
	ScopeWrite Scope = "write"
)

// AllScopes returns every scope, in a stable order. The bootstrap admin key
// holds all of them.
func AllScopes() []Scope { return []Scope{ScopeRead, ScopeWrite} }

// Valid reports whether s is a known scope.
func (s Scope) Valid() bool { return s == ScopeRead || s == ScopeWrite }

// UnknownScopeError is returned by ParseScopes for a scope it does not know.
type UnknownScopeError struct {
	// Scope is the offending name, as written.
	Scope string
}

// Error names the unknown scope and the valid ones.
func (e *UnknownScopeError) Error() string {
	return fmt.Sprintf("unknown scope %q (valid scopes: read, write)", e.Scope)
}

// ParseScopes parses a comma-separated list of scopes such as "read,write",
// as given on the command line or stored beside an API key. Blanks around
// names are ignored, duplicates are removed, and an empty list is an error,
// since a key without scopes could do nothing. An unknown name yields an
// *UnknownScopeError.
func ParseScopes(s string) ([]Scope, error) {
	var scopes []Scope
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		sc := Scope(strings.ToLower(name))
		if !sc.Valid() {
			return nil, &UnknownScopeError{Scope: name}
		}
		if !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	if len(scopes) == 0 {
		return nil, fmt.Errorf("parse scopes %q: no scope given", s)
	}
	return scopes, nil
}

// FormatScopes renders scopes as ParseScopes reads them, for storage and
// display.
func FormatScopes(scopes []Scope) string {
	names := make([]string, len(scopes))
	for i, s := range scopes {
		names[i] = string(s)
	}
	return strings.Join(names, ",")
}

// Principal is who a request runs as. The zero value is the anonymous
// principal.
type Principal struct {
	// Kind is how the caller authenticated.
	Kind Kind
	// KeyID is the ID of the API key record for an Admin, or BootstrapKeyID
	// for the bootstrap key; empty otherwise.
	KeyID string
	// Scopes are the API key's scopes. Customers carry none: what a customer
	// may touch is decided by IsCustomer, not by scopes.
	Scopes []Scope
	// CustomerID is the customer's ID, from the token's customer claim, for a
	// Customer; empty otherwise.
	CustomerID string
}

// BootstrapKeyID is the Principal.KeyID of a caller holding the bootstrap
// admin key (REFRAIN_ADMIN_API_KEY), which has no record in storage.
const BootstrapKeyID = "bootstrap"

// Can reports whether p is an admin holding scope, directly or implied
// (ScopeWrite implies ScopeRead). Anonymous and customer principals
// hold no scope.
func (p Principal) Can(scope Scope) bool {
	if p.Kind != Admin || !scope.Valid() {
		return false
	}
	if slices.Contains(p.Scopes, scope) {
		return true
	}
	return scope == ScopeRead && slices.Contains(p.Scopes, ScopeWrite)
}

// IsAdmin reports whether p authenticated with an API key, whatever its
// scopes.
func (p Principal) IsAdmin() bool { return p.Kind == Admin }

// IsCustomer reports whether p is the customer with the given ID. It is false
// for an empty id, so a missing ID never matches.
func (p Principal) IsCustomer(id string) bool {
	return p.Kind == Customer && id != "" && p.CustomerID == id
}

// IsAnonymous reports whether p carries no credentials.
func (p Principal) IsAnonymous() bool { return p.Kind == Anonymous }

// principalKey is the context key for the Principal.
type principalKey struct{}

// WithPrincipal returns a copy of ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the Principal carried by ctx, or the anonymous
// principal when there is none.
func FromContext(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}
