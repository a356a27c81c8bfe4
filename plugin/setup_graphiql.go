package plugin

import (
	"html/template"
	"net/http"
)

// setupGraphiQL serves GraphiQL's scripts and styles from the binary at
// GET /graphiql/{file} (no CDN: it works offline and under a strict
// Content-Security-Policy) and returns the page, which buildHandler serves
// at GET /graphql to browsers. The page and its files are public, as
// GraphiQL holds no data: queries still need a key.
func (p *Plugin) setupGraphiQL(route func(pattern, name string, h http.Handler)) http.Handler {
	// The files the page loads, by the name it asks for: their path in
	// dashboardFiles and their media type.
	assets := map[string][2]string{
		"graphiql-start.js":           {"dashboard/graphiql-start.js", "text/javascript; charset=utf-8"},
		"graphiql.min.js":             {"dashboard/vendor/graphiql.min.js", "text/javascript; charset=utf-8"},
		"graphiql.min.css":            {"dashboard/vendor/graphiql.min.css", "text/css; charset=utf-8"},
		"react.production.min.js":     {"dashboard/vendor/react.production.min.js", "text/javascript; charset=utf-8"},
		"react-dom.production.min.js": {"dashboard/vendor/react-dom.production.min.js", "text/javascript; charset=utf-8"},
	}
	page := template.Must(template.ParseFS(dashboardFiles, "dashboard/graphiql.html"))
	route("GET /graphiql/{file}", "/graphiql", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := assets[r.PathValue("file")]
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": "no GraphiQL file " + r.PathValue("file")})
			return
		}
		b, err := dashboardFiles.ReadFile(a[0])
		if err != nil {
			p.logger.ErrorContext(r.Context(), "read an embedded GraphiQL file", "file", a[0], "err", err)
			writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "internal error"})
			return
		}
		w.Header().Set("Content-Type", a[1])
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(b)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_ = page.Execute(w, nil)
	})
}
