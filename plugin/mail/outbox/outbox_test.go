package outbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/kpi"
	"github.com/refrain-dev/refrain/plugin/mail"
	"github.com/refrain-dev/refrain/plugin/mail/link"
	"github.com/refrain-dev/refrain/plugin/mail/mailgun"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
	"github.com/refrain-dev/refrain/plugin/mail/template"
	"github.com/refrain-dev/refrain/plugin/privacy"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
	"github.com/refrain-dev/refrain/scenarios/library/templates"
)

var t0 = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

// fakeMailgun answers like Mailgun's messages and events APIs: it keeps the
// messages it accepted and reports them as "accepted" events filtered by
// the message_id user variable, as FindSent asks. script, when set, decides
// each messages call by its number (1-based): the status to answer, a delay
// before answering, and whether the message counts as accepted.
type fakeMailgun struct {
	*httptest.Server
	mu       sync.Mutex
	calls    int
	accepted []url.Values
	searches int
	script   func(n int) (status int, delay time.Duration, accept bool)
}

func newFakeMailgun(t *testing.T) *fakeMailgun {
	f := &fakeMailgun{}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeMailgun) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/messages"):
		if err := r.ParseMultipartForm(32 << 20); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		form := url.Values(r.MultipartForm.Value)
		f.mu.Lock()
		f.calls++
		n := f.calls
		f.mu.Unlock()
		status, delay, accept := http.StatusOK, time.Duration(0), true
		if f.script != nil {
			status, delay, accept = f.script(n)
		}
		if accept {
			f.mu.Lock()
			f.accepted = append(f.accepted, form)
			f.mu.Unlock()
		}
		time.Sleep(delay)
		w.WriteHeader(status)
		if status == http.StatusOK {
			fmt.Fprintf(w, `{"id":"<%d.ABC@mg.shop.example>","message":"Queued. Thank you."}`, n)
			return
		}
		fmt.Fprintf(w, `{"message":"status %d from the fake"}`, status)
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/events"):
		var filter map[string]string
		_ = json.Unmarshal([]byte(r.URL.Query().Get("user-variables")), &filter)
		f.mu.Lock()
		f.searches++
		var items []map[string]any
		for i, form := range f.accepted {
			if form.Get("v:message_id") == filter["message_id"] {
				items = append(items, map[string]any{"event": "accepted", "id": fmt.Sprintf("acc%d", i),
					"timestamp": float64(t0.Unix()), "user-variables": map[string]any{"message_id": form.Get("v:message_id")},
					"message": map[string]any{"headers": map[string]any{"message-id": fmt.Sprintf("%d.ABC@mg.shop.example", i+1)}}})
			}
		}
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"items": items, "paging": map[string]any{}})
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeMailgun) acceptedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.accepted)
}

type fixture struct {
	db    *storetest.DB
	clock *clock.Virtual
	svc   *outbox.Service
}

func newFixture(t *testing.T, db *storetest.DB, sender mail.Sender, rec mail.Reconciler, provider string) *fixture {
	t.Helper()
	engine, err := template.New(nil)
	require.NoError(t, err)
	require.NoError(t, engine.Load(templates.FS))
	signer, err := link.New([]byte(strings.Repeat("s", 32)))
	require.NoError(t, err)
	clk := clock.NewVirtual(t0)
	svc, err := outbox.New(outbox.Options{DB: db.DB, Clock: clk, Engine: engine, Signer: signer, Sender: sender,
		Reconciler: rec, Provider: provider, Config: outbox.Config{From: "Shop <news@shop.example>",
			PublicURL: "https://shop.example", StoreName: "Shop", Tracking: true, Lease: time.Minute,
			ListUnsubscribeMailto: "unsubscribe@shop.example", Jitter: func() float64 { return 0 }}, Sends: kpi.Recorder{}})
	require.NoError(t, err)
	return &fixture{db: db, clock: clk, svc: svc}
}

func newMailgunFixture(t *testing.T, db *storetest.DB, f *fakeMailgun) *fixture {
	t.Helper()
	s, err := mailgun.New(mailgun.Config{APIKey: "key-test", Domain: "mg.shop.example", APIBase: f.URL,
		Timeout: 300 * time.Millisecond}, &http.Client{}, nil, nil)
	require.NoError(t, err)
	return newFixture(t, db, s, s, "mailgun")
}

