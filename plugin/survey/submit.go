package survey

import (
	"context"
	"errors"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/mail/link"
)

// SubmitInTx is Submit in a transaction of its own (or the caller's when
// db already is one), so preferences and event commit together.
func SubmitInTx(ctx context.Context, db bun.IDB, now time.Time, c *customer.Customer, name string, answers map[string]any, source string) error {
	if tx, ok := db.(bun.Tx); ok {
		return Submit(ctx, tx, now, c, name, answers, source)
	}
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		return Submit(ctx, tx, now, c, name, answers, source)
	})
}

// SubmitLink stores answers given through the survey link of a mail. The
// token names the customer and is bound to the address they had when it
// was sent; ref, when given, must be one of that customer's ids. Any
// problem with the token is a FieldError on "token" that says no more than
// link.ErrInvalid, so a token cannot be probed. links nil refuses every
// token.
func SubmitLink(ctx context.Context, db bun.IDB, links *link.Signer, now time.Time, token string, ref *string, name string, answers map[string]any) error {
	if err := Check(name, answers); err != nil {
		return err
	}
	invalid := &FieldError{Field: "token", Message: link.ErrInvalid.Error()}
	claims, err := link.Parse(token)
	if err != nil || claims.Purpose != link.Survey || links == nil {
		return invalid
	}
	c, err := customer.GetByRef(ctx, db, claims.CustomerID)
	if errors.Is(err, customer.ErrNotFound) {
		return invalid
	}
	if err != nil {
		return err
	}
	if c.EmailNormalized == nil {
		return invalid
	}
	if _, err := links.Verify(token, link.Survey, *c.EmailNormalized, now); err != nil {
		return invalid
	}
	if ref != nil && !c.HasRef(*ref) {
		return invalid
	}
	return SubmitInTx(ctx, db, now, c, name, answers, "survey_link")
}
