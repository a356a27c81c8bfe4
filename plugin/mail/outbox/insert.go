package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/store"
)

// rowJSON is a message row as json_populate_recordset reads it: keys are
// column names.
type rowJSON struct {
	PublicID       string            `json:"public_id"`
	IdempotencyKey string            `json:"idempotency_key"`
	CustomerPK     *int64            `json:"customer_id"`
	Recipient      string            `json:"recipient"`
	RecipientName  *string           `json:"recipient_name"`
	Template       string            `json:"template"`
	Values         map[string]any    `json:"template_values"`
	Locale         *string           `json:"locale"`
	Kind           string            `json:"kind"`
	Subject        string            `json:"subject"`
	HTML           string            `json:"html"`
	Text           string            `json:"text"`
	UnsubscribeURL *string           `json:"unsubscribe_url"`
	Program        *string           `json:"program"`
	Scenario       *string           `json:"scenario"`
	Step           *string           `json:"step"`
	Variant        *string           `json:"variant"`
	Campaign       *string           `json:"campaign"`
	State          State             `json:"state"`
	Attempts       int               `json:"attempts"`
	LastError      *string           `json:"last_error"`
	MaybeSent      bool              `json:"maybe_sent"`
	NextAttemptAt  time.Time         `json:"next_attempt_at"`
	LockedBy       *string           `json:"locked_by"`
	LockedUntil    *time.Time        `json:"locked_until"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
	BodyID         *int64            `json:"body_id"`
	RecipientVars  map[string]string `json:"recipient_vars"`
}

const rowColumns = `public_id, idempotency_key, customer_id, recipient, recipient_name, template, template_values,
	locale, kind, subject, html, text, unsubscribe_url, program, scenario, step, variant, campaign, state, attempts,
	last_error, maybe_sent, next_attempt_at, locked_by, locked_until, created_at, updated_at, body_id, recipient_vars`

// insertRows writes new message rows and sets their PK. On PostgreSQL the
// rows travel as one JSON document (json_populate_recordset): a
// multi-row VALUES of a thousand rows costs the server more to parse
// than to write. SQLite takes the multi-row insert.
func insertRows(ctx context.Context, db bun.IDB, rows []*Message) error {
	if len(rows) == 0 {
		return nil
	}
	if store.DialectOf(db) != store.Postgres {
		_, err := db.NewInsert().Model(&rows).Exec(ctx)
		return err
	}
	docs := make([]rowJSON, len(rows))
	byID := make(map[string]*Message, len(rows))
	for i, m := range rows {
		values := m.Values
		if values == nil {
			values = map[string]any{}
		}
		docs[i] = rowJSON{PublicID: m.ID, IdempotencyKey: m.IdempotencyKey, CustomerPK: m.CustomerPK, Recipient: m.Recipient,
			RecipientName: m.RecipientName, Template: m.Template, Values: values, Locale: m.Locale, Kind: string(m.Kind),
			Subject: m.Subject, HTML: m.HTML, Text: m.Text, UnsubscribeURL: m.UnsubscribeURL, Program: m.Program,
			Scenario: m.Scenario, Step: m.Step, Variant: m.Variant, Campaign: m.Campaign, State: m.State,
			Attempts: m.Attempts, LastError: m.LastError, MaybeSent: m.MaybeSent, NextAttemptAt: m.NextAttemptAt,
			LockedBy: m.LockedBy, LockedUntil: m.LockedUntil, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt,
			BodyID: m.BodyID, RecipientVars: m.RecipientVars}
		byID[m.ID] = m
	}
	raw, err := json.Marshal(docs)
	if err != nil {
		return err
	}
	var got []struct {
		PK int64  `bun:"id"`
		ID string `bun:"public_id"`
	}
	if err := db.NewRaw("INSERT INTO messages ("+rowColumns+") SELECT "+rowColumns+
		" FROM json_populate_recordset(NULL::messages, ?) RETURNING id, public_id", string(raw)).Scan(ctx, &got); err != nil {
		return err
	}
	if len(got) != len(rows) {
		return fmt.Errorf("%d rows written, want %d", len(got), len(rows))
	}
	for _, g := range got {
		if m := byID[g.ID]; m != nil {
			m.PK = g.PK
		}
	}
	return nil
}
