// Package mail holds what every part of Refrain agrees on about outgoing mail:
// the message and batch a sender delivers, the Sender interface a provider
// implements, how provider failures are classified and retried, and the
// normalised delivery event a provider webhook turns into.
//
// Providers live in subpackages (mailgun); templates in mail/template. This
// package has no storage and no HTTP: the outbox owns message rows and the
// webhook handler owns the HTTP edge.
package mail

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strings"
	"unicode"
)

// Kind tells marketing mail, which needs consent, an unsubscribe link and
// counts against the pressure policy, from transactional mail, which does not.
type Kind string

const (
	// KindMarketing is promotional or relational mail sent under consent.
	KindMarketing Kind = "marketing"
	// KindTransactional is mail the customer asked for (confirmations,
	// password recovery); it is never capped and carries no List-Unsubscribe.
	KindTransactional Kind = "transactional"
)

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool { return k == KindMarketing || k == KindTransactional }

// The user variables Refrain attaches to every message. The provider echoes
// them in each event, which is how an event finds its message row.
const (
	// VarMessageID carries Refrain's message id. Senders set it from
	// Message.ID (or Recipient.MessageID in a batch); callers do not.
	VarMessageID = "message_id"
	// VarProgram carries the program (scenario or campaign) id.
	VarProgram = "program"
	// VarStep carries the scenario step id.
	VarStep = "step"
	// VarVariant carries the A/B variant.
	VarVariant = "variant"
)

// MaxTags is the number of tags a provider keeps per message (Mailgun's limit).
const MaxTags = 3

// MaxBatchRecipients is the largest batch one provider call accepts (Mailgun's limit).
const MaxBatchRecipients = 1000

// Message is one mail to one recipient.
type Message struct {
	// ID is Refrain's message id (the message row's idempotency key). It is
	// sent as the user variable message_id and comes back in every event.
	ID string
	// To is the recipient's address, ToName their display name (optional).
	To     string
	ToName string
	// From is the sender, an address with an optional display name
	// ("Store <news@store.example>").
	From string
	// ReplyTo is an optional Reply-To address.
	ReplyTo string
	// Subject, HTML and Text are the rendered content. HTML or Text is
	// required unless TemplateName is set.
	Subject string
	HTML    string
	Text    string
	// Kind selects the sending domain and whether List-Unsubscribe is required.
	Kind Kind
	// Tags are the provider tags, used for the provider's own statistics
	// (program id first). At most MaxTags.
	Tags []string
	// Variables are user variables echoed in events: program, step, variant
	// (see the Var constants). message_id is always taken from ID.
	Variables map[string]string
	// Headers are extra MIME headers.
	Headers map[string]string
	// ListUnsubscribeURL is the https one-click unsubscribe address (RFC
	// 8058). Required for marketing mail.
	ListUnsubscribeURL string
	// ListUnsubscribeMailto is an optional mailto: unsubscribe address
	// ("mailto:unsubscribe@store.example?subject=..."); the "mailto:" prefix
	// is added when missing.
	ListUnsubscribeMailto string
	// Tracking turns the provider's open and click tracking on.
	Tracking bool
	// TemplateName names a template stored at the provider, used instead of
	// HTML and Text; TemplateVariables are its variables.
	TemplateName      string
	TemplateVariables map[string]any
}

// Recipient is one addressee of a Batch.
type Recipient struct {
	// MessageID is Refrain's message id for this recipient.
	MessageID string
	// Email is the recipient's address. It keys the recipient variables, so
	// it must be unique within the batch.
	Email string
	// UnsubscribeURL is this recipient's https one-click unsubscribe
	// address. Required for marketing mail.
	UnsubscribeURL string
	// Variables are personalisation values, used in the body as
	// %recipient.first_name%. message_id and unsubscribe_url are added by
	// the sender and must not be set here.
	Variables map[string]string
}

// Batch is one message body sent to many recipients in one provider call,
// personalised per recipient with provider-side substitution
// (%recipient.name%). Each recipient still has its own message id, so its
// events come back to its own message row.
type Batch struct {
	// From, ReplyTo, Subject, HTML, Text, Kind, Tags, Headers, Tracking,
	// TemplateName and TemplateVariables mean what they mean in Message.
	From              string
	ReplyTo           string
	Subject           string
	HTML              string
	Text              string
	Kind              Kind
	Tags              []string
	Headers           map[string]string
	Tracking          bool
	TemplateName      string
	TemplateVariables map[string]any
	// Variables are user variables shared by every recipient (program,
	// step, variant). message_id is per recipient and set by the sender.
	Variables map[string]string
	// ListUnsubscribeMailto is an optional mailto: unsubscribe address
	// shared by every recipient.
	ListUnsubscribeMailto string
	// Recipients are the addressees, 1 to MaxBatchRecipients.
	Recipients []Recipient
}

// The recipient variables a sender adds to every batch recipient.
const (
	// RecipientVarMessageID is the recipient variable holding the recipient's message id.
	RecipientVarMessageID = "message_id"
	// RecipientVarUnsubscribeURL is the recipient variable holding the recipient's unsubscribe URL.
	RecipientVarUnsubscribeURL = "unsubscribe_url"
)

// ErrInvalid is wrapped by every FieldError, so callers can test for it.
var ErrInvalid = errors.New("invalid message")