func (fx *fixture) customer(t *testing.T, email, first, locale string) *customer.Customer {
	t.Helper()
	p := customer.Profile{Email: &email, FirstName: &first}
	if locale != "" {
		p.Locale = &locale
	}
	c, _, err := customer.Upsert(context.Background(), fx.db.DB, fx.clock.Now(), p)
	require.NoError(t, err)
	return c
}

func (fx *fixture) enqueue(t *testing.T, c *customer.Customer, key string, kind mail.Kind) *outbox.Message {
	t.Helper()
	m, created, err := fx.svc.Enqueue(context.Background(), fx.db.DB, outbox.EnqueueInput{CustomerPK: c.PK,
		Template: "welcome", Kind: kind, Program: "welcome", Step: "d0", Variant: "a", IdempotencyKey: key})
	require.NoError(t, err)
	require.True(t, created)
	return m
}

func (fx *fixture) get(t *testing.T, id string) *outbox.Message {
	t.Helper()
	m, err := outbox.Get(context.Background(), fx.db.DB, id)
	require.NoError(t, err)
	return m
}

func TestEnqueueRendersAndIsIdempotent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		fx := newFixture(t, db, outbox.Local{}, outbox.Local{}, "outbox")
		ctx := context.Background()
		c := fx.customer(t, "Zoe@Example.com", "Zoé", "fr-CA")
		m := fx.enqueue(t, c, "welcome:1", mail.KindMarketing)
		require.Equal(t, outbox.StateQueued, m.State)
		require.Equal(t, "fr", *m.Locale)
		require.Contains(t, m.HTML, "Zoé")
		require.True(t, strings.HasPrefix(*m.UnsubscribeURL, "https://shop.example/u/u."+c.PublicID+"."))

		again, created, err := fx.svc.Enqueue(ctx, db.DB, outbox.EnqueueInput{CustomerPK: c.PK, Template: "welcome",
			Kind: mail.KindMarketing, IdempotencyKey: "welcome:1"})
		require.NoError(t, err)
		require.False(t, created)
		require.Equal(t, m.ID, again.ID)

		// In the caller's transaction: rolled back, no row.
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, _, err = fx.svc.Enqueue(ctx, tx, outbox.EnqueueInput{CustomerPK: c.PK, Template: "welcome",
			Kind: mail.KindMarketing, IdempotencyKey: "welcome:rolled-back"})
		require.NoError(t, err)
		require.NoError(t, tx.Rollback())
		page, err := outbox.List(ctx, db.DB, outbox.Filter{CustomerPK: c.PK}, 10, "")
		require.NoError(t, err)
		require.Len(t, page.Messages, 1)

		// Unknown template: an error, no row.
		_, _, err = fx.svc.Enqueue(ctx, db.DB, outbox.EnqueueInput{CustomerPK: c.PK, Template: "nope",
			Kind: mail.KindMarketing, IdempotencyKey: "nope:1"})
		require.ErrorIs(t, err, template.ErrNotFound)

		n, err := fx.svc.ProcessDue(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		sent := fx.get(t, m.ID)
		require.Equal(t, outbox.StateSent, sent.State)
		require.Equal(t, outbox.LocalID(m.ID), *sent.ProviderMessageID)
		require.Equal(t, "outbox", *sent.Provider)
		require.Equal(t, int64(1), sentCounted(t, db, ""), "the send is counted in the hourly rollups")
	})
}

// sentCounted sums the sent counter of the hourly rollups (of a campaign
// when one is named).
func sentCounted(t *testing.T, db *storetest.DB, campaign string) int64 {
	var n int64
	q := "SELECT COALESCE(SUM(sent), 0) FROM kpi_hourly"
	args := []any{}
	if campaign != "" {
		q += " WHERE campaign = ?"
		args = append(args, campaign)
	}
	require.NoError(t, db.NewRaw(q, args...).Scan(context.Background(), &n))
	return n
}

