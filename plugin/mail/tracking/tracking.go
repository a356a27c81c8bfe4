// Package tracking records what a mail provider reports about Refrain's
// messages: each delivery event is stored once (idempotent on the
// provider's event id) against its message, moves the customer's
// engagement (last open, last click), becomes a customer event that
// segments and scenarios read, and turns bounces, complaints and
// unsubscribes into suppressions and consent changes.
package tracking

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/mail"
	"github.com/refrain-dev/refrain/plugin/mail/consent"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
	"github.com/refrain-dev/refrain/plugin/ptr"
)

// The customer event types an event becomes. Segments and scenarios depend
// on these names.
const (
	EventDelivered    = "email.delivered"
	EventOpened       = "email.opened"
	EventClicked      = "email.clicked"
	EventBounced      = "email.bounced"
	EventComplained   = "email.complained"
	EventUnsubscribed = consent.EventUnsubscribed
)

// EventRecorder counts a provider event against the message it is about
// (the engagement rollups implement it). It is called in the transaction
// that records the event, so an event is counted exactly when it is
// recorded.
type EventRecorder interface {
	RecordEvent(ctx context.Context, db bun.IDB, msg *outbox.Message, ev mail.Event) error
}

// Record stores ev in db (in a transaction of its own) and applies its
// effects, counting it with counts (nil counts nothing). It reports false,
// with no error, for an event already recorded. An event for a message
// Refrain does not know is still recorded (and applied to the customer
// with that address, if any).
func Record(ctx context.Context, db *bun.DB, now time.Time, ev mail.Event, counts EventRecorder) (bool, error) {
	var recorded bool
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		recorded, err = RecordTx(ctx, tx, now, ev, counts)
		return err
	})
	return recorded, err
}

