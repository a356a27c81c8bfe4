package plugin

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/refrain-dev/refrain/graph"
	"github.com/refrain-dev/refrain/plugin/auth"
	"github.com/refrain-dev/refrain/plugin/store"
)

func (p *Plugin) buildHandler(ctx context.Context) (http.Handler, error) {
	authn, err := p.newAuthenticator(ctx)
	if err != nil {
		return nil, err
	}
	p.authn = authn
	// Setup functions run first: they add their services to the resolver
	// and their routes to the mux.
	mux := http.NewServeMux()
	route := func(pattern, name string, h http.Handler) {
		mux.Handle(pattern, p.metrics.instrument(name, h))
	}
	if err := p.setupStorefront(ctx, route); err != nil {
		return nil, err
	}
	if err := p.setupMail(ctx, route); err != nil {
		return nil, err
	}
	if err := p.setupPressure(); err != nil {
		return nil, err
	}
	if err := p.setupScenarios(ctx); err != nil {
		return nil, err
	}
	if err := p.setupCampaign(); err != nil {
		return nil, err
	}
	p.setupMetrics()
	gql := graph.NewServer(p.resolver, graph.ServerOptions{
		Introspection: p.cfg.Introspection, MaxDepth: p.cfg.QueryMaxDepth, MaxComplexity: p.cfg.QueryMaxComplexity,
		MaxAliases: p.cfg.QueryMaxAliases, MaxTokens: p.cfg.QueryMaxTokens, KnownOperations: []string{"Dashboard"}, // the dashboard's; others are "other"
		Observe: p.metrics.observeGraphQL, Logger: p.logger,
	})
	var graphiql http.Handler
	if p.cfg.GraphiQL {
		graphiql = p.setupGraphiQL(route)
	}
	api := authMiddleware(authn, withRequestInfo(gql))
	p.setupDashboard(route, api)
	route("/graphql", "/graphql", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if graphiql != nil && r.Method == http.MethodGet && r.URL.Query().Get("query") == "" &&
			strings.Contains(r.Header.Get("Accept"), "text/html") {
			graphiql.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > p.cfg.GraphQLMaxBody {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"error": "request body too large (REFRAIN_GRAPHQL_MAX_BODY)"})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, p.cfg.GraphQLMaxBody)
		api.ServeHTTP(w, r)
	}))
	route("GET /healthz", "/healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	}))
	route("GET /readyz", "/readyz", http.HandlerFunc(p.readyz))
	route("GET /metrics", "/metrics", p.metrics.Handler())
	route("/", "other", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "no route for " + r.Method + " " + r.URL.Path})
	}))
	return recoverer(p, withDeadline(p.cfg.RequestTimeout, mux)), nil
}

// withDeadline gives every request a deadline: its context, which the
// server also cancels when the client leaves, ends after d, and with it the
// database calls made for the request.
func withDeadline(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// readyz answers 200 when the database answers and every migration is
// applied, 503 otherwise, with the reason.
func (p *Plugin) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := p.db.PingContext(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "reason": "database unreachable"})
		return
	}
	m, err := store.NewMigrator(p.db)
	if err == nil {
		var pending int
		pending, err = m.Pending(ctx)
		if err == nil && pending > 0 {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "reason": "migrations pending", "pending": pending})
			return
		}
	}
	if err != nil {
		p.logger.ErrorContext(ctx, "readiness check failed", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "reason": "migration status unknown"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "dialect": store.DialectOf(p.db)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func recoverer(p *Plugin, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				p.logger.ErrorContext(r.Context(), "http handler panicked", "panic", v, "path", r.URL.Path)
				writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "internal error"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// authMiddleware authenticates each request's Authorization header and
// passes it on with the Principal, or the authentication error, in its
// context (auth.Authenticator.WithAuthorization). It never rejects a
// request itself.
func authMiddleware(a *auth.Authenticator, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(a.WithAuthorization(r.Context(), r.Header.Get("Authorization"))))
	})
}