func TestSuppressionRules(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		fx := newFixture(t, db, outbox.Local{}, outbox.Local{}, "outbox")
		ctx := context.Background()
		unsub := fx.customer(t, "unsub@example.com", "U", "")
		bounced := fx.customer(t, "bounced@example.com", "B", "")
		_, err := outbox.Suppress(ctx, db.DB, t0, "UNSUB@example.com", outbox.ReasonUnsubscribe, "link", "")
		require.NoError(t, err)
		created, err := outbox.Suppress(ctx, db.DB, t0, "bounced@example.com", outbox.ReasonHardBounce, "webhook", "550")
		require.NoError(t, err)
		require.True(t, created)
		created, err = outbox.Suppress(ctx, db.DB, t0, "bounced@example.com", outbox.ReasonHardBounce, "webhook", "550")
		require.NoError(t, err)
		require.False(t, created)

		m1 := fx.enqueue(t, unsub, "m1", mail.KindMarketing)
		m2 := fx.enqueue(t, unsub, "m2", mail.KindTransactional)
		m3 := fx.enqueue(t, bounced, "m3", mail.KindTransactional)
		_, err = fx.svc.ProcessDue(ctx)
		require.NoError(t, err)
		require.Equal(t, outbox.StateSuppressed, fx.get(t, m1.ID).State)
		require.Equal(t, "suppressed: unsubscribe", *fx.get(t, m1.ID).LastError)
		require.Equal(t, outbox.StateSent, fx.get(t, m2.ID).State)
		require.Equal(t, outbox.StateSuppressed, fx.get(t, m3.ID).State)

		page, err := outbox.ListSuppressions(ctx, db.DB, 1, "")
		require.NoError(t, err)
		require.True(t, page.HasNextPage)
		require.Equal(t, "unsub@example.com", page.Suppressions[0].Address)
		n, err := outbox.Unsuppress(ctx, db.DB, "Unsub@Example.com")
		require.NoError(t, err)
		require.Equal(t, 1, n)
	})
}

func TestMailgunFormFields(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		f := newFakeMailgun(t)
		fx := newMailgunFixture(t, db, f)
		c := fx.customer(t, "ada@example.com", "Ada", "")
		m := fx.enqueue(t, c, "k1", mail.KindMarketing)
		_, err := fx.svc.ProcessDue(context.Background())
		require.NoError(t, err)
		require.Equal(t, 1, f.acceptedCount())
		form := f.accepted[0]
		require.Equal(t, []string{`"Ada" <ada@example.com>`}, form["to"])
		require.Equal(t, []string{"welcome", "d0"}, form["o:tag"])
		require.Equal(t, m.ID, form.Get("v:message_id"))
		require.Equal(t, "welcome", form.Get("v:program"))
		require.Equal(t, "d0", form.Get("v:step"))
		require.Equal(t, "a", form.Get("v:variant"))
		require.Equal(t, "<"+*m.UnsubscribeURL+">, <mailto:unsubscribe@shop.example>", form.Get("h:List-Unsubscribe"))
		require.Equal(t, "List-Unsubscribe=One-Click", form.Get("h:List-Unsubscribe-Post"))
		require.Equal(t, "yes", form.Get("o:tracking"))
		sent := fx.get(t, m.ID)
		require.Equal(t, outbox.StateSent, sent.State)
		require.Equal(t, "1.ABC@mg.shop.example", *sent.ProviderMessageID)
	})
}

