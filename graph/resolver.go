// Package graph is Refrain's GraphQL subgraph: gqlgen's generated executor,
// thin resolvers that call one domain function each, the access directives,
// and the one error presenter. It holds no SQL and no business rules.
package graph

//go:generate sh -c "cd .. && go tool gqlgen generate"

import (
	"context"
	"log/slog"

	"github.com/refrain-dev/refrain/plugin/mail/link"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/campaign"
	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/forecast"
	"github.com/refrain-dev/refrain/plugin/hygiene"
	"github.com/refrain-dev/refrain/plugin/loyalty"
	"github.com/refrain-dev/refrain/plugin/mail/consent"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
	"github.com/refrain-dev/refrain/plugin/pressure"
	"github.com/refrain-dev/refrain/plugin/stats"
	"github.com/refrain-dev/refrain/scenarios/engine"
)

// Resolver holds the dependencies every resolver may use.
type Resolver struct {
	DB      *bun.DB
	Clock   clock.Clock
	Logger  *slog.Logger
	Version string

	// Mail writes, renders and lists messages.
	Mail *outbox.Service
	// Consent runs subscriptions, confirmations and preferences.
	Consent *consent.Service
	// SuppressionImporter copies the provider's suppression lists into
	// Refrain's and returns how many entries it read and added; nil when no
	// provider is configured.
	SuppressionImporter func(ctx context.Context) (read, added int, err error)
	// Scenarios stores and runs scenarios.
	Scenarios *engine.Engine
	// Hygiene checks addresses; HygieneAllowed lists the statuses
	// marketing mail goes to (nil: OK and ROLE).
	Hygiene        *hygiene.Checker
	HygieneAllowed map[hygiene.Status]bool
	// LoyaltyService runs points, tiers and referrals.
	LoyaltyService *loyalty.Service
	// Pressure is the marketing pressure policy.
	Pressure *pressure.Policy
	// Campaigns stores and sends campaigns.
	Campaigns *campaign.Service
	// Forecaster projects the marketing load.
	Forecaster *forecast.Forecaster
	// ABRule is when an A/B test may be decided.
	ABRule stats.Rule
	// Links signs and verifies the links of mails (survey tokens here).
	Links *link.Signer
}
