package privacy_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/commerce"
	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/hygiene"
	"github.com/refrain-dev/refrain/plugin/inbox"
	"github.com/refrain-dev/refrain/plugin/kpi"
	"github.com/refrain-dev/refrain/plugin/mail"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
	"github.com/refrain-dev/refrain/plugin/privacy"
	"github.com/refrain-dev/refrain/plugin/store"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

const (
	email = "Zephirine.Quatremaire@Exemple-Boutique.fr"
	first = "Zéphirine"
	last  = "Quatremaire"
)

// seed gives one customer personal data in every place Refrain keeps it,
// and a second customer who must be left alone.
func seed(t *testing.T, ctx context.Context, db bun.IDB, now time.Time) (int64, int64) {
	t.Helper()
	proc := commerce.NewProcessor(commerce.Options{}, slog.New(slog.DiscardHandler))
	buyer := &event.Customer{ID: "7001", Email: email, FirstName: first, LastName: last, Locale: "fr"}
	require.NoError(t, proc.Apply(ctx, db, now, event.Event{Kind: event.KindCustomerCreated, Source: "shopify",
		Topic: "customers/create", OccurredAt: now, Customer: buyer}))
	require.NoError(t, proc.Apply(ctx, db, now, event.Event{Kind: event.KindCartUpdated, Source: "shopify",
		Topic: "checkouts/update", OccurredAt: now, Cart: &event.Cart{Token: "ck1", Email: email, Customer: buyer,
			RecoveryURL: "https://shop.example/recover?email=" + email, Total: event.Money{Minor: 4200, Currency: "EUR"}}}))
	require.NoError(t, proc.Apply(ctx, db, now, event.Event{Kind: event.KindOrderPaid, Source: "shopify",
		Topic: "orders/paid", OccurredAt: now, Order: &event.Order{ID: "9001", Email: email, Customer: buyer,
			Total: event.Money{Minor: 4200, Currency: "EUR"}}}))
	c, err := customer.GetByEmail(ctx, db, email)
	require.NoError(t, err)
	_, _, err = customer.AppendEvent(ctx, db, now, c.PK, customer.EventInput{Type: "survey.answered", OccurredAt: now,
		Source: "survey", Properties: map[string]any{"answer": "Bonjour, je suis " + first + " " + last, "email": email}})
	require.NoError(t, err)
	_, err = db.NewUpdate().Model(c).Set("consent_proof = ?", `{"email":"`+strings.ToLower(email)+`","ip":"203.0.113.9"}`).
		Set("attributes = ?", `{"nickname":"`+first+`"}`).WherePK().Exec(ctx)
	require.NoError(t, err)

	name := first + " " + last
	msg := &outbox.Message{ID: "m1", IdempotencyKey: "k1", CustomerPK: &c.PK, Recipient: strings.ToLower(email),
		RecipientName: &name, Template: "welcome", Values: map[string]any{"first_name": first}, Kind: mail.KindMarketing,
		Subject: "Bienvenue " + first, HTML: "<p>Bonjour " + name + " (" + email + ")</p>", Text: "Bonjour " + name,
		State: outbox.StateSent, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now,
		Program: &campaignProgram, Campaign: &campaignName}
	_, err = db.NewInsert().Model(msg).Exec(ctx)
	require.NoError(t, err)
	// The send and the open are counted as the outbox and the tracking
	// webhook count them: the KPIs of this past campaign.
	require.NoError(t, kpi.CountSent(ctx, db, now, []kpi.Dims{kpi.DimsOf(msg)}))
	require.NoError(t, kpi.CountEvent(ctx, db, kpi.Message{PK: msg.PK, Dims: kpi.DimsOf(msg), SentAt: now},
		mail.EventOpened, "", false, now))
	rcpt := strings.ToLower(email)
	_, err = db.NewInsert().Model(&outbox.MessageEvent{ProviderEventID: "e1", Provider: "mailgun", MessagePK: &msg.PK,
		CustomerPK: &c.PK, Kind: mail.EventKind("opened"), OccurredAt: now, Recipient: &rcpt,
		Raw: map[string]any{"recipient": rcpt, "name": name}, CreatedAt: now}).Exec(ctx)
	require.NoError(t, err)
	_, err = outbox.Suppress(ctx, db, now, email, outbox.ReasonUnsubscribe, "link", "")
	require.NoError(t, err)
	_, err = db.NewInsert().Model(&inbox.Event{Source: "shopify", Topic: "customers/create", DedupeKey: "d1",
		Headers: map[string]string{"X-Shopify-Topic": "customers/create"},
		Body:    []byte(`{"id":7001,"email":"` + email + `","first_name":"` + first + `","last_name":"` + last + `"}`),
		Status:  inbox.Status("PROCESSED"), ReceivedAt: now, NextAttemptAt: now}).Exec(ctx)
	require.NoError(t, err)

	other := "paul.martin@orange.fr"
	oc, _, err := customer.Upsert(ctx, db, now, customer.Profile{Email: &other})
	require.NoError(t, err)
	return c.PK, oc.PK
}

