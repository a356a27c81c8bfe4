package model

import "github.com/refrain-dev/refrain/scenarios/engine"

// Program is a scenario seen as a relational program: its title, audience
// and KPI from its definition. Its stats, abTest and holdout fields are
// resolved in batches (graph/metrics_convert.go).
type Program struct {
	ID             string        `json:"id"`
	Title          string        `json:"title"`
	Objective      string        `json:"objective"`
	Audience       *string       `json:"audience,omitempty"`
	Kpi            *string       `json:"kpi,omitempty"`
	Goal           *string       `json:"goal,omitempty"`
	Priority       int           `json:"priority"`
	Status         engine.Status `json:"status"`
	HoldoutPercent int           `json:"holdoutPercent"`
	// Control is the first variant of the program's first split step
	// (empty without one): the default control of its A/B test.
	Control string `json:"-"`
}
