package graph

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
)

// ServerOptions configures the GraphQL handler.
type ServerOptions struct {
	// Introspection allows __schema and __type queries.
	Introspection bool
	// MaxDepth is the deepest selection allowed, not counting introspection fields.
	MaxDepth int
	// MaxComplexity is the highest complexity allowed (see Complexity):
	// each field counts 1 and every list multiplies its children by its size.
	MaxComplexity int
	// MaxAliases is the most aliased fields an operation may have.
	MaxAliases int
	// MaxTokens caps the tokens the parser reads, before any validation.
	MaxTokens int
	// KnownOperations are the operation names reported to Observe as they
	// are; any other name is reported as "other", so callers never choose
	// a metric label.
	KnownOperations []string
	// Observe, when set, is told of every operation: its name, type, duration
	// and number of errors. The plugin turns it into Prometheus metrics.
	Observe func(name, opType string, took time.Duration, errors int)
	Logger  *slog.Logger
}

// NewServer builds the GraphQL handler over the real executable schema.
func NewServer(r *Resolver, opts ServerOptions) *handler.Server {
	cfg := Config{Resolvers: r, Directives: Directives()}
	srv := handler.New(NewExecutableSchema(cfg))
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(graphql.NoCache[*ast.QueryDocument]{})
	if opts.Introspection {
		srv.Use(extension.Introspection{})
	} else {
		srv.Use(serviceSDL{})
	}
	if opts.MaxTokens > 0 {
		srv.SetParserTokenLimit(opts.MaxTokens)
	}
	srv.Use(requestLimits{maxComplexity: opts.MaxComplexity, maxDepth: opts.MaxDepth, maxAliases: opts.MaxAliases})
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
			name, typ := "other", ""
			if graphql.HasOperationContext(ctx) {
				oc := graphql.GetOperationContext(ctx)
				if oc.Operation != nil {
					typ = string(oc.Operation.Operation)
					if slices.Contains(opts.KnownOperations, oc.Operation.Name) {
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
