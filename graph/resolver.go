// Package graph is Refrain's GraphQL subgraph: gqlgen's generated executor,
// thin resolvers that call one domain function each, the access directives,
// and the one error presenter. It holds no SQL and no business rules.
package graph

//go:generate sh -c "cd .. && go tool gqlgen generate"

import (
	"log/slog"

	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/uptrace/bun"
)

// Resolver holds the dependencies every resolver may use.
type Resolver struct {
	DB      *bun.DB
	Clock   clock.Clock
	Logger  *slog.Logger
	Version string
}