// RecordTx is Record within the caller's transaction.
func RecordTx(ctx context.Context, db bun.IDB, now time.Time, ev mail.Event, counts EventRecorder) (bool, error) {
	msg, err := findMessage(ctx, db, ev)
	if err != nil {
		return false, err
	}
	c, err := findCustomer(ctx, db, ev, msg)
	if err != nil {
		return false, err
	}
	row := &outbox.MessageEvent{ProviderEventID: ev.Provider + ":" + ev.ID, Provider: ev.Provider, Kind: ev.Kind,
		OccurredAt: ev.At.UTC(), Recipient: strp(ev.Recipient), URL: strp(ev.URL), MachineOpen: ev.MachineOpen,
		Severity: strp(string(ev.Severity)), Reason: strp(firstNonEmpty(ev.Reason, ev.DeliveryDescription)),
		Raw: map[string]any{}, CreatedAt: now}
	if len(ev.Raw) > 0 {
		_ = json.Unmarshal(ev.Raw, &row.Raw)
	}
	if msg != nil {
		row.MessagePK = &msg.PK
	}
	if c != nil {
		row.CustomerPK = &c.PK
	}
	res, err := db.NewInsert().Model(row).On("CONFLICT (provider_event_id) DO NOTHING").Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("record %s event %s: %w", ev.Kind, ev.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	if err := apply(ctx, db, now, ev, msg, c); err != nil {
		return false, fmt.Errorf("apply %s event %s: %w", ev.Kind, ev.ID, err)
	}
	if msg != nil && counts != nil {
		// The engagement rollups move in this same transaction, so an
		// event is counted exactly when it is recorded.
		if err := counts.RecordEvent(ctx, db, msg, ev); err != nil {
			return false, fmt.Errorf("count %s event %s: %w", ev.Kind, ev.ID, err)
		}
	}
	return true, nil
}

func findMessage(ctx context.Context, db bun.IDB, ev mail.Event) (*outbox.Message, error) {
	if ev.MessageID != "" {
		m, err := outbox.Get(ctx, db, ev.MessageID)
		if err == nil || !errors.Is(err, outbox.ErrNotFound) {
			return m, err
		}
	}
	if ev.ProviderMessageID != "" {
		m, err := outbox.GetByProviderID(ctx, db, ev.ProviderMessageID, ev.Recipient)
		if err == nil || !errors.Is(err, outbox.ErrNotFound) {
			return m, err
		}
	}
	return nil, nil
}

func findCustomer(ctx context.Context, db bun.IDB, ev mail.Event, msg *outbox.Message) (*customer.Customer, error) {
	if msg != nil && msg.CustomerPK != nil {
		c, err := customer.Get(ctx, db, *msg.CustomerPK)
		if err == nil || !errors.Is(err, customer.ErrNotFound) {
			return c, err
		}
	}
	if ev.Recipient == "" {
		return nil, nil
	}
	c, err := customer.GetByEmail(ctx, db, ev.Recipient)
	if errors.Is(err, customer.ErrNotFound) || errors.Is(err, customer.ErrInvalidEmail) {
		return nil, nil
	}
	return c, err
}

// apply turns a new event into its effects.
func apply(ctx context.Context, db bun.IDB, now time.Time, ev mail.Event, msg *outbox.Message, c *customer.Customer) error {
	recipient := ev.Recipient
	if recipient == "" && msg != nil {
		recipient = msg.Recipient
	}
	switch {
	case ev.Kind == mail.EventFailed && ev.Severity == mail.SeverityPermanent && recipient != "":
		if _, err := outbox.Suppress(ctx, db, now, recipient, outbox.ReasonHardBounce, ev.Provider,
			firstNonEmpty(ev.DeliveryDescription, ev.Reason)); err != nil {
			return err
		}
	case ev.Kind == mail.EventComplained && recipient != "":
		if _, err := outbox.Suppress(ctx, db, now, recipient, outbox.ReasonComplaint, ev.Provider, ""); err != nil {
			return err
		}
	case ev.Kind == mail.EventUnsubscribed && recipient != "" && c == nil:
		if _, err := outbox.Suppress(ctx, db, now, recipient, outbox.ReasonUnsubscribe, ev.Provider, ""); err != nil {
			return err
		}
	}
	if c == nil {
		return nil
	}
	props := map[string]any{"message_id": firstNonEmpty(ev.MessageID, messageField(msg, func(m *outbox.Message) string { return m.ID })),
		"program":           firstNonEmpty(ev.Program, messageField(msg, func(m *outbox.Message) string { return ptr.Deref(m.Program) })),
		"step":              firstNonEmpty(ev.Step, messageField(msg, func(m *outbox.Message) string { return ptr.Deref(m.Step) })),
		"variant":           firstNonEmpty(ev.Variant, messageField(msg, func(m *outbox.Message) string { return ptr.Deref(m.Variant) })),
		"provider_event_id": ev.ID}
	var typ string
	switch ev.Kind {
	case mail.EventDelivered:
		typ = EventDelivered
	case mail.EventOpened:
		typ = EventOpened
		props["machine"] = ev.MachineOpen
		// Machine opens (privacy proxies, scanners) say nothing about the
		// person: they are recorded and counted apart, and do not move the
		// last open that sunset and win-back rules read.
		if !ev.MachineOpen {
			if err := touch(ctx, db, c.PK, "last_open_at", ev.At); err != nil {
				return err
			}
		}
	case mail.EventClicked:
		typ = EventClicked
		props["url"] = ev.URL
		machine := ScannerClick(msg, ev.At)
		props["machine"] = machine
		if !machine {
			if err := touch(ctx, db, c.PK, "last_click_at", ev.At); err != nil {
				return err
			}
		}
	case mail.EventFailed:
		typ = EventBounced
		props["severity"] = string(ev.Severity)
		props["reason"] = ev.Reason
		props["code"] = ev.DeliveryCode
		props["description"] = ev.DeliveryDescription
	case mail.EventComplained, mail.EventUnsubscribed:
		typ = EventComplained
		method := "complaint"
		if ev.Kind == mail.EventUnsubscribed {
			typ, method = EventUnsubscribed, "provider_unsubscribe"
		}
		if _, err := consent.Withdraw(ctx, db, c, now, ev.Provider, method, map[string]any{
			"provider": ev.Provider, "provider_event_id": ev.ID, "event_at": ev.At.UTC().Format(time.RFC3339Nano),
			"message_id": props["message_id"], "recipient": recipient}); err != nil {
			return err
		}
	default:
		return nil // accepted: the message row already says it
	}
	_, _, err := customer.AppendEvent(ctx, db, now, c.PK, customer.EventInput{Type: typ, OccurredAt: ev.At,
		Source: ev.Provider, Properties: props, IdempotencyKey: ev.Provider + ":" + ev.ID})
	return err
}

// ScannerWindow is how soon after a message was handed to the provider a
// click is taken for a security scanner's. Mail security gateways follow
// every link of an incoming message to check it before the person sees it
// (Microsoft Defender for Office 365 Safe Links, "URLs in email messages
// are scanned [...] during mail flow":
// https://learn.microsoft.com/en-us/defender-office-365/safe-links-about;
// Mimecast URL Protection likewise), which shows as clicks within seconds
// of delivery: no person reads and clicks that fast.
const ScannerWindow = 15 * time.Second

// ScannerClick reports whether a click at at on msg came from a link
// scanner rather than a person: it came within ScannerWindow of sending.
func ScannerClick(msg *outbox.Message, at time.Time) bool {
	if msg == nil || msg.SentAt == nil {
		return false
	}
	d := at.Sub(*msg.SentAt)
	return d >= -time.Minute && d < ScannerWindow
}

// touch moves a customer's engagement timestamp forward, never back.
func touch(ctx context.Context, db bun.IDB, customerPK int64, column string, at time.Time) error {
	at = at.UTC()
	_, err := db.NewUpdate().Model((*customer.Customer)(nil)).Set("? = ?", bun.Ident(column), at).
		Where("id = ?", customerPK).
		Where("(? IS NULL OR ? < ?)", bun.Ident(column), bun.Ident(column), at).Exec(ctx)
	if err != nil {
		return fmt.Errorf("update %s of customer %d: %w", column, customerPK, err)
	}
	return nil
}

// SeeToken records a webhook signature token and reports whether it is
// new; a token seen before is a replay. Tokens older than keep are
// forgotten, so keep must exceed the signature freshness window.
func SeeToken(ctx context.Context, db bun.IDB, now time.Time, token string, keep time.Duration) (bool, error) {
	res, err := db.NewRaw("INSERT INTO mailgun_webhook_tokens (token, seen_at) VALUES (?, ?) ON CONFLICT (token) DO NOTHING",
		token, now.UTC()).Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("record webhook token: %w", err)
	}
	n, _ := res.RowsAffected()
	if _, err := db.NewRaw("DELETE FROM mailgun_webhook_tokens WHERE seen_at < ?", now.Add(-keep).UTC()).Exec(ctx); err != nil {
		return false, fmt.Errorf("forget old webhook tokens: %w", err)
	}
	return n == 1, nil
}

