package graph

import (
	"context"
	"errors"
	"strings"

	"github.com/refrain-dev/refrain/graph/model"
	"github.com/refrain-dev/refrain/plugin/auth"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/survey"
)

// surveyPayload completes the payload of a submission that ended with
// err: OK when nil, a user error for an answer or token the caller can
// fix, else the error.
func surveyPayload(p *model.SubmitSurveyPayload, err error) (*model.SubmitSurveyPayload, error) {
	var fe *survey.FieldError
	switch {
	case err == nil:
		p.Ok = true
	case errors.As(err, &fe):
		p.UserErrors = append(p.UserErrors, userError(fe.Message, model.UserErrorCodeInvalid, append([]string{"input"}, strings.Split(fe.Field, ".")...)...))
	default:
		return nil, err
	}
	return p, nil
}

// surveyCustomer is the customer a signed-in caller submits a survey for:
// a customer themself (ref, when given, must be theirs), or the customer
// ref names for an admin key with write access; source says which.
func (r *Resolver) surveyCustomer(ctx context.Context, ref *string) (*customer.Customer, string, []*model.UserError, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, "", nil, err
	}
	switch {
	case p.Kind == auth.Anonymous:
		return nil, "", nil, errUnauthenticated()
	case p.Kind == auth.Customer:
		c, err := r.selfCustomer(ctx, p, true)
		if err != nil {
			return nil, "", nil, err
		}
		if ref != nil && !c.HasRef(*ref) {
			return nil, "", nil, errForbidden()
		}
		return c, "survey", nil, nil
	case p.IsAdmin() && p.Can(auth.ScopeWrite):
		if ref == nil {
			return nil, "", []*model.UserError{userError("customer is required with an admin key", model.UserErrorCodeInvalid, "input", "customer")}, nil
		}
		c, err := customer.GetByRef(ctx, r.DB, *ref)
		if errors.Is(err, customer.ErrNotFound) {
			return nil, "", []*model.UserError{userError("no customer with this id", model.UserErrorCodeNotFound, "input", "customer")}, nil
		}
		if err != nil {
			return nil, "", nil, err
		}
		return c, "admin", nil, nil
	}
	return nil, "", nil, errForbidden()
}
