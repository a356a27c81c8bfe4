package plugin_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/kpi"
	"github.com/refrain-dev/refrain/plugin/mail"
	"github.com/refrain-dev/refrain/plugin/mail/mailgun"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
	"github.com/refrain-dev/refrain/plugin/mail/tracking"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

// TestHumanOpensAndScannerClicks: an open through the Gmail or Yahoo image
// proxy is a person opening the mail and moves last_open_at; an Apple
// Mail Privacy Protection prefetch does not; a click seconds after the
// send is a link scanner's and does not move last_click_at.
func TestHumanOpensAndScannerClicks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		e := newEnv(t, db, nil)
		ctx := context.Background()
		now := e.clock.Now()
		send := func(email string) *outbox.Message {
			at := now.Add(-400 * day)
			c, _, err := customer.Upsert(ctx, db.DB, at, customer.Profile{Email: &email, CreatedAt: &at,
				Consent: &customer.Consent{State: customer.ConsentSubscribed, At: at, Source: "test", Method: "form"}})
			require.NoError(t, err)
			m, _, err := e.p.Mail().Enqueue(ctx, db.DB, outbox.EnqueueInput{CustomerPK: c.PK, Template: "welcome",
				Kind: mail.KindMarketing, IdempotencyKey: "w:" + email})
			require.NoError(t, err)
			_, err = db.NewUpdate().Model((*outbox.Message)(nil)).Set("sent_at = ?", now).Where("id = ?", m.PK).Exec(ctx)
			require.NoError(t, err)
			return m
		}
		record := func(id string, m *outbox.Message, kind mail.EventKind, at time.Time, client mail.ClientInfo) {
			ev := mail.Event{ID: id, Provider: "mailgun", Kind: kind, At: at, MessageID: m.ID, Client: client}
			if kind == mail.EventOpened {
				ev.MachineOpen = mailgun.MachineOpen(client)
			}
			_, err := tracking.Record(ctx, db.DB, now, ev, kpi.Recorder{})
			require.NoError(t, err)
		}
		gmail := send("gmail@example.com")
		yahoo := send("yahoo@example.com")
		apple := send("apple@example.com")
		record("g", gmail, mail.EventOpened, now.Add(time.Hour), mail.ClientInfo{
			UserAgent: "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"})
		record("y", yahoo, mail.EventOpened, now.Add(time.Hour), mail.ClientInfo{
			UserAgent: "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"})
		record("a", apple, mail.EventOpened, now.Add(time.Second), mail.ClientInfo{Bot: "apple", UserAgent: "Mozilla/5.0"})
		// A scanner follows the links three seconds after the send; the
		// person clicks an hour later.
		record("s", gmail, mail.EventClicked, now.Add(3*time.Second), mail.ClientInfo{})
		record("s2", yahoo, mail.EventClicked, now.Add(3*time.Second), mail.ClientInfo{})
		record("p", yahoo, mail.EventClicked, now.Add(time.Hour), mail.ClientInfo{})

		get := func(email string) *customer.Customer {
			c, err := customer.GetByEmail(ctx, db.DB, email)
			require.NoError(t, err)
			return c
		}
		require.NotNil(t, get("gmail@example.com").LastOpenAt, "a Gmail proxy open is a human open")
		require.NotNil(t, get("yahoo@example.com").LastOpenAt, "a Yahoo proxy open is a human open")
		require.Nil(t, get("apple@example.com").LastOpenAt, "an Apple MPP prefetch is not an open")
		require.Nil(t, get("gmail@example.com").LastClickAt, "a scanner click is not a click")
		require.Equal(t, now.Add(time.Hour).UTC(), get("yahoo@example.com").LastClickAt.UTC())
		require.Equal(t, false, e.customerByEmail("gmail@example.com").event("email.opened")["machine"])
		require.Equal(t, true, e.customerByEmail("gmail@example.com").event("email.clicked")["machine"])
	})
}
