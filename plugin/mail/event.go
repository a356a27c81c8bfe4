package mail

import (
	"encoding/json"
	"errors"
	"time"
)

// EventKind is what happened to a message, in Refrain's words (Mailgun's
// names, which the other providers' events map onto).
type EventKind string

const (
	// EventAccepted: the provider queued the message.
	EventAccepted EventKind = "accepted"
	// EventDelivered: the recipient's server accepted the message.
	EventDelivered EventKind = "delivered"
	// EventOpened: the tracking pixel was loaded (see Event.MachineOpen).
	EventOpened EventKind = "opened"
	// EventClicked: a tracked link was followed (Event.URL).
	EventClicked EventKind = "clicked"
	// EventUnsubscribed: the recipient unsubscribed through the provider.
	EventUnsubscribed EventKind = "unsubscribed"
	// EventComplained: the recipient marked the message as spam.
	EventComplained EventKind = "complained"
	// EventFailed: delivery failed (Event.Severity tells a bounce from a
	// delay).
	EventFailed EventKind = "failed"
)

// Severity tells a permanent delivery failure (hard bounce, suppressed
// address) from a temporary one the provider keeps retrying.
type Severity string

const (
	// SeverityPermanent is a failure the provider gave up on.
	SeverityPermanent Severity = "permanent"
	// SeverityTemporary is a failure the provider will retry.
	SeverityTemporary Severity = "temporary"
)

// ErrUnacceptable marks a webhook payload that can never be processed (not
// JSON, no event, an unknown event kind). The HTTP edge answers it with 406,
// which tells Mailgun to stop retrying; any other failure is answered so
// that the provider retries.
var ErrUnacceptable = errors.New("unacceptable event payload")

// ClientInfo describes the mail client or proxy behind an open or a click.
type ClientInfo struct {
	// Type is the client type ("browser", "mobile browser", "email client").
	Type string
	// OS is the client's operating system.
	OS string
	// DeviceType is "desktop", "mobile", "tablet" or "unknown".
	DeviceType string
	// Name is the client name ("Chrome", "Apple Mail").
	Name string
	// UserAgent is the raw User-Agent.
	UserAgent string
	// Bot is the provider's own machine classification, empty for a person.
	Bot string
	// IP is the address the request came from.
	IP string
}

// Event is one delivery event from a provider, normalised. The webhook
// handler stores it against the message whose id is MessageID.
type Event struct {
	// ID is the provider's event id, the idempotency key of the event.
	ID string
	// Provider names the source ("mailgun").
	Provider string
	// Kind is what happened.
	Kind EventKind
	// At is when it happened, in UTC, to the microsecond.
	At time.Time
	// Recipient is the address concerned.
	Recipient string
	// ProviderMessageID is the Message-Id header of the message, without
	// angle brackets, as Sender.Send returns it.
	ProviderMessageID string
	// MessageID, Program, Step and Variant are the user variables Refrain
	// sent with the message (empty for mail Refrain did not send).
	MessageID string
	Program   string
	Step      string
	Variant   string
	// Variables are all the user variables, as strings.
	Variables map[string]string
	// Tags are the provider tags of the message.
	Tags []string
	// URL is the link followed, for EventClicked.
	URL string
	// Client describes who opened or clicked.
	Client ClientInfo
	// MachineOpen is true for an open made by a machine (privacy proxy,
	// prefetching, security scanner) rather than by a person reading the
	// message. Such opens are counted apart. See the provider's parser for
	// the rule.
	MachineOpen bool
	// Severity, Reason, DeliveryCode, DeliveryDescription and
	// DeliveryMessage describe an EventFailed (DeliveryCode is the SMTP
	// status, or the provider's own code such as Mailgun's 605).
	Severity            Severity
	Reason              string
	DeliveryCode        int
	DeliveryDescription string
	DeliveryMessage     string
	// Raw is the provider's event object as received, kept for replay and
	// for fields Refrain does not read yet.
	Raw json.RawMessage
}