func TestMailgunFaults(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()

		t.Run("500 then 200 sends once", func(t *testing.T) {
			f := newFakeMailgun(t)
			f.script = func(n int) (int, time.Duration, bool) {
				if n == 1 {
					return http.StatusInternalServerError, 0, false
				}
				return http.StatusOK, 0, true
			}
			fx := newMailgunFixture(t, db, f)
			m := fx.enqueue(t, fx.customer(t, "five@example.com", "F", ""), "500", mail.KindTransactional)
			_, err := fx.svc.ProcessDue(ctx)
			require.NoError(t, err)
			got := fx.get(t, m.ID)
			require.Equal(t, outbox.StateQueued, got.State)
			require.True(t, got.MaybeSent)
			require.Contains(t, *got.LastError, "status 500")
			_, err = fx.svc.ProcessDue(ctx)
			require.NoError(t, err)
			got = fx.get(t, m.ID)
			require.Equal(t, outbox.StateSent, got.State)
			require.Equal(t, 2, got.Attempts)
			require.Equal(t, 1, f.acceptedCount())
			require.Equal(t, 1, f.searches, "the retry asked Mailgun first")
		})

		t.Run("400 fails with the reason", func(t *testing.T) {
			f := newFakeMailgun(t)
			f.script = func(int) (int, time.Duration, bool) { return http.StatusBadRequest, 0, false }
			fx := newMailgunFixture(t, db, f)
			m := fx.enqueue(t, fx.customer(t, "four@example.com", "F", ""), "400", mail.KindTransactional)
			_, err := fx.svc.ProcessDue(ctx)
			require.NoError(t, err)
			got := fx.get(t, m.ID)
			require.Equal(t, outbox.StateFailed, got.State)
			require.Equal(t, "status 400 from the fake", *got.LastError)
			n, err := fx.svc.ProcessDue(ctx)
			require.NoError(t, err)
			require.Zero(t, n)
		})

		t.Run("timeout is retried without a second send", func(t *testing.T) {
			f := newFakeMailgun(t)
			f.script = func(n int) (int, time.Duration, bool) {
				if n == 1 {
					// Mailgun accepts, but answers after the client gave up.
					return http.StatusOK, time.Second, true
				}
				return http.StatusOK, 0, true
			}
			fx := newMailgunFixture(t, db, f)
			m := fx.enqueue(t, fx.customer(t, "slow@example.com", "S", ""), "slow", mail.KindTransactional)
			_, err := fx.svc.ProcessDue(ctx)
			require.NoError(t, err)
			got := fx.get(t, m.ID)
			require.Equal(t, outbox.StateQueued, got.State)
			require.True(t, got.MaybeSent)
			_, err = fx.svc.ProcessDue(ctx)
			require.NoError(t, err)
			got = fx.get(t, m.ID)
			require.Equal(t, outbox.StateSent, got.State)
			require.Equal(t, "1.ABC@mg.shop.example", *got.ProviderMessageID)
			require.Equal(t, 1, f.acceptedCount())
			f.mu.Lock()
			require.Equal(t, 1, f.calls, "found through the events API, never sent again")
			f.mu.Unlock()
		})

		t.Run("timeout before acceptance is sent on retry", func(t *testing.T) {
			f := newFakeMailgun(t)
			f.script = func(n int) (int, time.Duration, bool) {
				if n == 1 {
					return http.StatusServiceUnavailable, time.Second, false
				}
				return http.StatusOK, 0, true
			}
			fx := newMailgunFixture(t, db, f)
			m := fx.enqueue(t, fx.customer(t, "slow2@example.com", "S", ""), "slow2", mail.KindTransactional)
			_, err := fx.svc.ProcessDue(ctx)
			require.NoError(t, err)
			require.Equal(t, outbox.StateQueued, fx.get(t, m.ID).State)
			_, err = fx.svc.ProcessDue(ctx)
			require.NoError(t, err)
			require.Equal(t, outbox.StateSent, fx.get(t, m.ID).State)
			require.Equal(t, 1, f.acceptedCount())
		})

		t.Run("crash between acceptance and update is reconciled", func(t *testing.T) {
			f := newFakeMailgun(t)
			fx := newMailgunFixture(t, db, f)
			m := fx.enqueue(t, fx.customer(t, "crash@example.com", "C", ""), "crash", mail.KindTransactional)
			// A worker claimed the message and Mailgun accepted it, then the
			// process died before recording it: the row stays "sending".
			_, err := db.NewUpdate().Model((*outbox.Message)(nil)).Set("state = ?", outbox.StateSending).
				Set("locked_by = ?", "dead-worker").Set("locked_until = ?", fx.clock.Now().Add(time.Minute)).
				Set("attempts = 1").Where("public_id = ?", m.ID).Exec(ctx)
			require.NoError(t, err)
			_, err = fx.svc.Sender().Send(ctx, mail.Message{ID: m.ID, To: m.Recipient, From: "news@shop.example",
				Subject: m.Subject, HTML: m.HTML, Kind: mail.KindTransactional})
			require.NoError(t, err)
			require.Equal(t, 1, f.acceptedCount())

			// Within the lease, nothing is claimed.
			n, err := fx.svc.ProcessDue(ctx)
			require.NoError(t, err)
			require.Zero(t, n)
			fx.clock.Advance(2 * time.Minute)
			n, err = fx.svc.ProcessDue(ctx)
			require.NoError(t, err)
			require.Equal(t, 1, n)
			got := fx.get(t, m.ID)
			require.Equal(t, outbox.StateSent, got.State)
			require.Equal(t, "1.ABC@mg.shop.example", *got.ProviderMessageID)
			require.Equal(t, 1, f.acceptedCount(), "exactly one message at the provider")
			f.mu.Lock()
			require.Equal(t, 1, f.calls)
			f.mu.Unlock()
		})
	})
}

func TestSendBatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		f := newFakeMailgun(t)
		fx := newMailgunFixture(t, db, f)
		a := fx.customer(t, "a@example.com", "Ann <b>", "")
		b := fx.customer(t, "b@example.com", "Bob", "")
		s := fx.customer(t, "s@example.com", "Sue", "")
		_, err := outbox.Suppress(ctx, db.DB, t0, "s@example.com", outbox.ReasonComplaint, "webhook", "")
		require.NoError(t, err)
		in := outbox.BatchInput{CustomerPKs: []int64{a.PK, b.PK, s.PK, 999999}, Template: "welcome",
			Kind: mail.KindMarketing, Campaign: "spring", IdempotencyPrefix: "campaign:spring"}
		res, err := fx.svc.SendBatch(ctx, in)
		require.NoError(t, err)
		require.Equal(t, outbox.BatchResult{Sent: 2, Suppressed: 1, Skipped: 1, ProviderIDs: []string{"1.ABC@mg.shop.example"}}, res)
		require.Equal(t, 1, f.acceptedCount())
		form := f.accepted[0]
		require.ElementsMatch(t, []string{"a@example.com", "b@example.com"}, form["to"])
		var rv map[string]map[string]string
		require.NoError(t, json.Unmarshal([]byte(form.Get("recipient-variables")), &rv))
		require.Equal(t, "Ann <b>", rv["a@example.com"]["first_name"])
		require.Equal(t, "Ann &lt;b&gt;", rv["a@example.com"]["first_name_html"])
		require.True(t, strings.HasPrefix(rv["b@example.com"]["unsubscribe_url"], "https://shop.example/u/u."+b.PublicID))
		require.Equal(t, "%recipient.message_id%", form.Get("v:message_id"))
		require.Equal(t, "spring", form.Get("v:program"))
		require.Equal(t, []string{"spring"}, form["o:tag"])
		require.Equal(t, "<%recipient.unsubscribe_url%>, <mailto:unsubscribe@shop.example>", form.Get("h:List-Unsubscribe"))
		require.Equal(t, "List-Unsubscribe=One-Click", form.Get("h:List-Unsubscribe-Post"))
		require.Contains(t, form.Get("html"), "%recipient.first_name_html%")
		require.NotContains(t, form.Get("html"), "RFNxx")

		page, err := outbox.List(ctx, db.DB, outbox.Filter{To: "a@example.com"}, 10, "")
		require.NoError(t, err)
		require.Len(t, page.Messages, 1)
		ma := page.Messages[0]
		require.Equal(t, outbox.StateSent, ma.State)
		require.Equal(t, rv["a@example.com"]["message_id"], ma.ID)
		require.Contains(t, ma.HTML, "Ann &lt;b&gt;")
		require.Contains(t, ma.HTML, *ma.UnsubscribeURL, "the row's own unsubscribe link is in its body")
		// The batch stored its body once: the rows hold only their own
		// facts, and reading a row (List, Get) puts the two together.
		var stored []struct {
			HTML   string `bun:"html"`
			BodyID *int64 `bun:"body_id"`
		}
		require.NoError(t, db.NewSelect().Table("messages").Column("html", "body_id").Where("campaign = ?", "spring").Scan(ctx, &stored))
		require.Len(t, stored, 3)
		for _, r := range stored {
			require.Empty(t, r.HTML)
			require.NotNil(t, r.BodyID)
			require.Equal(t, *stored[0].BodyID, *r.BodyID)
		}
		bodies, err := db.NewSelect().Table("message_bodies").Count(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, bodies)
		mb, err := outbox.Get(ctx, db.DB, rv["b@example.com"]["message_id"])
		require.NoError(t, err)
		require.Contains(t, mb.HTML, "Bob")
		require.NotContains(t, mb.HTML, "Ann")
		require.NotContains(t, mb.HTML+mb.Subject+mb.Text, "RFNxx")
		require.Contains(t, mb.Text, *mb.UnsubscribeURL)
		// The data export shows Bob the message as it was sent, not the
		// empty columns of the row.
		exp, err := privacy.Export(ctx, db.DB, t0, b.PK)
		require.NoError(t, err)
		rows := exp["messages"].([]any)
		require.Len(t, rows, 1)
		row := rows[0].(map[string]any)
		require.Equal(t, []any{mb.Subject, mb.HTML, mb.Text}, []any{row["subject"], row["html"], row["text"]})
		require.Contains(t, row["html"], "Bob")
		page, err = outbox.List(ctx, db.DB, outbox.Filter{To: "s@example.com"}, 10, "")
		require.NoError(t, err)
		require.Equal(t, outbox.StateSuppressed, page.Messages[0].State)

		// The same send again writes and sends nothing.
		res, err = fx.svc.SendBatch(ctx, in)
		require.NoError(t, err)
		require.Equal(t, 4, res.Skipped)
		require.Equal(t, 1, f.acceptedCount())
		require.Equal(t, int64(2), sentCounted(t, db, "spring"), "both sent messages counted once, in the batch transaction")
	})
}

