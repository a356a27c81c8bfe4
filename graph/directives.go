package graph

import (
	"context"
	"errors"

	"github.com/99designs/gqlgen/graphql"

	"github.com/refrain-dev/refrain/graph/model"
	"github.com/refrain-dev/refrain/plugin/auth"
	"github.com/refrain-dev/refrain/plugin/customer"
)

// caller returns the request's principal, or UNAUTHENTICATED when the
// request carried credentials that did not verify.
func caller(ctx context.Context) (auth.Principal, error) {
	if err := auth.ErrorFromContext(ctx); err != nil {
		if errors.Is(err, auth.ErrUnauthenticated) {
			return auth.Principal{}, errUnauthenticated()
		}
		// Storage or key-set failure: internal, logged by the presenter.
		return auth.Principal{}, err
	}
	return auth.FromContext(ctx), nil
}

func scopeOf(s model.Scope) auth.Scope {
	if s == model.ScopeWrite {
		return auth.ScopeWrite
	}
	return auth.ScopeRead
}

// requireAdmin allows an admin key with the scope.
func requireAdmin(ctx context.Context, scope model.Scope) (auth.Principal, error) {
	p, err := caller(ctx)
	if err != nil {
		return p, err
	}
	switch {
	case p.Kind == auth.Anonymous:
		return p, errUnauthenticated()
	case !p.IsAdmin() || !p.Can(scopeOf(scope)):
		return p, errForbidden()
	}
	return p, nil
}

// Directives returns the access rules behind @public, @admin, @owner and @signedIn.
func Directives() DirectiveRoot {
	return DirectiveRoot{
		Public: func(ctx context.Context, _ any, next graphql.Resolver) (any, error) {
			return next(ctx)
		},
		Admin: func(ctx context.Context, _ any, next graphql.Resolver, scope model.Scope) (any, error) {
			if _, err := requireAdmin(ctx, scope); err != nil {
				return nil, err
			}
			return next(ctx)
		},
		SignedIn: func(ctx context.Context, _ any, next graphql.Resolver) (any, error) {
			p, err := caller(ctx)
			if err != nil {
				return nil, err
			}
			if p.Kind == auth.Anonymous {
				return nil, errUnauthenticated()
			}
			return next(ctx)
		},
		Owner: func(ctx context.Context, obj any, next graphql.Resolver) (any, error) {
			p, err := caller(ctx)
			if err != nil {
				return nil, err
			}
			c, _ := obj.(*customer.Customer)
			switch {
			case p.Kind == auth.Anonymous:
				return nil, errUnauthenticated()
			case p.IsAdmin() && p.Can(auth.ScopeRead):
				return next(ctx)
			case p.Kind == auth.Customer && c != nil && c.HasRef(p.CustomerID):
				return next(ctx)
			}
			return nil, errForbidden()
		},
	}
}
