package graph

import (
	"context"
	"errors"
	"log/slog"

	"github.com/99designs/gqlgen/graphql"
	"github.com/refrain-dev/refrain/plugin/store"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Error codes in extensions.code.
const (
	CodeUnauthenticated = "UNAUTHENTICATED"
	CodeForbidden       = "FORBIDDEN"
	CodeNotFound        = "NOT_FOUND"
	CodeBadUserInput    = "BAD_USER_INPUT"
	CodeInternal        = "INTERNAL_SERVER_ERROR"
)

// codedError is an error that already knows its GraphQL code and a message
// safe to show to the caller.
type codedError struct {
	code, msg string
}

func (e *codedError) Error() string { return e.msg }

func errUnauthenticated() error {
	return &codedError{code: CodeUnauthenticated, msg: "authentication required: send a valid admin API key or customer token"}
}

func errForbidden() error {
	return &codedError{code: CodeForbidden, msg: "not allowed with these credentials"}
}

func errBadInput(msg string) error { return &codedError{code: CodeBadUserInput, msg: msg} }

// ErrorPresenter maps domain errors to GraphQL errors once, at the edge.
// Unknown errors are logged and shown as a generic internal error, so no SQL
// or internal detail leaks to callers.
func ErrorPresenter(logger *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		var gqlErr *gqlerror.Error
		if errors.As(err, &gqlErr) && gqlErr.Err == nil {
			// Parse and validation errors from gqlparser already speak GraphQL.
			return gqlErr
		}
		out := graphql.DefaultErrorPresenter(ctx, err)
		var ce *codedError
		switch {
		case errors.As(err, &ce):
			out.Message = ce.msg
			setCode(out, ce.code)
		case errors.Is(err, store.ErrNotFound):
			out.Message = "not found"
			setCode(out, CodeNotFound)
		case isIntrospectionDisabled(err):
			// gqlgen's own refusal when introspection is turned off.
			out.Message = "introspection is disabled on this server"
			setCode(out, "INTROSPECTION_DISABLED")
		case errors.Is(err, context.Canceled):
			out.Message = "request cancelled"
			setCode(out, CodeInternal)
		default:
			logger.ErrorContext(ctx, "graphql resolver failed", "err", err, "path", out.Path.String())
			out.Message = "internal error"
			setCode(out, CodeInternal)
		}
		return out
	}
}

func setCode(e *gqlerror.Error, code string) {
	if e.Extensions == nil {
		e.Extensions = map[string]any{}
	}
	e.Extensions["code"] = code
}

func isIntrospectionDisabled(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e.Error() == "introspection disabled" {
			return true
		}
	}
	return false
}