// TestBatchCallOutcome: the outcome of a batch call is recorded once, on
// its body, not on each row. The rows read as sending while the call is in
// flight and then carry the call's provider id; a sender that dies in
// between hands its rows to the delivery worker when its lease runs out,
// and a refused call gives each row its own state.
func TestBatchCallOutcome(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		f := newFakeMailgun(t)
		fx := newMailgunFixture(t, db, f)
		a := fx.customer(t, "a@example.com", "Ann", "")
		b := fx.customer(t, "b@example.com", "Bob", "")
		batch := func(campaign string) outbox.BatchInput {
			return outbox.BatchInput{CustomerPKs: []int64{a.PK, b.PK}, Template: "welcome", Kind: mail.KindMarketing,
				Campaign: campaign, IdempotencyPrefix: "campaign:" + campaign}
		}
		rows := func(campaign string) []*outbox.Message {
			var ms []*outbox.Message
			require.NoError(t, db.NewSelect().Model(&ms).Where("campaign = ?", campaign).Order("id").Scan(ctx))
			require.Len(t, ms, 2)
			return ms
		}
		prepare := func(in outbox.BatchInput) *outbox.PreparedBatch {
			var pb *outbox.PreparedBatch
			require.NoError(t, db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				var err error
				pb, err = fx.svc.PrepareBatch(ctx, tx, in)
				return err
			}))
			return pb
		}
		read := func(m *outbox.Message) *outbox.Message {
			got, err := outbox.Get(ctx, db.DB, m.ID)
			require.NoError(t, err)
			return got
		}

		// Written, not yet delivered: stored as sent, read as sending.
		pb := prepare(batch("c1"))
		stored := rows("c1")
		require.Equal(t, outbox.StateSent, stored[0].State)
		inFlight := read(stored[0])
		require.Equal(t, outbox.StateSending, inFlight.State)
		require.Nil(t, inFlight.SentAt)
		fx.clock.Advance(time.Second)
		res, err := fx.svc.DeliverBatch(ctx, pb)
		require.NoError(t, err)
		require.Equal(t, 2, res.Sent)
		for _, m := range rows("c1") {
			require.Nil(t, m.ProviderMessageID, "the provider id is recorded once, on the call")
			got := read(m)
			require.Equal(t, outbox.StateSent, got.State)
			require.Equal(t, "1.ABC@mg.shop.example", deref(got.ProviderMessageID))
			require.Equal(t, t0.Add(time.Second), got.SentAt.UTC())
		}
		byProvider, err := outbox.GetByProviderID(ctx, db.DB, "1.ABC@mg.shop.example", "B@example.com")
		require.NoError(t, err)
		require.Equal(t, rows("c1")[1].ID, byProvider.ID)
		require.Equal(t, "1.ABC@mg.shop.example", deref(byProvider.ProviderMessageID))
		_, err = outbox.GetByProviderID(ctx, db.DB, "1.ABC@mg.shop.example", "c@example.com")
		require.ErrorIs(t, err, outbox.ErrNotFound)

		// The sender dies between writing the rows and recording the
		// answer: nothing moves until its lease runs out, then the delivery
		// worker takes the rows, asks Mailgun, and sends each once.
		prepare(batch("c2"))
		n, err := fx.svc.ProcessDue(ctx)
		require.NoError(t, err)
		require.Zero(t, n, "the call is still leased")
		fx.clock.Advance(2 * time.Minute)
		searches := f.searches
		for {
			n, err := fx.svc.ProcessDue(ctx)
			require.NoError(t, err)
			if n == 0 {
				break
			}
		}
		require.Equal(t, searches+2, f.searches, "Mailgun asked once for each row")
		require.Equal(t, 3, f.acceptedCount(), "the batch call, then one message to each")
		for _, m := range rows("c2") {
			require.Equal(t, outbox.StateSent, m.State)
			require.NotNil(t, m.ProviderMessageID, "sent on its own")
			require.Equal(t, 2, m.Attempts, "the batch call, then its own")
		}
		var call outbox.MessageBody
		require.NoError(t, db.NewSelect().Model(&call).Where("id = ?", *rows("c2")[0].BodyID).Scan(ctx))
		require.Equal(t, outbox.BodySettled, call.State)
		require.Len(t, call.MessageIDs, 2)

		// Refused for good: each row fails on its own.
		f.script = func(int) (int, time.Duration, bool) { return http.StatusBadRequest, 0, false }
		res, err = fx.svc.SendBatch(ctx, batch("c3"))
		require.NoError(t, err)
		require.Equal(t, 2, res.Failed)
		for _, m := range rows("c3") {
			require.Equal(t, outbox.StateFailed, m.State)
			require.Nil(t, m.SentAt)
			require.Nil(t, m.Provider)
			require.Contains(t, deref(m.LastError), "400")
			require.Equal(t, outbox.StateFailed, read(m).State)
		}
		// A temporary failure leaves them queued, maybe sent.
		f.script = func(int) (int, time.Duration, bool) { return http.StatusServiceUnavailable, 0, false }
		res, err = fx.svc.SendBatch(ctx, batch("c4"))
		require.NoError(t, err)
		require.Equal(t, 2, res.Queued)
		for _, m := range rows("c4") {
			require.Equal(t, outbox.StateQueued, m.State)
			require.Contains(t, deref(m.LastError), "503")
		}
		require.Equal(t, int64(4), sentCounted(t, db, "c1")+sentCounted(t, db, "c2")+sentCounted(t, db, "c3")+sentCounted(t, db, "c4"))
		// Erasure takes the row off its body and keeps the call's id on it.
		require.NoError(t, privacy.Erase(ctx, db.DB, fx.clock.Now(), b.PK, "test"))
		erased := rows("c1")[1]
		require.Nil(t, erased.BodyID)
		require.Equal(t, "1.ABC@mg.shop.example", deref(erased.ProviderMessageID))
		require.Equal(t, outbox.StateSent, read(erased).State)
	})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// delivered is what the provider sends to email from an accepted batch
