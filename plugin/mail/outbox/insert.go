package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/refrain-dev/refrain/plugin/store"
)

// insertRows writes new message rows and sets their PK. On PostgreSQL the
// rows of a batch travel as one array per column that differs between
// them (unnest), the columns they share as single values: the server
// parses a few arrays of plain values much faster than a thousand-row
// VALUES list or a JSON document of whole rows. SQLite takes the
// multi-row insert.
func insertRows(ctx context.Context, db bun.IDB, rows []*Message) error {
	if len(rows) == 0 {
		return nil
	}
	if !store.Arrays(db) {
		_, err := db.NewInsert().Model(&rows).Exec(ctx)
		return err
	}
	for start := 0; start < len(rows); {
		end := start + 1
		for end < len(rows) && sharesBatchColumns(rows[start], rows[end]) {
			end++
		}
		if err := insertGroup(ctx, db, rows[start:end]); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// sharesBatchColumns says whether b has a's values in the columns that
// insertGroup sends once for all rows.
func sharesBatchColumns(a, b *Message) bool {
	return a.Template == b.Template && a.Kind == b.Kind && a.Subject == b.Subject && a.HTML == b.HTML && a.Text == b.Text &&
		eq(a.Program, b.Program) && eq(a.Scenario, b.Scenario) && eq(a.Step, b.Step) && eq(a.Variant, b.Variant) &&
		eq(a.Campaign, b.Campaign) && a.Attempts == b.Attempts && a.MaybeSent == b.MaybeSent &&
		a.NextAttemptAt.Equal(b.NextAttemptAt) && eq(a.LockedBy, b.LockedBy) && eqTime(a.LockedUntil, b.LockedUntil) &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt) && reflect.DeepEqual(a.Values, b.Values)
}

// insertGroup inserts rows that share the batch columns (see
// sharesBatchColumns) in one statement.
func insertGroup(ctx context.Context, db bun.IDB, rows []*Message) error {
	n := len(rows)
	var (
		publicIDs, keys, recipients, states = make([]string, n), make([]string, n), make([]string, n), make([]State, n)
		names, unsubs, errs, providers      = make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
		locales                             = make([]*string, n)
		customers, bodies                   = make([]*int64, n), make([]*int64, n)
		sentAt                              = make([]*time.Time, n)
		vars                                = make([]*string, n)
	)
	byID := make(map[string]*Message, n)
	for i, m := range rows {
		publicIDs[i], keys[i], recipients[i], states[i] = m.ID, m.IdempotencyKey, m.Recipient, m.State
		names[i], unsubs[i], errs[i], providers[i], locales[i] = m.RecipientName, m.UnsubscribeURL, m.LastError, m.Provider, m.Locale
		customers[i], bodies[i], sentAt[i] = m.CustomerPK, m.BodyID, m.SentAt
		if m.RecipientVars != nil {
			raw, err := json.Marshal(m.RecipientVars)
			if err != nil {
				return err
			}
			s := string(raw)
			vars[i] = &s
		}
		byID[m.ID] = m
	}
	first := rows[0]
	values := first.Values
	if values == nil {
		values = map[string]any{}
	}
	rawValues, err := json.Marshal(values)
	if err != nil {
		return err
	}
	var got []struct {
		PK int64  `bun:"id"`
		ID string `bun:"public_id"`
	}
	err = db.NewRaw(`INSERT INTO messages (public_id, idempotency_key, customer_id, recipient, recipient_name,
		unsubscribe_url, recipient_vars, state, last_error, provider, sent_at, locale, body_id,
		template, template_values, kind, subject, html, text, program, scenario, step, variant, campaign,
		attempts, maybe_sent, next_attempt_at, locked_by, locked_until, created_at, updated_at)
		SELECT u.public_id, u.idempotency_key, u.customer_id, u.recipient, u.recipient_name,
		u.unsubscribe_url, u.recipient_vars, u.state, u.last_error, u.provider, u.sent_at, u.locale, u.body_id,
		?, ?::jsonb, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
		FROM unnest(?::text[], ?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::jsonb[], ?::text[], ?::text[],
		?::text[], ?::timestamptz[], ?::text[], ?::bigint[])
		AS u (public_id, idempotency_key, customer_id, recipient, recipient_name, unsubscribe_url, recipient_vars,
		state, last_error, provider, sent_at, locale, body_id)
		RETURNING id, public_id`,
		first.Template, string(rawValues), string(first.Kind), first.Subject, first.HTML, first.Text, first.Program,
		first.Scenario, first.Step, first.Variant, first.Campaign, first.Attempts, first.MaybeSent, first.NextAttemptAt,
		first.LockedBy, first.LockedUntil, first.CreatedAt, first.UpdatedAt,
		pgdialect.Array(publicIDs), pgdialect.Array(keys), pgdialect.Array(customers), pgdialect.Array(recipients),
		pgdialect.Array(names), pgdialect.Array(unsubs), pgdialect.Array(vars), pgdialect.Array(states), pgdialect.Array(errs),
		pgdialect.Array(providers), pgdialect.Array(sentAt), pgdialect.Array(locales), pgdialect.Array(bodies)).Scan(ctx, &got)
	if err != nil {
		return err
	}
	if len(got) != n {
		return fmt.Errorf("%d rows written, want %d", len(got), n)
	}
	for _, g := range got {
		if m := byID[g.ID]; m != nil {
			m.PK = g.PK
		}
	}
	return nil
}

func eq(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func eqTime(a, b *time.Time) bool { return (a == nil) == (b == nil) && (a == nil || a.Equal(*b)) }