// EventSource reads a provider's events over a period (mailgun.Sender).
type EventSource interface {
	PollEvents(ctx context.Context, begin, end time.Time, fn func(mail.Event) error) error
}

// Poller reads the provider's events API at an interval and records what the
// webhooks missed: after an outage longer than the provider's webhook
// retries, nothing is lost as long as the provider keeps its events.
type Poller struct {
	DB       *bun.DB
	Source   EventSource
	Clock    clock.Clock
	Logger   *slog.Logger
	Interval time.Duration
	// Events counts each recorded event (the engagement rollups). Nil
	// counts nothing.
	Events EventRecorder
	// Lag keeps the poll this far behind now, so that events still being
	// indexed by the provider are read on a later pass. Default 5 minutes.
	Lag time.Duration
	// Start is how far back the first poll reads. Default 24 hours.
	Start time.Duration
}

const pollStateName = "mailgun_events"

// Run polls until ctx is done.
func (p *Poller) Run(ctx context.Context) error {
	t := time.NewTicker(p.Interval)
	defer t.Stop()
	for {
		if n, err := p.Poll(ctx); err != nil && ctx.Err() == nil {
			p.Logger.WarnContext(ctx, "mailgun events poll failed", "err", err)
		} else if n > 0 {
			p.Logger.InfoContext(ctx, "mailgun events poll recorded missed events", "events", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Poll reads events from where the last poll stopped to now minus Lag,
// records them and moves the position on. It returns how many events were
// new.
func (p *Poller) Poll(ctx context.Context) (int, error) {
	lag, start := p.Lag, p.Start
	if lag <= 0 {
		lag = 5 * time.Minute
	}
	if start <= 0 {
		start = 24 * time.Hour
	}
	now := p.Clock.Now()
	end := now.Add(-lag)
	var pos struct {
		Position time.Time `bun:"position"`
	}
	begin := now.Add(-start)
	err := p.DB.NewRaw("SELECT position FROM mail_poll_state WHERE name = ?", pollStateName).Scan(ctx, &pos)
	if err == nil {
		begin = pos.Position
	}
	if !end.After(begin) {
		return 0, nil
	}
	n := 0
	if err := p.Source.PollEvents(ctx, begin, end, func(ev mail.Event) error {
		ok, err := Record(ctx, p.DB, p.Clock.Now(), ev, p.Events)
		if ok {
			n++
		}
		return err
	}); err != nil {
		return n, err
	}
	_, err = p.DB.NewRaw(`INSERT INTO mail_poll_state (name, position, updated_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = EXCLUDED.updated_at`,
		pollStateName, end.UTC(), now.UTC()).Exec(ctx)
	if err != nil {
		return n, fmt.Errorf("store poll position: %w", err)
	}
	return n, nil
}

func messageField(m *outbox.Message, f func(*outbox.Message) string) string {
	if m == nil {
		return ""
	}
	return f(m)
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