// call: its subject and HTML with that recipient's variables substituted,
// as Mailgun does with %recipient.x%
// (https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/#batch-sending).
func delivered(t *testing.T, form url.Values, email string) (subject, html string) {
	t.Helper()
	var rv map[string]map[string]string
	require.NoError(t, json.Unmarshal([]byte(form.Get("recipient-variables")), &rv))
	vars, ok := rv[email]
	require.True(t, ok, "%s is not a recipient of this call", email)
	pairs := []string{}
	for k, v := range vars {
		pairs = append(pairs, "%recipient."+k+"%", v)
	}
	r := strings.NewReplacer(pairs...)
	return r.Replace(form.Get("subject")), r.Replace(form.Get("html"))
}

// deliveredTo finds the accepted call that went to email.
func deliveredTo(t *testing.T, f *fakeMailgun, email string) (subject, html string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, form := range f.accepted {
		for _, to := range form["to"] {
			if to == email {
				return delivered(t, form, email)
			}
		}
	}
	t.Fatalf("nothing was sent to %s", email)
	return "", ""
}

// TestBatchEscapesByContext: a campaign batch escapes a recipient's values
// as the single-message path does, by where they land (a name in a link
// is filtered, not made live), and no control character of a name reaches
// the subject header.
func TestBatchEscapesByContext(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		f := newFakeMailgun(t)
		fx := newMailgunFixture(t, db, f)
		require.NoError(t, fx.svc.Engine().Add("linked", "en", "Hello {{.Customer.FirstName}}",
			`<p>Hi {{.Customer.FirstName}}, <a href="{{.Customer.FirstName}}">your page</a></p>`, ""))
		evil := fx.customer(t, "evil@example.com", "javascript:alert(1)", "")
		crlf := fx.customer(t, "crlf@example.com", "Ann\r\nBcc: victim@example.com", "")
		plain := fx.customer(t, "plain@example.com", "Bob", "")
		res, err := fx.svc.SendBatch(ctx, outbox.BatchInput{CustomerPKs: []int64{evil.PK, crlf.PK, plain.PK}, Template: "linked",
			Kind: mail.KindMarketing, Campaign: "esc", IdempotencyPrefix: "campaign:esc"})
		require.NoError(t, err)
		require.Equal(t, 3, res.Sent)

		single, err := fx.svc.Preview(ctx, db.DB, evil.PK, "linked", "", mail.KindMarketing, nil)
		require.NoError(t, err)
		require.Contains(t, single.HTML, `href="#ZgotmplZ"`)
		_, html := deliveredTo(t, f, "evil@example.com")
		require.NotContains(t, html, `href="javascript:`)
		require.Contains(t, html, `href="#ZgotmplZ"`, "the batch escapes the link as the single message does")

		subject, _ := deliveredTo(t, f, "crlf@example.com")
		require.Equal(t, "Hello Ann Bcc: victim@example.com", subject)
		require.NotContains(t, subject, "\n")

		subject, html = deliveredTo(t, f, "plain@example.com")
		require.Equal(t, "Hello Bob", subject)
		require.Contains(t, html, `href="Bob"`)
	})
}

