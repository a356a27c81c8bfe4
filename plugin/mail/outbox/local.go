package outbox

import (
	"context"
	"time"

	"github.com/refrain-dev/refrain/plugin/mail"
)

// Local is the built-in sender used when no provider is configured: the
// message row already holds the rendered mail, so sending it only marks it
// sent, and the outbox query and page show it. Nothing leaves the machine.
type Local struct{}

var (
	_ mail.Sender     = Local{}
	_ mail.Reconciler = Local{}
)

// LocalID is the provider id Local gives a message.
func LocalID(messageID string) string { return "outbox:" + messageID }

// Send accepts m and returns its local id.
func (Local) Send(_ context.Context, m mail.Message) (string, error) { return LocalID(m.ID), nil }

// SendBatch accepts b and returns the local id of its first recipient.
func (Local) SendBatch(_ context.Context, b mail.Batch) (string, error) {
	if len(b.Recipients) == 0 {
		return "", &mail.FieldError{Field: "Recipients", Problem: "is empty"}
	}
	return LocalID(b.Recipients[0].MessageID), nil
}

// FindSent reports every message as found: a local send has no effect
// beyond the row, so a message left "sending" needs only marking sent.
func (Local) FindSent(_ context.Context, messageID string, _ time.Time) (string, bool, error) {
	return LocalID(messageID), true, nil
}