// FieldError reports a message or batch that cannot be sent as it is. It is
// permanent: retrying the same message fails the same way.
type FieldError struct {
	// Field names the offending field ("To", "Recipients[3].Email").
	Field string
	// Problem says what is wrong with it.
	Problem string
}

// Error returns "invalid message: <field>: <problem>".
func (e *FieldError) Error() string {
	return fmt.Sprintf("invalid message: %s: %s", e.Field, e.Problem)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// Validate checks what a provider would refuse or what Refrain's rules
// forbid: missing id, bad addresses, no content, more than MaxTags tags, a
// marketing message without an https unsubscribe URL.
func (m Message) Validate() error {
	if m.ID == "" {
		return invalid("ID", "is required")
	}
	if err := checkAddress("To", m.To); err != nil {
		return err
	}
	if err := checkCommon(m.Kind, m.From, m.ReplyTo, m.HTML, m.Text, m.TemplateName, m.Tags, m.Variables); err != nil {
		return err
	}
	if err := checkHeader("Subject", m.Subject); err != nil {
		return err
	}
	if err := checkHeader("ToName", m.ToName); err != nil {
		return err
	}
	if m.Kind == KindMarketing || m.ListUnsubscribeURL != "" {
		if err := checkHTTPS("ListUnsubscribeURL", m.ListUnsubscribeURL); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks the batch as Message.Validate checks a message, plus the
// recipient count, unique recipient addresses and reserved recipient
// variables.
func (b Batch) Validate() error {
	if err := checkCommon(b.Kind, b.From, b.ReplyTo, b.HTML, b.Text, b.TemplateName, b.Tags, b.Variables); err != nil {
		return err
	}
	if err := checkHeader("Subject", b.Subject); err != nil {
		return err
	}
	if len(b.Recipients) == 0 {
		return invalid("Recipients", "is empty")
	}
	if len(b.Recipients) > MaxBatchRecipients {
		return invalid("Recipients", "has %d recipients, more than %d", len(b.Recipients), MaxBatchRecipients)
	}
	seen := make(map[string]bool, len(b.Recipients))
	for i, r := range b.Recipients {
		field := fmt.Sprintf("Recipients[%d]", i)
		if r.MessageID == "" {
			return invalid(field+".MessageID", "is required")
		}
		if err := checkAddress(field+".Email", r.Email); err != nil {
			return err
		}
		key := strings.ToLower(r.Email)
		if seen[key] {
			return invalid(field+".Email", "%q appears twice in the batch", r.Email)
		}
		seen[key] = true
		if b.Kind == KindMarketing || r.UnsubscribeURL != "" {
			if err := checkHTTPS(field+".UnsubscribeURL", r.UnsubscribeURL); err != nil {
				return err
			}
		}
		for _, reserved := range []string{RecipientVarMessageID, RecipientVarUnsubscribeURL} {
			if _, ok := r.Variables[reserved]; ok {
				return invalid(field+".Variables", "%q is set by the sender", reserved)
			}
		}
	}
	return nil
}

// checkHeader refuses a header value holding a control character: a line
// break would end the header and start another (templates fold them away
// before a message gets here).
func checkHeader(field, v string) error {
	for _, r := range v {
		if unicode.IsControl(r) {
			return invalid(field, "holds the control character %U", r)
		}
	}
	return nil
}

func checkCommon(kind Kind, from, replyTo, html, text, templateName string, tags []string, vars map[string]string) error {
	if !kind.Valid() {
		return invalid("Kind", "%q is not %q or %q", kind, KindMarketing, KindTransactional)
	}
	if err := checkAddress("From", from); err != nil {
		return err
	}
	if replyTo != "" {
		if err := checkAddress("ReplyTo", replyTo); err != nil {
			return err
		}
	}
	if html == "" && text == "" && templateName == "" {
		return invalid("HTML", "HTML, Text or TemplateName is required")
	}
	if len(tags) > MaxTags {
		return invalid("Tags", "has %d tags, more than %d", len(tags), MaxTags)
	}
	for i, t := range tags {
		if strings.TrimSpace(t) == "" {
			return invalid(fmt.Sprintf("Tags[%d]", i), "is empty")
		}
	}
	if _, ok := vars[VarMessageID]; ok {
		return invalid("Variables", "%q is set by the sender from the message id", VarMessageID)
	}
	return nil
}

func checkAddress(field, addr string) error {
	if addr == "" {
		return invalid(field, "is required")
	}
	if _, err := mail.ParseAddress(addr); err != nil {
		return invalid(field, "%q is not an address: %v", addr, err)
	}
	return nil
}

func checkHTTPS(field, raw string) error {
	if raw == "" {
		return invalid(field, "is required for marketing mail")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return invalid(field, "%q is not an https address", raw)
	}
	return nil
}

// ListUnsubscribe formats the List-Unsubscribe header value (RFC 2369):
// the https address first, then the optional mailto address.
func ListUnsubscribe(httpsURL, mailto string) string {
	var parts []string
	if httpsURL != "" {
		parts = append(parts, "<"+httpsURL+">")
	}
	if mailto != "" {
		if !strings.HasPrefix(strings.ToLower(mailto), "mailto:") {
			mailto = "mailto:" + mailto
		}
		parts = append(parts, "<"+mailto+">")
	}
	return strings.Join(parts, ", ")
}

// ListUnsubscribePost is the List-Unsubscribe-Post header value that asks
// mailbox providers for RFC 8058 one-click unsubscription.
const ListUnsubscribePost = "List-Unsubscribe=One-Click"
