// Package outbox owns Refrain's message rows and their delivery: every mail
// is rendered and written as a row (unique idempotency key) before the
// provider is called, in the caller's transaction; a delivery worker on
// every replica claims due rows under a lease, checks the suppression list,
// hands the message to the configured mail.Sender, and records the
// provider's id or the failure. A row found "sending" after a crash is
// reconciled with the provider before anything is sent again.
//
// It also holds the suppression list, the templates stored in the database,
// batch sending for campaigns, and the built-in Local sender that keeps
// mail in the outbox for development.
package outbox

import (
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/mail"
)

// State is where a message is in its delivery.
type State string

// Message states: queued → sending → sent | failed | suppressed.
const (
	// StateQueued waits for its next attempt (NextAttemptAt).
	StateQueued State = "queued"
	// StateSending is claimed by a worker until LockedUntil; a row left in
	// it past its lease is reconciled with the provider before a resend.
	StateSending State = "sending"
	// StateSent was accepted by the provider (or stored by the Local sender).
	StateSent State = "sent"
	// StateFailed was refused for good; LastError says why.
	StateFailed State = "failed"
	// StateSuppressed was not sent because the address is suppressed or the
	// customer withdrew consent; LastError says which.
	StateSuppressed State = "suppressed"
)

// Message is one mail to one recipient, as stored.
type Message struct {
	bun.BaseModel `bun:"table:messages"`

	// PK is the row id; it never leaves the service.
	PK int64 `bun:"id,pk,autoincrement"`
	// ID is the public message id ("msg_..."), sent to the provider as the
	// user variable message_id.
	ID string `bun:"public_id,notnull"`
	// IdempotencyKey is unique: enqueuing the same key again returns this row.
	IdempotencyKey string `bun:"idempotency_key,notnull"`
	// CustomerPK is the recipient customer's row id, nil once erased.
	CustomerPK *int64 `bun:"customer_id"`
	// Recipient is the address, RecipientName the display name.
	Recipient     string  `bun:"recipient,notnull"`
	RecipientName *string `bun:"recipient_name"`
	// Template is the template name; ProviderTemplate, when set, names a
	// template stored at the provider used instead of the rendered body.
	Template         string         `bun:"template,notnull"`
	ProviderTemplate *string        `bun:"provider_template"`
	Values           map[string]any `bun:"template_values,notnull,type:jsonb"`
	// Locale is the locale the template was rendered in.
	Locale *string `bun:"locale"`
	// Kind is marketing or transactional.
	Kind mail.Kind `bun:"kind,notnull"`
	// Subject, HTML and Text are the rendered message.
	Subject string `bun:"subject,notnull"`
	HTML    string `bun:"html,notnull"`
	Text    string `bun:"text,notnull"`
	// UnsubscribeURL is the one-click unsubscribe link (marketing mail).
	UnsubscribeURL *string `bun:"unsubscribe_url"`
	// BodyID, on a row written by a batch, is its shared MessageBody: the
	// row's Subject, HTML and Text are stored empty and made, when the row
	// is read, from that body and the row's own facts (Recipient,
	// UnsubscribeURL and RecipientVars: customer id, first and last name).
	BodyID        *int64            `bun:"body_id"`
	RecipientVars map[string]string `bun:"recipient_vars,type:jsonb,nullzero"`
	// Program, Scenario, Step, Variant and Campaign say what sent it.
	Program  *string `bun:"program"`
	Scenario *string `bun:"scenario"`
	Step     *string `bun:"step"`
	Variant  *string `bun:"variant"`
	Campaign *string `bun:"campaign"`

	State State `bun:"state,notnull"`
	// Provider names the sender that took it ("mailgun", "outbox").
	Provider *string `bun:"provider"`
	// ProviderMessageID is the provider's id (for Mailgun, the Message-Id).
	ProviderMessageID *string `bun:"provider_message_id"`
	// Attempts counts claims by a worker.
	Attempts  int     `bun:"attempts,notnull"`
	LastError *string `bun:"last_error"`
	// MaybeSent is set when the provider may have accepted the message
	// (a crash while sending, a timeout, a 5xx): the next attempt asks the
	// provider first.
	MaybeSent     bool       `bun:"maybe_sent,notnull"`
	NextAttemptAt time.Time  `bun:"next_attempt_at,notnull"`
	LockedBy      *string    `bun:"locked_by"`
	LockedUntil   *time.Time `bun:"locked_until"`
	SentAt        *time.Time `bun:"sent_at"`
	CreatedAt     time.Time  `bun:"created_at,notnull"`
	UpdatedAt     time.Time  `bun:"updated_at,notnull"`
}

