package mail

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Sender hands messages to a mail provider. Implementations are safe for
// concurrent use.
//
// A returned error is a *FieldError (the message can never be sent as is),
// a *ProviderError (the provider refused or could not be reached; see
// Temporary and MaybeSent), or the caller's context error.
type Sender interface {
	// Send submits one message and returns the provider's id for it (for
	// Mailgun, the Message-Id without angle brackets, as events carry it).
	Send(ctx context.Context, m Message) (providerID string, err error)
	// SendBatch submits one body to every recipient of b in one call and
	// returns the provider's id of the submission.
	SendBatch(ctx context.Context, b Batch) (providerID string, err error)
}

// Reconciler finds out whether a message was already accepted by the
// provider. The outbox calls it for a message row left "sending" by a crash
// between the provider's acceptance and the row update, or after a
// *ProviderError with MaybeSent, so that a message is never sent twice blindly.
type Reconciler interface {
	// FindSent looks for the provider's acceptance of the message whose
	// Refrain id is messageID, from since onwards. found is false, with a
	// nil error, when the provider has no such message.
	FindSent(ctx context.Context, messageID string, since time.Time) (providerID string, found bool, err error)
}

// ProviderError is a failure reported by, or on the way to, the provider.
type ProviderError struct {
	// Status is the HTTP status the provider answered, 0 when none came
	// back (timeout, network error).
	Status int
	// Reason is the provider's explanation, or the network error.
	Reason string
	// RetryAfter is the wait the provider asked for (Retry-After), 0 if none.
	RetryAfter time.Duration
	// Temporary is true for 5xx, 429, 408, timeouts and network errors:
	// retry later with Backoff. Otherwise the provider refused the message
	// for good.
	Temporary bool
	// MaybeSent is true when the provider may have accepted the message
	// despite the error (timeout, network error, 5xx): reconcile with
	// Reconciler.FindSent before sending again.
	MaybeSent bool
	// Err is the underlying error, if any.
	Err error
}

// Error describes the failure.
func (e *ProviderError) Error() string {
	kind := "permanent"
	if e.Temporary {
		kind = "temporary"
	}
	if e.Status == 0 {
		return fmt.Sprintf("provider %s failure: %s", kind, e.Reason)
	}
	return fmt.Sprintf("provider %s failure: status %d: %s", kind, e.Status, e.Reason)
}

// Unwrap returns the underlying error.
func (e *ProviderError) Unwrap() error { return e.Err }

// IsTemporary reports whether err is worth retrying: a temporary
// *ProviderError. Field errors and permanent refusals are not.
func IsTemporary(err error) bool {
	var pe *ProviderError
	return errors.As(err, &pe) && pe.Temporary
}

// Retry policy of Backoff.
const (
	// BackoffBase is the ceiling of the first retry's wait; it doubles
	// with every attempt.
	BackoffBase = 10 * time.Second
	// BackoffCap bounds the exponential ceiling.
	BackoffCap = time.Hour
	// MaxRetryAfter bounds how long a provider's Retry-After may hold a
	// message back; a larger value is taken as this.
	MaxRetryAfter = 24 * time.Hour
)

// Backoff returns how long to wait before retry number attempt (1 for the
// first retry): exponential with full jitter, a uniformly random wait
// between 0 and min(BackoffCap, BackoffBase·2^(attempt-1)), so that many
// messages failing together do not retry together. A provider's Retry-After
// is a floor: the wait is never shorter than retryAfter (bounded by
// MaxRetryAfter), even above BackoffCap. rnd returns a float in [0, 1); nil
// means math/rand/v2.Float64.
func Backoff(attempt int, retryAfter time.Duration, rnd func() float64) time.Duration {
	if rnd == nil {
		rnd = rand.Float64
	}
	if attempt < 1 {
		attempt = 1
	}
	ceiling := BackoffCap
	if attempt <= 30 { // beyond, the shift could overflow; the cap is long reached
		if d := BackoffBase << (attempt - 1); d < BackoffCap {
			ceiling = d
		}
	}
	r := rnd()
	if r < 0 || r >= 1 {
		r = 0
	}
	wait := time.Duration(r * float64(ceiling))
	retryAfter = min(retryAfter, MaxRetryAfter)
	return max(wait, retryAfter)
}
