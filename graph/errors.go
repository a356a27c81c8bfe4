package graph

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/refrain-dev/refrain/plugin/auth"
	"github.com/refrain-dev/refrain/plugin/campaign"
	"github.com/refrain-dev/refrain/plugin/cursor"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/forecast"
	"github.com/refrain-dev/refrain/plugin/hygiene"
	"github.com/refrain-dev/refrain/plugin/loyalty"
	"github.com/refrain-dev/refrain/plugin/mail"
	"github.com/refrain-dev/refrain/plugin/mail/consent"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
	"github.com/refrain-dev/refrain/plugin/mail/template"
	"github.com/refrain-dev/refrain/plugin/segment"
	"github.com/refrain-dev/refrain/plugin/store"
	"github.com/refrain-dev/refrain/plugin/survey"
	"github.com/refrain-dev/refrain/scenarios"
	"github.com/refrain-dev/refrain/scenarios/engine"
)

// Error codes in extensions.code.
const (
	CodeUnauthenticated = "UNAUTHENTICATED"
	CodeForbidden       = "FORBIDDEN"
	CodeNotFound        = "NOT_FOUND"
	CodeBadUserInput    = "BAD_USER_INPUT"
	CodeInternal        = "INTERNAL_SERVER_ERROR"
)

// FieldError is the one error a resolver returns for a problem the caller
// can fix: its code, a message safe to show, and the path of the input
// field at fault when there is one (extensions.field).
type FieldError struct {
	Code    string
	Message string
	Field   []string
}

func (e *FieldError) Error() string { return e.Message }

func errUnauthenticated() error {
	return &FieldError{Code: CodeUnauthenticated, Message: "authentication required: send a valid admin API key or customer token"}
}

func errForbidden() error {
	return &FieldError{Code: CodeForbidden, Message: "not allowed with these credentials"}
}

func errBadInput(msg string, field ...string) error {
	return &FieldError{Code: CodeBadUserInput, Message: msg, Field: field}
}

// requestIDKey carries the id of one GraphQL request in its context.
type requestIDKey struct{}

// withRequestID gives ctx a request id: the caller's X-Request-Id when it
// is a short token, else a random one.
func withRequestID(ctx context.Context, header string) context.Context {
	id := strings.TrimSpace(header)
	if id == "" || len(id) > 64 || strings.ContainsFunc(id, func(r rune) bool { return r < '!' || r > '~' }) {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id of ctx, empty outside a request.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// ErrorPresenter maps domain errors to GraphQL errors once, at the edge:
// problems the caller can fix keep their message and get their code;
// every other error (storage, bugs) is logged with the request id and shown
// only as INTERNAL_SERVER_ERROR with that id, so no SQL or internal detail
// reaches callers.
func ErrorPresenter(logger *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		var gqlErr *gqlerror.Error
		if errors.As(err, &gqlErr) && gqlErr.Err == nil {
			// Parse and validation errors from gqlparser already speak GraphQL.
			return gqlErr
		}
		out := graphql.DefaultErrorPresenter(ctx, err)
		fe := fieldErrorOf(err)
		switch {
		case fe != nil:
			out.Message = fe.Message
			setCode(out, fe.Code)
			if len(fe.Field) > 0 {
				out.Extensions["field"] = fe.Field
			}
		case isIntrospectionDisabled(err):
			// gqlgen's own refusal when introspection is turned off.
			out.Message = "introspection is disabled on this server"
			setCode(out, "INTROSPECTION_DISABLED")
		case errors.Is(err, context.DeadlineExceeded):
			out.Message = "the request ran past its deadline (REFRAIN_REQUEST_TIMEOUT): storage is slow or locked"
			setCode(out, "TIMEOUT")
		case errors.Is(err, context.Canceled):
			out.Message = "request cancelled"
			setCode(out, CodeInternal)
		default:
			id := RequestID(ctx)
			logger.ErrorContext(ctx, "graphql resolver failed", "err", err, "path", out.Path.String(), "request_id", id)
			out.Message = "internal error"
			setCode(out, CodeInternal)
			if id != "" {
				out.Extensions["requestId"] = id
			}
		}
		return out
	}
}

// fieldErrorOf maps the domain's sentinel and field errors to the one
// FieldError the caller sees, or returns nil for an error the caller
// cannot fix. Domain fields are dotted paths ("pressure.cap"); the
// extension gets them as a list.
func fieldErrorOf(err error) *FieldError {
	var (
		fe  *FieldError
		se  *segment.Error
		cie *campaign.InputError
		cte *campaign.TransitionError
		sfe *survey.FieldError
		kie *consent.InputError
		mfe *mail.FieldError
		fre *forecast.RangeError
		ote *outbox.TemplateError
		hte hygiene.TypoError
		use *auth.UnknownScopeError
	)
	bad := func(msg string, field ...string) *FieldError {
		return &FieldError{Code: CodeBadUserInput, Message: msg, Field: field}
	}
	switch {
	case errors.As(err, &fe):
		return fe
	case errors.Is(err, store.ErrNotFound), errors.Is(err, customer.ErrNotFound), errors.Is(err, segment.ErrNotFound),
		errors.Is(err, campaign.ErrNotFound), errors.Is(err, template.ErrNotFound), errors.Is(err, engine.ErrNotFound):
		return &FieldError{Code: CodeNotFound, Message: "not found"}
	case errors.Is(err, auth.ErrUnauthenticated), errors.Is(err, auth.ErrTokenExpired),
		errors.Is(err, auth.ErrTokenInvalid), errors.Is(err, auth.ErrAPIKeyNotFound):
		return &FieldError{Code: CodeUnauthenticated, Message: "authentication required: send a valid admin API key or customer token"}
	case errors.As(err, &cie):
		return bad(cie.Error(), strings.Split(cie.Field, ".")...)
	case errors.As(err, &cte):
		return bad(cte.Error(), "id")
	case errors.As(err, &sfe):
		return bad(sfe.Message, strings.Split(sfe.Field, ".")...)
	case errors.As(err, &kie):
		return bad(kie.Message, kie.Field)
	case errors.As(err, &mfe):
		// Its field names a part of the message, not an argument.
		return bad(mfe.Error())
	case errors.As(err, &fre):
		return bad(fre.Error())
	case errors.As(err, &ote):
		return bad(ote.Error())
	case errors.As(err, &hte):
		return bad(hte.Error())
	case errors.As(err, &use):
		return bad(use.Error())
	case errors.Is(err, cursor.ErrInvalid), errors.As(err, &se), errors.Is(err, segment.ErrInvalid),
		errors.Is(err, engine.ErrNotEligible), errors.Is(err, loyalty.ErrInsufficientPoints), scenarios.AsProblems(err) != nil:
		// Sentinels keep the context they were wrapped with.
		return bad(err.Error())
	}
	return nil
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
