package hygiene

import (
	"context"
	"errors"

	"github.com/uptrace/bun"
)

// TypoError is the refusal of an address that looks like a typo of a
// known domain; Suggestion is the address meant.
type TypoError struct{ Suggestion string }

func (e TypoError) Error() string { return "did you mean " + e.Suggestion + "?" }

// AddressCheck is the check consent runs on an address given to subscribe.
type AddressCheck struct {
	DB      bun.IDB
	Checker *Checker
	// RefuseDisposable refuses addresses at disposable domains.
	RefuseDisposable bool
}

// Check refuses syntax errors and (when RefuseDisposable is set)
// disposable domains; a likely typo is refused with a TypoError unless the
// subscriber confirmed it (WithSubscribe); role and suppressed addresses
// are accepted, their status stored later. normalized is the normalised
// address.
func (a AddressCheck) Check(ctx context.Context, normalized string) error {
	r, err := Evaluate(ctx, a.DB, a.Checker, normalized)
	if err != nil {
		return err
	}
	v := SubscribeVerdictFrom(ctx)
	if v != nil {
		v.Result = r
	}
	switch r.Status {
	case StatusInvalid:
		return errors.New("this is not a valid email address: " + r.Reason)
	case StatusDisposable:
		if a.RefuseDisposable {
			return errors.New("disposable addresses are not accepted: please give an address you keep")
		}
	case StatusTypoSuspected:
		if v == nil || !v.ConfirmTypo {
			return TypoError{Suggestion: r.Suggestion}
		}
	}
	return nil
}
