package storefront

import (
	"errors"
	"fmt"
)

// ErrBadSignature means the delivery is not authentic: the signature header is
// missing or malformed, does not match the body, was made with another key, or
// its timestamp is outside the freshness window. The HTTP layer answers 401
// and stores nothing.
var ErrBadSignature = errors.New("bad webhook signature")

// ErrNoKey means the adapter has no secret or key to verify with. It is a
// configuration problem, not the sender's; the HTTP layer should answer 5xx
// (so platforms that retry will retry once it is fixed) and log loudly.
var ErrNoKey = errors.New("no webhook signing key configured")

// ErrUnknownTopic means the topic is not one the adapter turns into events.
// The delivery is authentic and may be stored; the caller marks it ignored.
var ErrUnknownTopic = errors.New("unknown webhook topic")

// ErrNotFound is wrapped by a Fetcher when the store no longer has the
// resource (a BigCommerce cart is deleted once it becomes an order). The
// event is then applied with what its payload carries.
var ErrNotFound = errors.New("store resource not found")

// ParseError reports a payload or header that is present but cannot be used.
// Field names the offending JSON field (a dotted path such as
// "line_items.2.price") or header.
type ParseError struct {
	// Field is the JSON path or header name that is wrong.
	Field string
	// Err is the underlying reason.
	Err error
}

// Error describes the field and the reason.
func (e *ParseError) Error() string {
	return fmt.Sprintf("parse %s: %v", e.Field, e.Err)
}

// Unwrap returns the underlying reason.
func (e *ParseError) Unwrap() error { return e.Err }

// FieldError returns a *ParseError for field, or nil when err is nil. When err
// is already a *ParseError its field is appended to field with a dot, so nested
// decoders can report a full path.
func FieldError(field string, err error) error {
	if err == nil {
		return nil
	}
	var pe *ParseError
	if errors.As(err, &pe) {
		return &ParseError{Field: field + "." + pe.Field, Err: pe.Err}
	}
	return &ParseError{Field: field, Err: err}
}
