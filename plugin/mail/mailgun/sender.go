// Package mailgun delivers Refrain's mail through Mailgun and reads what
// Mailgun reports back: a mail.Sender and mail.Reconciler on mailgun-go v4,
// the verification and parsing of Mailgun's event webhooks into
// mail.Event, and the HTTP handler of those webhooks (WebhookHandler). It
// is an edge: it imports net/http and the provider's client, and calls the
// domain (tracking); no domain package imports it.
package mailgun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"time"

	mg "github.com/mailgun/mailgun-go/v4"

	"github.com/refrain-dev/refrain/plugin/clock"
	refmail "github.com/refrain-dev/refrain/plugin/mail"
)

// DefaultTimeout bounds one API call when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// Config is what the sender needs to reach Mailgun.
type Config struct {
	// APIKey is the Mailgun private API key. Required.
	APIKey string
	// Domain is the sending domain for marketing mail, and for
	// transactional mail when TransactionalDomain is empty. Required.
	Domain string
	// TransactionalDomain is an optional separate sending domain for
	// transactional mail, so its reputation is not tied to marketing's.
	TransactionalDomain string
	// APIBase is the API address: empty for the US region
	// (https://api.mailgun.net), https://api.eu.mailgun.net for the EU
	// region, or a test server. The "/v3" version suffix is added when
	// missing.
	APIBase string
	// Timeout bounds each API call. Zero means DefaultTimeout (30 s).
	Timeout time.Duration
}

// Sender is a mail.Sender and mail.Reconciler backed by Mailgun. It is safe
// for concurrent use.
type Sender struct {
	client  *mg.MailgunImpl
	cfg     Config
	logger  *slog.Logger
	timeout time.Duration
}

var (
	_ refmail.Sender     = (*Sender)(nil)
	_ refmail.Reconciler = (*Sender)(nil)
)

