package plugin

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/refrain-dev/refrain/graph"
	"github.com/refrain-dev/refrain/plugin/auth"

	"github.com/refrain-dev/refrain/plugin/commerce"
	"github.com/refrain-dev/refrain/plugin/kpi"
	"github.com/refrain-dev/refrain/plugin/stats"
)

// dashboardFiles are the dashboard's and GraphiQL's pages and scripts, and
// the third-party builds vendored from npm (dashboard/vendor, made by
// dashboard/npm, whose node_modules stays out of the binary).
//
//go:embed dashboard/*.html dashboard/*.js dashboard/*.css dashboard/*.graphql dashboard/vendor
var dashboardFiles embed.FS

// DashboardQuery is the GraphQL request the dashboard page makes.
var DashboardQuery = func() string {
	b, err := dashboardFiles.ReadFile("dashboard/dashboard.graphql")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

// setupMetrics sets the A/B decision rule.
func (p *Plugin) setupMetrics() {
	p.resolver.ABRule = stats.Rule{MinSample: int64(p.cfg.ABMinSample), Threshold: p.cfg.ABThreshold}
}

var (
	dashboardPage  = template.Must(template.ParseFS(dashboardFiles, "dashboard/index.html"))
	dashboardLogin = template.Must(template.ParseFS(dashboardFiles, "dashboard/login.html"))
)

// dashboardCookie holds the admin key a browser signed in with; it is
// HttpOnly, SameSite=Strict and scoped to the dashboard's path.
const dashboardCookie = "refrain_dashboard"

// setupDashboard serves the dashboard: GET /dashboard is a static page (in
// the binary) that reads everything through GraphQL, posted to
// /dashboard/graphql with the key of the signed-in browser. An admin key
// with the read scope is required for every route but the sign-in form,
// given as Authorization: Bearer or through the form (POST
// /dashboard/login), which keeps it in a cookie.
func (p *Plugin) setupDashboard(route func(pattern, name string, h http.Handler), api http.Handler) {
	forecast := false
	if t := p.schemaType("RefrainQuery"); t != nil && t.Fields.ForName("pressureForecast") != nil {
		forecast = true
	}
	route("GET /dashboard", "/dashboard", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, _ := p.dashboardAuth(w, r, false); !ok {
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		dashboardHeaders(w)
		_ = dashboardPage.Execute(w, map[string]any{"Forecast": forecast})
	}))
	route("GET /dashboard/{$}", "/dashboard", http.RedirectHandler("../dashboard", http.StatusFound))
	route("POST /dashboard/login", "/dashboard/login", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimSpace(r.PostFormValue("key"))
		pr, err := p.authn.Authenticate(r.Context(), "Bearer "+key)
		if err != nil || !pr.IsAdmin() || !pr.Can(auth.ScopeRead) {
			loginPage(w, http.StatusUnauthorized, "That key does not open the dashboard: an admin API key with the read scope is needed.")
			return
		}
		http.SetCookie(w, &http.Cookie{Name: dashboardCookie, Value: key, HttpOnly: true, SameSite: http.SameSiteStrictMode,
			Secure: r.TLS != nil || strings.HasPrefix(p.cfg.PublicURL, "https:"), MaxAge: 12 * 3600})
		http.Redirect(w, r, "../dashboard", http.StatusSeeOther)
	}))
	route("GET /dashboard/{file}", "/dashboard", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The page's files and the charting library vendored from npm.
		files := map[string][2]string{"app.js": {"dashboard/app.js", "text/javascript; charset=utf-8"},
			"dashboard.css":     {"dashboard/dashboard.css", "text/css; charset=utf-8"},
			"dashboard.graphql": {"dashboard/dashboard.graphql", "text/plain; charset=utf-8"},
			"uPlot.iife.min.js": {"dashboard/vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8"},
			"uPlot.min.css":     {"dashboard/vendor/uPlot.min.css", "text/css; charset=utf-8"}}
		name := r.PathValue("file")
		f, found := files[name]
		if !found {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": "no dashboard file " + name})
			return
		}
		if ok, _ := p.dashboardAuth(w, r, true); !ok {
			return
		}
		b, _ := dashboardFiles.ReadFile(f[0])
		w.Header().Set("Content-Type", f[1])
		dashboardHeaders(w)
		_, _ = w.Write(b)
	}))
	route("POST /dashboard/graphql", "/dashboard/graphql", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// JSON only: a cross-site form cannot send it, and the cookie is
		// SameSite=Strict besides.
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
			writeJSON(w, http.StatusUnsupportedMediaType, map[string]any{"error": "send the GraphQL request as application/json"})
			return
		}
		ok, key := p.dashboardAuth(w, r, true)
		if !ok {
			return
		}
		r.Header.Set("Authorization", "Bearer "+key)
		api.ServeHTTP(w, r)
	}))
}

