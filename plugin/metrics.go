package plugin

import (
	"database/sql"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the Prometheus collectors of one plugin instance, in a
// registry of its own so two instances in one process never collide.
type Metrics struct {
	Registry        *prometheus.Registry
	HTTPRequests    *prometheus.CounterVec
	HTTPDuration    *prometheus.HistogramVec
	GraphQLOps      *prometheus.CounterVec
	GraphQLErrors   *prometheus.CounterVec
	GraphQLDuration *prometheus.HistogramVec
	// WebhookRejected counts deliveries refused for a bad or missing signature, by source.
	WebhookRejected *prometheus.CounterVec
}

func newMetrics(db *sql.DB) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refrain_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "status"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "refrain_http_request_duration_seconds", Help: "HTTP request duration by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		GraphQLOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refrain_graphql_operations_total", Help: "GraphQL operations by type and operation name (the dashboard's, else other).",
		}, []string{"operation", "type"}),
		GraphQLErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refrain_graphql_errors_total", Help: "Errors returned in GraphQL responses, by operation name.",
		}, []string{"operation"}),
		GraphQLDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "refrain_graphql_operation_duration_seconds", Help: "GraphQL operation duration by type.",
			Buckets: prometheus.DefBuckets,
		}, []string{"type"}),
		WebhookRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refrain_webhook_rejected_total", Help: "Webhook deliveries refused, by source and reason.",
		}, []string{"source", "reason"}),
	}
	m.Registry.MustRegister(m.HTTPRequests, m.HTTPDuration, m.GraphQLOps, m.GraphQLErrors, m.GraphQLDuration,
		m.WebhookRejected, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if db != nil {
		m.Registry.MustRegister(collectors.NewDBStatsCollector(db, "refrain"))
	}
	return m
}

// observeGraphQL records one GraphQL operation.
func (m *Metrics) observeGraphQL(name, opType string, took time.Duration, errs int) {
	if opType == "" {
		opType = "invalid"
	}
	m.GraphQLOps.WithLabelValues(name, opType).Inc()
	m.GraphQLDuration.WithLabelValues(opType).Observe(took.Seconds())
	if errs > 0 {
		m.GraphQLErrors.WithLabelValues(name).Add(float64(errs))
	}
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// instrument counts requests of one route (a fixed label, never the raw path).
func (m *Metrics) instrument(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		m.HTTPRequests.WithLabelValues(route, r.Method, strconv.Itoa(rec.status)).Inc()
		m.HTTPDuration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}