// TestBatchRendersPerRecipient: a campaign whose body depends on the
// recipient's preferences gives each recipient their own content (the
// vegetarian does not get the meat block), while a body that does not is
// still rendered once and shared.
func TestBatchRendersPerRecipient(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		f := newFakeMailgun(t)
		fx := newMailgunFixture(t, db, f)
		require.NoError(t, fx.svc.Engine().Add("recipes", "en", "This week, {{.Customer.FirstName}}",
			`<p>{{if eq (printf "%v" (index .Customer.Preferences "diet")) "vegetarian"}}The veggie block{{else}}The meat block{{end}}</p>`, ""))
		var pks []int64
		for i, diet := range []string{"vegetarian", "", "vegetarian", "omnivore"} {
			c := fx.customer(t, fmt.Sprintf("c%d@example.com", i), fmt.Sprintf("Name%d", i), "")
			if diet != "" {
				c.Preferences = map[string]any{"diet": diet}
				_, err := db.NewUpdate().Model(c).Column("preferences").WherePK().Exec(ctx)
				require.NoError(t, err)
			}
			pks = append(pks, c.PK)
		}
		res, err := fx.svc.SendBatch(ctx, outbox.BatchInput{CustomerPKs: pks, Template: "recipes",
			Kind: mail.KindMarketing, Campaign: "recipes", IdempotencyPrefix: "campaign:recipes"})
		require.NoError(t, err)
		require.Equal(t, 4, res.Sent)
		require.Equal(t, 2, f.acceptedCount(), "one call per distinct body")
		for i, want := range []string{"veggie", "meat", "veggie", "meat"} {
			subject, html := deliveredTo(t, f, fmt.Sprintf("c%d@example.com", i))
			require.Contains(t, html, "The "+want+" block")
			require.Equal(t, fmt.Sprintf("This week, Name%d", i), subject)
		}
		// The rows read back what each recipient was sent.
		page, err := outbox.List(ctx, db.DB, outbox.Filter{To: "c0@example.com"}, 10, "")
		require.NoError(t, err)
		require.Contains(t, page.Messages[0].HTML, "The veggie block")
		require.NotContains(t, page.Messages[0].HTML, "The meat block")

		// A body that reads nothing of the recipient is rendered once.
		require.False(t, fx.svc.Engine().RecipientDependent("welcome"))
		require.True(t, fx.svc.Engine().RecipientDependent("recipes"))
	})
}