// textColumns lists every text, JSON and binary column of every table.
func textColumns(t *testing.T, ctx context.Context, db *bun.DB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	if store.DialectOf(db) == store.Postgres {
		var rows []struct {
			Table  string `bun:"table_name"`
			Column string `bun:"column_name"`
		}
		require.NoError(t, db.NewRaw(`SELECT table_name, column_name FROM information_schema.columns
			WHERE table_schema = current_schema() AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'bytea')`).
			Scan(ctx, &rows))
		for _, r := range rows {
			out[r.Table] = append(out[r.Table], r.Column)
		}
		return out
	}
	var tables []string
	require.NoError(t, db.NewRaw(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`).Scan(ctx, &tables))
	for _, tb := range tables {
		rows, err := db.QueryContext(ctx, "SELECT name, type FROM pragma_table_info(?)", tb)
		require.NoError(t, err)
		for rows.Next() {
			var name, typ string
			require.NoError(t, rows.Scan(&name, &typ))
			typ = strings.ToUpper(typ)
			if typ == "TEXT" || typ == "BLOB" || strings.Contains(typ, "CHAR") || strings.Contains(typ, "JSON") {
				out[tb] = append(out[tb], name)
			}
		}
		require.NoError(t, rows.Err())
		rows.Close()
	}
	return out
}

// find returns "table.column" for every value in the database that holds
// one of needles, case-insensitively.
func find(t *testing.T, ctx context.Context, db *bun.DB, needles ...string) []string {
	t.Helper()
	var hits []string
	for table, cols := range textColumns(t, ctx, db) {
		for _, col := range cols {
			query := "SELECT CAST(? AS TEXT) FROM ?"
			if store.DialectOf(db) == store.Postgres {
				query = "SELECT CASE WHEN pg_typeof(?0) = 'bytea'::regtype THEN convert_from(?0::text::bytea, 'UTF8') ELSE ?0::text END FROM ?1"
			}
			rows, err := db.QueryContext(ctx, db.NewRaw(query, bun.Ident(col), bun.Ident(table)).String())
			require.NoError(t, err, "%s.%s", table, col)
			var vals []sql.NullString
			for rows.Next() {
				var v sql.NullString
				require.NoError(t, rows.Scan(&v))
				vals = append(vals, v)
			}
			require.NoError(t, rows.Err())
			rows.Close()
			for _, v := range vals {
				for _, n := range needles {
					if v.Valid && strings.Contains(strings.ToLower(v.String), strings.ToLower(n)) {
						hits = append(hits, table+"."+col+" holds "+n)
					}
				}
			}
		}
	}
	return hits
}

func count(t *testing.T, ctx context.Context, db bun.IDB, table, where string, args ...any) int {
	t.Helper()
	n, err := db.NewSelect().Table(table).Where(where, args...).Count(ctx)
	require.NoError(t, err)
	return int(n)
}

var campaignProgram, campaignName = "newsletter", "autumn-sale"

// campaignKPIs answers the KPIs of the seeded campaign on the day of now.
func campaignKPIs(t *testing.T, ctx context.Context, db bun.IDB, now time.Time) kpi.Totals {
	t.Helper()
	day := now.Truncate(24 * time.Hour)
	series, err := kpi.Compute(ctx, db, kpi.Query{Filter: kpi.Filter{Campaign: &campaignName},
		From: day, To: day.Add(24 * time.Hour)})
	require.NoError(t, err)
	require.Len(t, series, 1)
	return series[0].Total
}

func TestEraseLeavesNoPersonalData(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
		pk, otherPK := seed(t, ctx, db, now)
		require.NotEmpty(t, find(t, ctx, db.DB, email, first, last), "the search finds what is there")

		export, err := privacy.Export(ctx, db, now, pk)
		require.NoError(t, err)
		b, err := json.Marshal(export)
		require.NoError(t, err)
		for _, want := range []string{strings.ToLower(email), first, "9001", "survey.answered", "Bienvenue", "welcome"} {
			require.Contains(t, string(b), want)
		}
		require.Len(t, export["orders"], 1)
		require.Len(t, export["messages"], 1)

		messages := count(t, ctx, db, "messages", "1 = 1")
		msgEvents := count(t, ctx, db, "message_events", "1 = 1")
		events := count(t, ctx, db, "customer_events", "type <> ?", commerce.EventCustomerErased)
		orders := count(t, ctx, db, "orders", "1 = 1")

		kpisBefore := campaignKPIs(t, ctx, db, now)
		require.EqualValues(t, 1, kpisBefore.Sent)
		require.EqualValues(t, 1, kpisBefore.UniqueOpens)

		require.NoError(t, db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			return privacy.Erase(ctx, tx, now, pk, "admin")
		}))
		require.Equal(t, kpisBefore, campaignKPIs(t, ctx, db, now), "the past campaign keeps its KPIs")
		require.Empty(t, find(t, ctx, db.DB, email, first, last))
		require.NotEmpty(t, find(t, ctx, db.DB, "paul.martin@orange.fr"), "another customer is untouched")

		require.Equal(t, messages, count(t, ctx, db, "messages", "1 = 1"))
		require.Equal(t, msgEvents, count(t, ctx, db, "message_events", "1 = 1"))
		require.Equal(t, events, count(t, ctx, db, "customer_events", "type <> ?", commerce.EventCustomerErased))
		require.Equal(t, orders, count(t, ctx, db, "orders", "total_minor = 4200"), "amounts stay for the KPIs")
		require.Equal(t, 1, count(t, ctx, db, "messages", "customer_id = ? AND state = ?", pk, outbox.StateSent))
		require.Equal(t, 1, count(t, ctx, db, "privacy_erasures", "customer_id = ? AND reason = ?", pk, "admin"))
		require.Equal(t, 1, count(t, ctx, db, "customer_events", "customer_id = ? AND type = ?", pk, commerce.EventCustomerErased))
		require.Equal(t, 1, count(t, ctx, db, "customers", "id = ?", otherPK))

		// The address comes back: it is recognised as erased and suppressed.
		erased, err := hygiene.Erased(ctx, db, []string{strings.ToLower(email), "paul.martin@orange.fr"})
		require.NoError(t, err)
		require.Equal(t, map[string]bool{strings.ToLower(email): true}, erased)
		chk, err := hygiene.NewChecker(hygiene.Options{})
		require.NoError(t, err)
		r, err := hygiene.Evaluate(ctx, db, chk, email)
		require.NoError(t, err)
		require.Equal(t, hygiene.StatusSuppressed, r.Status)
		reason, blocked, err := outbox.Suppressed(ctx, db, email, mail.KindMarketing)
		require.NoError(t, err)
		require.True(t, blocked, "marketing to the erased address is suppressed (%s)", reason)

		// Erasing again changes nothing and fails nothing.
		require.NoError(t, privacy.Erase(ctx, db, now, pk, "admin"))
		require.Empty(t, find(t, ctx, db.DB, email, first, last))
	})
}
