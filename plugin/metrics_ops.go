package plugin

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/campaign"
	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/inbox"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
	"github.com/refrain-dev/refrain/plugin/storefront/ingest"
	"github.com/refrain-dev/refrain/scenarios/engine"
)

// opsMetrics are the operational signals: the queues, read from the
// database at each scrape, and the outcomes of Mailgun calls. Every series
// exists from the start, at zero, so alerts and dashboards never wait for a
// first event to see it.
type opsMetrics struct {
	// MailgunCalls counts calls to the Mailgun API by operation and outcome.
	MailgunCalls *prometheus.CounterVec
}

// Mailgun call operations and outcomes, the labels of refrain_mailgun_calls_total.
var (
	mailgunOperations = []string{"send", "events", "suppressions", "other"}
	mailgunOutcomes   = []string{"ok", "rejected", "rate_limited", "server_error", "network_error"}
)

// registerOpsMetrics adds the operational signals to m's registry.
func registerOpsMetrics(m *Metrics, db bun.IDB, clk clock.Clock, logger *slog.Logger) *opsMetrics {
	ops := &opsMetrics{
		MailgunCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refrain_mailgun_calls_total", Help: "Calls to the Mailgun API by operation (send, events, suppressions, other) and outcome (ok, rejected: 4xx, rate_limited: 429, server_error: 5xx, network_error).",
		}, []string{"operation", "outcome"}),
	}
	for _, op := range mailgunOperations {
		for _, o := range mailgunOutcomes {
			ops.MailgunCalls.WithLabelValues(op, o)
		}
	}
	for _, src := range event.Sources() {
		for _, reason := range []string{ingest.ReasonMissingSignature, ingest.ReasonBadSignature, ingest.ReasonStaleTimestamp, ingest.ReasonUnknownKey} {
			m.WebhookRejected.WithLabelValues(string(src), reason)
		}
	}
	m.Registry.MustRegister(ops.MailgunCalls, &queueCollector{db: db, clock: clk, logger: logger})
	return ops
}

// mailgunClient returns c with a transport that counts each call's outcome.
func (o *opsMetrics) mailgunClient(c *http.Client) *http.Client {
	cc := *c
	next := cc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	cc.Transport = roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		outcome := "network_error"
		if err == nil {
			switch s := resp.StatusCode; {
			case s < 400:
				outcome = "ok"
			case s == http.StatusTooManyRequests:
				outcome = "rate_limited"
			case s < 500:
				outcome = "rejected"
			default:
				outcome = "server_error"
			}
		}
		o.MailgunCalls.WithLabelValues(mailgunOperation(req.URL.Path), outcome).Inc()
		return resp, err
	})
	return &cc
}

// mailgunOperation names a Mailgun API call by its path.
func mailgunOperation(path string) string {
	switch {
	case strings.HasSuffix(path, "/messages"):
		return "send"
	case strings.HasSuffix(path, "/events"):
		return "events"
	case strings.Contains(path, "/bounces"), strings.Contains(path, "/complaints"), strings.Contains(path, "/unsubscribes"):
		return "suppressions"
	}
	return "other"
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// queueCollector reads the queues at each scrape: a few indexed counts.
type queueCollector struct {
	db     bun.IDB
	clock  clock.Clock
	logger *slog.Logger
}

var (
	descInboxBacklog = prometheus.NewDesc("refrain_inbox_backlog",
		"Webhook deliveries stored and not yet processed (pending or being processed).", nil, nil)
	descInboxOldest = prometheus.NewDesc("refrain_inbox_oldest_age_seconds",
		"Age of the oldest delivery not yet processed; 0 when none waits.", nil, nil)
	descOutbox = prometheus.NewDesc("refrain_outbox_messages",
		"Messages by state (queued, sending, sent, failed, suppressed).", []string{"state"}, nil)
	descDueLag = prometheus.NewDesc("refrain_scenario_due_lag_seconds",
		"How long the enrollment due the longest has waited for its step; 0 when none is due.", nil, nil)
	descCampaigns = prometheus.NewDesc("refrain_campaigns",
		"Campaigns by status.", []string{"status"}, nil)
	descCampaignRecipients = prometheus.NewDesc("refrain_campaign_recipients",
		"Recipients of the campaigns being sent, by state (pending, held, written, skipped): the progress of the sends.", []string{"state"}, nil)
)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInboxBacklog, descInboxOldest, descOutbox, descDueLag, descCampaigns, descCampaignRecipients} {
		ch <- d
	}
}

// Collect reads each queue; one that cannot be read is logged and left
// out of this scrape rather than reported as zero.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := c.clock.Now()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	fail := func(what string, err error) {
		c.logger.ErrorContext(ctx, "metrics: read "+what, "err", err)
	}
	if n, oldest, err := inbox.Backlog(ctx, c.db); err != nil {
		fail("inbox backlog", err)
	} else {
		gauge(descInboxBacklog, float64(n))
		gauge(descInboxOldest, ageSeconds(now, oldest))
	}
	if counts, err := outbox.CountByState(ctx, c.db); err != nil {
		fail("outbox states", err)
	} else {
		for _, s := range outbox.States() {
			gauge(descOutbox, float64(counts[s]), string(s))
		}
	}
	if due, ok, err := engine.OldestDue(ctx, c.db, now); err != nil {
		fail("oldest due enrollment", err)
	} else {
		lag := 0.0
		if ok {
			lag = ageSeconds(now, due)
		}
		gauge(descDueLag, lag)
	}
	if byStatus, recipients, err := campaign.Progress(ctx, c.db); err != nil {
		fail("campaign progress", err)
	} else {
		for _, s := range campaign.Statuses() {
			gauge(descCampaigns, float64(byStatus[s]), string(s))
		}
		for state, n := range map[string]int{"pending": recipients.Pending, "held": recipients.Held,
			"written": recipients.Written, "skipped": recipients.Skipped} {
			gauge(descCampaignRecipients, float64(n), state)
		}
	}
}

// ageSeconds is how long before now t was, never negative; 0 for a zero t.
func ageSeconds(now, t time.Time) float64 {
	if t.IsZero() || t.After(now) {
		return 0
	}
	return now.Sub(t).Seconds()
}
