package tracking_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/mail/mailgun"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
	"github.com/refrain-dev/refrain/plugin/mail/tracking"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

// eventData returns a Mailgun fixture's event-data object.
func eventData(t *testing.T, name string) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "webhooks", name))
	require.NoError(t, err)
	var doc struct {
		EventData json.RawMessage `json:"event-data"`
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	return doc.EventData
}

// eventsAPI serves Mailgun's events API for the marketing domain in two
// pages (with an event kind Refrain does not read), nothing for the
// transactional domain, and records the queries it was asked.
type eventsAPI struct {
	*httptest.Server
	mu      sync.Mutex
	queries []string
}

func newEventsAPI(t *testing.T) *eventsAPI {
	api := &eventsAPI{}
	page1 := []json.RawMessage{eventData(t, "mailgun_delivered.json"), eventData(t, "mailgun_opened.json"),
		json.RawMessage(`{"event":"stored","id":"st-1","timestamp":1377047343.0,"recipient":"a@example.com"}`)}
	page2 := []json.RawMessage{eventData(t, "mailgun_clicked.json")}
	api.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); !ok || user != "api" || pass != "key-test" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		api.mu.Lock()
		api.queries = append(api.queries, r.URL.Path+"?"+r.URL.RawQuery)
		api.mu.Unlock()
		var items []json.RawMessage
		next := ""
		switch r.URL.Path {
		case "/v3/mg.shop.example/events":
			items, next = page1, api.URL+"/v3/mg.shop.example/events/p2"
		case "/v3/mg.shop.example/events/p2":
			items, next = page2, api.URL+"/v3/mg.shop.example/events/p3"
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"items": items, "paging": map[string]string{"next": next}})
	}))
	t.Cleanup(api.Close)
	return api
}

func (a *eventsAPI) taken() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.queries
	a.queries = nil
	return out
}

func TestPollerRecordsWhatWebhooksMissed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := t.Context()
		api := newEventsAPI(t)
		clk := clock.NewVirtual(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
		mg, err := mailgun.New(mailgun.Config{APIKey: "key-test", Domain: "mg.shop.example",
			TransactionalDomain: "tx.shop.example", APIBase: api.URL + "/v3"}, &http.Client{}, clk, nil)
		require.NoError(t, err)
		p := &tracking.Poller{DB: db.DB, Source: mg, Clock: clk, Interval: time.Minute}

		n, err := p.Poll(ctx)
		require.NoError(t, err)
		require.Equal(t, 3, n, "delivered, opened and clicked recorded; the stored event skipped")
		q := api.taken()
		require.Len(t, q, 4, "three pages of the marketing domain, one of the transactional")
		require.Contains(t, q[0], "begin=Sun%2C+22+Nov+2026+12%3A00%3A00+%2B0000", "the first poll reads the last 24 hours")
		require.Contains(t, q[0], "end=Mon%2C+23+Nov+2026+11%3A55%3A00+%2B0000", "five minutes behind now")
		require.Contains(t, q[0], "ascending=yes")
		require.Contains(t, q[3], "/v3/tx.shop.example/events?")
		var kinds []string
		require.NoError(t, db.NewSelect().Model((*outbox.MessageEvent)(nil)).Column("kind").Order("kind").Scan(ctx, &kinds))
		require.Equal(t, []string{"clicked", "delivered", "opened"}, kinds)

		// Nothing new to read until time passes.
		n, err = p.Poll(ctx)
		require.NoError(t, err)
		require.Zero(t, n)
		require.Empty(t, api.taken())

		// The next poll starts where the last one stopped; the same events
		// read again (the API answers them again here) are not recorded twice.
		clk.Advance(10 * time.Minute)
		n, err = p.Poll(ctx)
		require.NoError(t, err)
		require.Zero(t, n)
		q = api.taken()
		require.Contains(t, q[0], "begin=Mon%2C+23+Nov+2026+11%3A55%3A00+%2B0000")
		require.Contains(t, q[0], "end=Mon%2C+23+Nov+2026+12%3A05%3A00+%2B0000")
		count, err := db.NewSelect().Model((*outbox.MessageEvent)(nil)).Count(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 3, count)
	})
}

func TestPollerKeepsItsPositionOnFailure(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := t.Context()
		failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		}))
		t.Cleanup(failing.Close)
		clk := clock.NewVirtual(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
		mg, err := mailgun.New(mailgun.Config{APIKey: "key-test", Domain: "mg.shop.example", APIBase: failing.URL + "/v3"},
			&http.Client{}, clk, nil)
		require.NoError(t, err)
		p := &tracking.Poller{DB: db.DB, Source: mg, Clock: clk, Interval: time.Minute}
		_, err = p.Poll(ctx)
		require.ErrorContains(t, err, "poll mailgun events of mg.shop.example")
		n, err := db.NewSelect().Table("mail_poll_state").Count(ctx)
		require.NoError(t, err)
		require.Zero(t, n, "a failed poll does not move the position, so the period is read again")
	})
}
