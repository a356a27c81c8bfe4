package plugin_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/kpi"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

// TestOperationalMetricsPresentAtZero: a fresh service already exposes
// every operational series, at zero, before anything has happened.
func TestOperationalMetricsPresentAtZero(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		e := newEnv(t, db, nil)
		rec := httptest.NewRecorder()
		e.p.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		require.Equal(t, http.StatusOK, rec.Code)
		body := rec.Body.String()
		for _, series := range []string{
			"refrain_inbox_backlog 0",
			"refrain_inbox_oldest_age_seconds 0",
			`refrain_outbox_messages{state="queued"} 0`,
			`refrain_outbox_messages{state="sending"} 0`,
			`refrain_outbox_messages{state="failed"} 0`,
			"refrain_scenario_due_lag_seconds 0",
			`refrain_campaigns{status="SENDING"} 0`,
			`refrain_campaigns{status="SCHEDULED"} 0`,
			`refrain_campaign_recipients{state="pending"} 0`,
			`refrain_campaign_recipients{state="written"} 0`,
			`refrain_webhook_rejected_total{reason="bad_signature",source="shopify"} 0`,
			`refrain_webhook_rejected_total{reason="stale_timestamp",source="standard"} 0`,
			`refrain_mailgun_calls_total{operation="send",outcome="ok"} 0`,
			`refrain_mailgun_calls_total{operation="send",outcome="server_error"} 0`,
		} {
			require.Contains(t, body, "\n"+series+"\n")
		}
	})
}

// TestOperationalMetricsFollowTheQueues: a waiting delivery and a sent
// message show in the gauges, with the delivery's age on the service clock.
func TestOperationalMetricsFollowTheQueues(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		m := newMetricsEnv(t, db)
		m.message(m.customer(), kpi.Dims{Program: "welcome"}, t0)
		_, err := db.NewRaw(`INSERT INTO inbound_events (source, topic, dedupe_key, headers, body, status, attempts, received_at, next_attempt_at)
VALUES ('shopify', 'orders/create', 'k1', '{}', ?, 'PENDING', 0, ?, ?)`, []byte("{}"), t0.Add(-90*time.Second), t0).Exec(m.ctx)
		require.NoError(t, err)
		rec := httptest.NewRecorder()
		m.p.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		body := rec.Body.String()
		require.Contains(t, body, "\nrefrain_inbox_backlog 1\n")
		require.Contains(t, body, "\nrefrain_inbox_oldest_age_seconds 90\n")
		require.Contains(t, body, "\n"+`refrain_outbox_messages{state="sent"} 1`+"\n")
	})
}
