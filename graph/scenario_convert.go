package graph

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/refrain-dev/refrain/graph/model"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/scenarios"
	"github.com/refrain-dev/refrain/scenarios/engine"
)

// scenarioErrors turns a definition's problems, or a domain error, into
// user errors; other errors come back as they are.
func scenarioErrors(err error, field string) ([]*model.ScenarioError, error) {
	if ps := scenarios.AsProblems(err); ps != nil {
		out := make([]*model.ScenarioError, 0, len(ps))
		for _, p := range ps {
			e := &model.ScenarioError{Field: []string{field}, Message: p.Error(), Code: model.UserErrorCodeInvalid}
			if p.Line > 0 {
				l := p.Line
				e.Line = &l
			}
			if p.Step != "" {
				s := p.Step
				e.Step = &s
			}
			out = append(out, e)
		}
		return out, nil
	}
	switch {
	case errors.Is(err, engine.ErrNotFound), errors.Is(err, customer.ErrNotFound):
		return []*model.ScenarioError{{Field: []string{field}, Message: err.Error(), Code: model.UserErrorCodeNotFound}}, nil
	case errors.Is(err, engine.ErrNotEligible):
		return []*model.ScenarioError{{Field: []string{field}, Message: err.Error(), Code: model.UserErrorCodeInvalid}}, nil
	}
	return nil, err
}

// compiledOf loads the current definition of a stored scenario.
func (r *Resolver) compiledOf(ctx context.Context, s *engine.Scenario) (*scenarios.Scenario, error) {
	return r.Scenarios.Compiled(ctx, r.DB, s.ID, s.Version)
}

func enrollmentState(s model.EnrollmentState) engine.State {
	return engine.State(strings.ToLower(string(s)))
}

func parseEnrollmentID(id string) (int64, error) {
	return strconv.ParseInt(id, 10, 64)
}