// New returns a Sender for cfg. httpClient carries the requests (nil means a
// new default client); its transport is wrapped, never modified, to read
// Retry-After. clk dates a Retry-After given as an HTTP date when the
// response has no Date header (nil means clock.Real). logger nil discards
// logs.
func New(cfg Config, httpClient *http.Client, clk clock.Clock, logger *slog.Logger) (*Sender, error) {
	if strings.TrimSpace(cfg.APIKey) == "" {
		return nil, errors.New("mailgun config: APIKey is required")
	}
	if strings.TrimSpace(cfg.Domain) == "" {
		return nil, errors.New("mailgun config: Domain is required")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("mailgun config: Timeout %s is negative", cfg.Timeout)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if clk == nil {
		clk = clock.Real{}
	}
	base := strings.TrimRight(cfg.APIBase, "/")
	if base == "" {
		base = mg.APIBaseUS
	} else if !strings.HasSuffix(base, "/v3") {
		base += "/v3"
	}
	var hc http.Client
	if httpClient != nil {
		hc = *httpClient
	}
	transport := hc.Transport
	if transport == nil {
		transport = http.DefaultTransport
	}
	hc.Transport = &retryAfterTransport{base: transport, clock: clk}

	client := mg.NewMailgun(cfg.Domain, cfg.APIKey)
	client.SetAPIBase(base)
	client.SetClient(&hc)

	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	return &Sender{client: client, cfg: cfg, logger: logger, timeout: timeout}, nil
}

// Send submits m to Mailgun. Marketing mail carries List-Unsubscribe (https
// and optional mailto) and List-Unsubscribe-Post for RFC 8058 one-click;
// transactional mail goes through TransactionalDomain when set.
func (s *Sender) Send(ctx context.Context, m refmail.Message) (string, error) {
	if err := m.Validate(); err != nil {
		return "", fmt.Errorf("send message %s: %w", m.ID, err)
	}
	to := m.To
	if m.ToName != "" {
		to = (&mail.Address{Name: m.ToName, Address: m.To}).String()
	}
	msg := mg.NewMessage(m.From, m.Subject, m.Text, to)
	if err := s.prepare(msg, common{
		kind: m.Kind, replyTo: m.ReplyTo, html: m.HTML, tags: m.Tags, headers: m.Headers,
		tracking: m.Tracking, templateName: m.TemplateName, templateVars: m.TemplateVariables,
		vars: m.Variables, messageID: m.ID,
		unsubscribe: refmail.ListUnsubscribe(m.ListUnsubscribeURL, m.ListUnsubscribeMailto),
	}); err != nil {
		return "", fmt.Errorf("send message %s: %w", m.ID, err)
	}
	id, err := s.send(ctx, msg)
	if err != nil {
		return "", fmt.Errorf("send message %s: %w", m.ID, err)
	}
	s.logger.DebugContext(ctx, "mailgun accepted message", slog.String("message_id", m.ID), slog.String("provider_id", id))
	return id, nil
}

// SendBatch submits b to Mailgun in one call with recipient-variables: each
// recipient's message_id and unsubscribe_url (plus b's personalisation
// variables) are substituted by Mailgun, so v:message_id is
// "%recipient.message_id%" and List-Unsubscribe points at
// "%recipient.unsubscribe_url%". The "to" field holds bare addresses,
// because Mailgun keys recipient-variables by address.
func (s *Sender) SendBatch(ctx context.Context, b refmail.Batch) (string, error) {
	if err := b.Validate(); err != nil {
		return "", fmt.Errorf("send batch: %w", err)
	}
	msg := mg.NewMessage(b.From, b.Subject, b.Text)
	for _, r := range b.Recipients {
		vars := make(map[string]any, len(r.Variables)+2)
		for k, v := range r.Variables {
			vars[k] = v
		}
		vars[refmail.RecipientVarMessageID] = r.MessageID
		if r.UnsubscribeURL != "" {
			vars[refmail.RecipientVarUnsubscribeURL] = r.UnsubscribeURL
		}
		if err := msg.AddRecipientAndVariables(r.Email, vars); err != nil {
			return "", fmt.Errorf("send batch: add recipient %s: %w", r.MessageID, err)
		}
	}
	unsubscribe := ""
	if b.Kind == refmail.KindMarketing {
		unsubscribe = refmail.ListUnsubscribe("%recipient."+refmail.RecipientVarUnsubscribeURL+"%", b.ListUnsubscribeMailto)
	}
	if err := s.prepare(msg, common{
		kind: b.Kind, replyTo: b.ReplyTo, html: b.HTML, tags: b.Tags, headers: b.Headers,
		tracking: b.Tracking, templateName: b.TemplateName, templateVars: b.TemplateVariables,
		vars: b.Variables, messageID: "%recipient." + refmail.RecipientVarMessageID + "%",
		unsubscribe: unsubscribe,
	}); err != nil {
		return "", fmt.Errorf("send batch: %w", err)
	}
	id, err := s.send(ctx, msg)
	if err != nil {
		return "", fmt.Errorf("send batch of %d: %w", len(b.Recipients), err)
	}
	s.logger.DebugContext(ctx, "mailgun accepted batch", slog.Int("recipients", len(b.Recipients)), slog.String("provider_id", id))
	return id, nil
}

// common holds what Message and Batch share once addressed.
type common struct {
	kind         refmail.Kind
	replyTo      string
	html         string
	tags         []string
	headers      map[string]string
	tracking     bool
	templateName string
	templateVars map[string]any
	vars         map[string]string
	messageID    string
	unsubscribe  string
}

func (s *Sender) prepare(msg *mg.Message, c common) error {
	if c.kind == refmail.KindTransactional && s.cfg.TransactionalDomain != "" {
		msg.AddDomain(s.cfg.TransactionalDomain)
	}
	if c.html != "" {
		msg.SetHTML(c.html)
	}
	if c.templateName != "" {
		msg.SetTemplate(c.templateName)
		for k, v := range c.templateVars {
			if err := msg.AddTemplateVariable(k, v); err != nil {
				return fmt.Errorf("add template variable %q: %w", k, err)
			}
		}
	}
	if len(c.tags) > 0 {
		if err := msg.AddTag(c.tags...); err != nil {
			return fmt.Errorf("add tags: %w", err)
		}
	}
	msg.SetTracking(c.tracking)
	for k, v := range c.vars {
		if err := msg.AddVariable(k, v); err != nil {
			return fmt.Errorf("add variable %q: %w", k, err)
		}
	}
	if err := msg.AddVariable(refmail.VarMessageID, c.messageID); err != nil {
		return fmt.Errorf("add variable %q: %w", refmail.VarMessageID, err)
	}
	for k, v := range c.headers {
		msg.AddHeader(k, v)
	}
	if c.replyTo != "" {
		msg.SetReplyTo(c.replyTo)
	}
	if c.unsubscribe != "" {
		msg.AddHeader("List-Unsubscribe", c.unsubscribe)
		if strings.Contains(c.unsubscribe, "<https://") || strings.Contains(c.unsubscribe, "<%recipient.") {
			msg.AddHeader("List-Unsubscribe-Post", refmail.ListUnsubscribePost)
		}
	}
	return nil
}

// send makes the call with the configured timeout and classifies failures.
func (s *Sender) send(ctx context.Context, msg *mg.Message) (string, error) {
	callCtx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	meta := &responseMeta{}
	callCtx = context.WithValue(callCtx, responseMetaKey{}, meta)

	_, id, err := s.client.Send(callCtx, msg)
	if err != nil {
		return "", s.classify(ctx, err, meta)
	}
	return trimAngles(id), nil
}

// classify turns a mailgun-go error into a *mail.ProviderError, or returns
// the caller's own context error when the caller gave up.
func (s *Sender) classify(ctx context.Context, err error, meta *responseMeta) error {
	var ure *mg.UnexpectedResponseError
	if errors.As(err, &ure) {
		status := ure.Actual
		temporary := status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout
		return &refmail.ProviderError{
			Status:     status,
			Reason:     reason(ure.Data, status),
			RetryAfter: meta.retryAfter(),
			Temporary:  temporary,
			MaybeSent:  status >= 500,
			Err:        err,
		}
	}
	if ctx.Err() != nil {
		// The caller stopped waiting; whether Mailgun got the message is
		// unknown, which the outbox reconciles on its next run.
		return fmt.Errorf("call mailgun: %w", context.Cause(ctx))
	}
	var netErr net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()) {
		return &refmail.ProviderError{Reason: fmt.Sprintf("no answer within %s", s.timeout), Temporary: true, MaybeSent: true, Err: err}
	}
	if errors.As(err, &netErr) {
		return &refmail.ProviderError{Reason: err.Error(), Temporary: true, MaybeSent: true, Err: err}
	}
	// Anything else (a response that is not JSON, a message mailgun-go
	// refuses to build) will fail the same way again.
	return &refmail.ProviderError{Reason: err.Error(), Err: err}
}

