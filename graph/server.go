package graph

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/refrain-dev/refrain/graph/model"
)

// ServerOptions configures the GraphQL handler.
type ServerOptions struct {
	// Introspection allows __schema and __type queries.
	Introspection bool
	// MaxDepth is the deepest selection allowed, not counting introspection fields.
	MaxDepth int
	// MaxComplexity is the highest complexity allowed: each field counts 1
	// and connection fields multiply their children by first.
	MaxComplexity int
	// Observe, when set, is told of every operation: its name, type, duration
	// and number of errors. The plugin turns it into Prometheus metrics.
	Observe func(name, opType string, took time.Duration, errors int)
	Logger  *slog.Logger
}

// NewServer builds the GraphQL handler over the real executable schema.
func NewServer(r *Resolver, opts ServerOptions) *handler.Server {
	cfg := Config{Resolvers: r, Directives: Directives()}
	pageCost := func(child int, first *int) int {
		n := 20
		if first != nil && *first > 0 {
			n = *first
		}
		return 1 + child*n
	}
	cfg.Complexity.RefrainQuery.Customers = func(child int, first *int, _ *string, _ *model.CustomerFilter) int {
		return pageCost(child, first)
	}
	cfg.Complexity.Customer.Events = func(child int, first *int, _ *string, _ *string) int {
		return pageCost(child, first)
	}
	srv := handler.New(NewExecutableSchema(cfg))
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(graphql.NoCache[*ast.QueryDocument]{})
	if opts.Introspection {
		srv.Use(extension.Introspection{})
	}
	if opts.MaxComplexity > 0 {
		srv.Use(extension.FixedComplexityLimit(opts.MaxComplexity))
	}
	if opts.MaxDepth > 0 {
		srv.Use(depthLimit{max: opts.MaxDepth})
	}
	// Every operation gets a request id (errors shown as internal carry it),
	// its own dataloaders, and its own batch, shared by the stats fields of
	// the operation.
	srv.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		ctx = withRequestID(ctx, graphql.GetOperationContext(ctx).Headers.Get("X-Request-Id"))
		return next(withLoaders(withMetricsBatch(ctx), r))
	})
	if opts.Observe != nil {
		srv.AroundResponses(func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
			start := time.Now()
			resp := next(ctx)
			name, typ := "", ""
			if graphql.HasOperationContext(ctx) {
				oc := graphql.GetOperationContext(ctx)
				name = oc.OperationName
				if oc.Operation != nil {
					typ = string(oc.Operation.Operation)
					if name == "" {
						name = oc.Operation.Name
					}
				}
			}
			n := 0
			if resp != nil {
				n = len(resp.Errors)
			}
			opts.Observe(name, typ, time.Since(start), n)
			return resp
		})
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	srv.SetErrorPresenter(ErrorPresenter(logger))
	srv.SetRecoverFunc(func(ctx context.Context, err any) error {
		logger.ErrorContext(ctx, "graphql resolver panicked", "panic", fmt.Sprint(err), "request_id", RequestID(ctx))
		return fmt.Errorf("internal error")
	})
	return srv
}

// depthLimit refuses operations whose selections nest deeper than max.
// Introspection fields are not counted: GraphiQL's own schema query nests
// deeply through ofType and would otherwise be refused.
type depthLimit struct{ max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = depthLimit{}

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }
func (d depthLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	if depth := selectionDepth(oc.Operation.SelectionSet, 0, map[string]bool{}); depth > d.max {
		err := gqlerror.Errorf("operation is %d levels deep, more than the limit of %d", depth, d.max)
		err.Extensions = map[string]any{"code": "QUERY_TOO_DEEP"}
		return err
	}
	return nil
}

func selectionDepth(set ast.SelectionSet, depth int, seen map[string]bool) int {
	deepest := depth
	for _, sel := range set {
		var d int
		switch s := sel.(type) {
		case *ast.Field:
			if len(s.Name) > 1 && s.Name[:2] == "__" {
				continue
			}
			d = selectionDepth(s.SelectionSet, depth+1, seen)
		case *ast.InlineFragment:
			d = selectionDepth(s.SelectionSet, depth, seen)
		case *ast.FragmentSpread:
			if s.Definition == nil || seen[s.Name] {
				continue
			}
			seen[s.Name] = true
			d = selectionDepth(s.Definition.SelectionSet, depth, seen)
			delete(seen, s.Name)
		}
		if d > deepest {
			deepest = d
		}
	}
	return deepest
}