// dashboardAuth checks the admin key of a dashboard request (Authorization
// header, else the sign-in cookie) and answers the refusal itself: the
// sign-in form for the page, JSON for the rest.
func (p *Plugin) dashboardAuth(w http.ResponseWriter, r *http.Request, api bool) (bool, string) {
	key := ""
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		key = strings.TrimSpace(strings.TrimPrefix(h, "Bearer "))
	} else if c, err := r.Cookie(dashboardCookie); err == nil {
		key = c.Value
	}
	refuse := func(status int, msg string) (bool, string) {
		if api {
			writeJSON(w, status, map[string]any{"error": msg})
		} else {
			loginPage(w, status, msg)
		}
		return false, ""
	}
	if key == "" {
		return refuse(http.StatusUnauthorized, "")
	}
	pr, err := p.authn.Authenticate(r.Context(), "Bearer "+key)
	switch {
	case err != nil && !errors.Is(err, auth.ErrUnauthenticated):
		p.logger.ErrorContext(r.Context(), "authenticate dashboard", "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "internal error"})
		return false, ""
	case err != nil || pr.Kind == auth.Anonymous:
		return refuse(http.StatusUnauthorized, "That key is not valid (revoked or unknown): sign in again.")
	case !pr.IsAdmin() || !pr.Can(auth.ScopeRead):
		return refuse(http.StatusForbidden, "An admin key with the read scope is required.")
	}
	return true, key
}

func loginPage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("WWW-Authenticate", `Bearer realm="refrain"`)
	dashboardHeaders(w)
	w.WriteHeader(status)
	_ = dashboardLogin.Execute(w, map[string]any{"Error": msg})
}

func dashboardHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
}

// schemaType returns a type of the GraphQL schema this build serves.
func (p *Plugin) schemaType(name string) *ast.Definition {
	return graph.NewExecutableSchema(graph.Config{Resolvers: p.resolver}).Schema().Types[name]
}

// Attributor credits orders to messages with the configured windows.
func (p *Plugin) Attributor() *kpi.Attributor {
	return &kpi.Attributor{ClickWindow: p.cfg.AttributionClickWindow, OpenWindow: p.cfg.AttributionOpenWindow,
		GoalMatches: p.goalMatches}
}

// onOrder runs, in the transaction that stores an order, the loyalty and
// referral programs and then revenue attribution.
func (p *Plugin) onOrder(ctx context.Context, db bun.IDB, now time.Time, o *commerce.Order) error {
	if p.resolver.LoyaltyService != nil {
		if err := p.resolver.LoyaltyService.OnOrder(ctx, db, now, o); err != nil {
			return err
		}
	}
	return p.Attributor().OnOrder(ctx, db, now, o)
}

// goalMatches asks the scenario engine, when there is one, whether an
// order is the goal of a scenario.
func (p *Plugin) goalMatches(ctx context.Context, db bun.IDB, scenarioID string, o *commerce.Order) (bool, error) {
	if p.resolver.Scenarios == nil {
		return false, nil
	}
	return p.resolver.Scenarios.GoalMatches(ctx, db, scenarioID, o)
}

// RebuildKPIs attributes the orders stored before attribution existed,
// then rebuilds the KPI rollups of the messages sent in the UTC days
// [from, to) (every day with a message when both are zero), writing its
// progress to w: refrain kpis rebuild. It is idempotent.
func (p *Plugin) RebuildKPIs(ctx context.Context, from, to time.Time, w io.Writer) error {
	progress := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	start := time.Now()
	n, err := p.Attributor().Backfill(ctx, p.db, p.clock.Now(), progress)
	if err != nil {
		return err
	}
	if from.IsZero() || to.IsZero() {
		lo, hi, ok, err := kpi.Bounds(ctx, p.db)
		if err != nil {
			return err
		}
		if !ok {
			progress("no message: nothing to rebuild (%d orders attributed)", n)
			return nil
		}
		if from.IsZero() {
			from = lo
		}
		if to.IsZero() {
			to = hi
		}
	}
	progress("rebuilding the KPI rollups of the messages sent from %s to %s (UTC days, end excluded)",
		kpi.Day(from).Format(time.DateOnly), to.UTC().Format(time.DateOnly))
	msgs, err := kpi.Rebuild(ctx, p.db, from, to, progress)
	if err != nil {
		return err
	}
	progress("done: %d orders attributed, rollups of %d messages rebuilt in %s", n, msgs, time.Since(start).Round(time.Millisecond))
	return nil
}

// backfillKPIsAtStart rebuilds the rollups once when they are empty while
// messages exist (a database that had messages before the rollups
// migration), in the background, logging its progress.
func (p *Plugin) backfillKPIsAtStart(ctx context.Context) {
	var rows []int
	if err := p.db.NewRaw("SELECT 1 FROM kpi_hourly LIMIT 1").Scan(ctx, &rows); err != nil || len(rows) > 0 {
		return
	}
	if err := p.db.NewRaw("SELECT 1 FROM messages WHERE sent_at IS NOT NULL LIMIT 1").Scan(ctx, &rows); err != nil || len(rows) == 0 {
		return
	}
	p.logger.InfoContext(ctx, "the KPI rollups are empty but messages exist: rebuilding them from the messages (refrain kpis rebuild)")
	w := logWriter{ctx: ctx, p: p}
	if err := p.RebuildKPIs(ctx, time.Time{}, time.Time{}, w); err != nil && ctx.Err() == nil {
		p.logger.ErrorContext(ctx, "rebuild the KPI rollups", "err", err)
	}
}

type logWriter struct {
	ctx context.Context
	p   *Plugin
}

func (l logWriter) Write(b []byte) (int, error) {
	l.p.logger.InfoContext(l.ctx, "kpis rebuild: "+strings.TrimSpace(string(b)))
	return len(b), nil
}