// MessageBody is the body a batch shares among its rows, rendered once
// with placeholders where each recipient's facts go.
type MessageBody struct {
	bun.BaseModel `bun:"table:message_bodies"`

	ID        int64     `bun:"id,pk,autoincrement"`
	Subject   string    `bun:"subject,notnull"`
	HTML      string    `bun:"html,notnull"`
	Text      string    `bun:"text,notnull"`
	CreatedAt time.Time `bun:"created_at,notnull"`

	// The outcome of the provider call the body was written for, recorded
	// once for all its rows. State is empty on bodies whose rows hold their
	// own state (written before calls had one), BodySending while the call
	// is in flight (its rows are stored as sent and read as sending),
	// BodySent once the provider took it (its rows read ProviderMessageID
	// and SentAt from here), BodySettled once its rows were given their own
	// state (the provider refused the call, or its sender died and the
	// delivery worker took the rows back). MessageIDs are the row ids of
	// the call's rows; LockedBy and LockedUntil the sender's lease.
	State             BodyState  `bun:"state,nullzero"`
	ProviderMessageID *string    `bun:"provider_message_id"`
	SentAt            *time.Time `bun:"sent_at"`
	LockedBy          *string    `bun:"locked_by"`
	LockedUntil       *time.Time `bun:"locked_until"`
	MessageIDs        []int64    `bun:"message_ids,type:text"`
}

// BodyState is where the provider call of a MessageBody is.
type BodyState string

// States of a batch call (see MessageBody).
const (
	BodySending BodyState = "sending"
	BodySent    BodyState = "sent"
	BodySettled BodyState = "settled"
)

// Reason tells why an address is suppressed.
type Reason string

// Suppression reasons. Hard bounces and complaints stop every mail;
// unsubscribes and manual entries stop marketing mail only.
const (
	ReasonHardBounce  Reason = "hard_bounce"
	ReasonComplaint   Reason = "complaint"
	ReasonUnsubscribe Reason = "unsubscribe"
	ReasonManual      Reason = "manual"
)

// Valid reports whether r is a known reason.
func (r Reason) Valid() bool {
	switch r {
	case ReasonHardBounce, ReasonComplaint, ReasonUnsubscribe, ReasonManual:
		return true
	}
	return false
}

// BlocksTransactional reports whether r stops transactional mail too.
func (r Reason) BlocksTransactional() bool { return r == ReasonHardBounce || r == ReasonComplaint }

// Suppression is one address on the suppression list, for one reason.
type Suppression struct {
	bun.BaseModel `bun:"table:suppressions"`

	ID int64 `bun:"id,pk,autoincrement"`
	// AddressHash is the hex SHA-256 of the normalised address; lookups go
	// through it so the list can outlive an erased address.
	AddressHash string `bun:"address_hash,notnull"`
	Address     string `bun:"address,notnull"`
	Reason      Reason `bun:"reason,notnull"`
	// Source says who added it: webhook, link, import, admin.
	Source    string    `bun:"source,notnull"`
	Detail    *string   `bun:"detail"`
	CreatedAt time.Time `bun:"created_at,notnull"`
}

// MessageEvent is one provider event recorded against a message.
type MessageEvent struct {
	bun.BaseModel `bun:"table:message_events"`

	ID              int64          `bun:"id,pk,autoincrement"`
	ProviderEventID string         `bun:"provider_event_id,notnull"`
	Provider        string         `bun:"provider,notnull"`
	MessagePK       *int64         `bun:"message_id"`
	CustomerPK      *int64         `bun:"customer_id"`
	Kind            mail.EventKind `bun:"kind,notnull"`
	OccurredAt      time.Time      `bun:"occurred_at,notnull"`
	Recipient       *string        `bun:"recipient"`
	URL             *string        `bun:"url"`
	MachineOpen     bool           `bun:"machine_open,notnull"`
	Severity        *string        `bun:"severity"`
	Reason          *string        `bun:"reason"`
	Raw             map[string]any `bun:"raw,notnull,type:jsonb"`
	CreatedAt       time.Time      `bun:"created_at,notnull"`
}

// StoredTemplate is a template set kept in the database for one locale.
type StoredTemplate struct {
	bun.BaseModel `bun:"table:mail_templates"`

	ID        int64     `bun:"id,pk,autoincrement"`
	Name      string    `bun:"name,notnull"`
	Locale    string    `bun:"locale,notnull"`
	Subject   string    `bun:"subject,notnull"`
	HTML      string    `bun:"html,notnull"`
	Text      string    `bun:"text,notnull"`
	CreatedAt time.Time `bun:"created_at,notnull"`
	UpdatedAt time.Time `bun:"updated_at,notnull"`
}

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
