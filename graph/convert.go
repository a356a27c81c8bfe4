package graph

import (
	"context"
	"errors"
	"strings"

	"github.com/refrain-dev/refrain/graph/model"
	"github.com/refrain-dev/refrain/plugin/auth"
	"github.com/refrain-dev/refrain/plugin/customer"
)

func userError(msg string, code model.UserErrorCode, field ...string) *model.UserError {
	return &model.UserError{Field: field, Message: msg, Code: code}
}

// selfCustomer loads the customer of a customer token. A token for a store
// customer Refrain has not seen yet gets an empty customer, unless the caller
// needs a stored row (create), in which case the row is created.
func (r *Resolver) selfCustomer(ctx context.Context, p auth.Principal, create bool) (*customer.Customer, error) {
	c, err := customer.GetByRef(ctx, r.DB, p.CustomerID)
	if errors.Is(err, customer.ErrNotFound) {
		if !create {
			return customer.Unknown(p.CustomerID), nil
		}
		c, _, err = customer.Upsert(ctx, r.DB, r.Clock.Now(), customer.Profile{ExternalID: &p.CustomerID})
	}
	return c, err
}

func profileOf(c *customer.Customer) *model.CustomerProfile {
	tags := c.Tags
	if tags == nil {
		tags = []string{}
	}
	attrs := c.Attributes
	if attrs == nil {
		attrs = map[string]any{}
	}
	return &model.CustomerProfile{Email: c.Email, EmailNormalized: c.EmailNormalized, FirstName: c.FirstName,
		LastName: c.LastName, Locale: c.Locale, TimeZone: c.TimeZone, Source: string(c.Source), Tags: tags,
		Attributes: attrs, RefrainID: c.PublicID, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

func consentOf(c *customer.Customer) *model.Consent {
	proof := c.ConsentProof
	if proof == nil {
		proof = map[string]any{}
	}
	state := model.ConsentState(strings.ToUpper(string(c.ConsentState)))
	if !state.IsValid() {
		state = model.ConsentStateUnknown
	}
	return &model.Consent{State: state, UpdatedAt: c.ConsentAt, Source: c.ConsentSource, Method: c.ConsentMethod, Proof: proof}
}

func lifecycleOf(c *customer.Customer) *model.Lifecycle {
	stage := c.Stage
	if stage == "" {
		stage = "SUBSCRIBER"
	}
	return &model.Lifecycle{Stage: stage, Since: c.StageSince, OrdersCount: c.OrdersCount,
		TotalSpent:   &model.Money{Amount: int(c.TotalSpentMinor), Currency: c.Currency},
		FirstOrderAt: c.FirstOrderAt, LastOrderAt: c.LastOrderAt}
}