// reason extracts Mailgun's {"message": "..."} explanation, else the body.
func reason(body []byte, status int) string {
	var payload struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &payload) == nil && payload.Message != "" {
		return payload.Message
	}
	text := strings.TrimSpace(string(body))
	if text == "" {
		return http.StatusText(status)
	}
	const maxReason = 300
	if len(text) > maxReason {
		text = text[:maxReason] + "…"
	}
	return text
}

func trimAngles(id string) string {
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(id), "<"), ">")
}

// responseMetaKey keys the per-call responseMeta in the request context.
type responseMetaKey struct{}

// responseMeta collects what mailgun-go does not expose from the response:
// its Retry-After header.
type responseMeta struct {
	header string
	at     time.Time
}

func (m *responseMeta) retryAfter() time.Duration {
	return parseRetryAfter(m.header, m.at)
}

// retryAfterTransport records the Retry-After header of each response in the
// call's responseMeta, since mailgun-go's errors carry only status and body.
type retryAfterTransport struct {
	base  http.RoundTripper
	clock clock.Clock
}

// RoundTrip forwards req and notes the response's Retry-After.
func (t *retryAfterTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err == nil {
		if meta, ok := req.Context().Value(responseMetaKey{}).(*responseMeta); ok {
			meta.header = resp.Header.Get("Retry-After")
			meta.at = t.clock.Now()
			if date, derr := http.ParseTime(resp.Header.Get("Date")); derr == nil {
				meta.at = date
			}
		}
	}
	return resp, err
}

// parseRetryAfter reads delay-seconds or an HTTP date (RFC 9110 10.2.3)
// relative to now; anything else is 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(refmail.MaxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
