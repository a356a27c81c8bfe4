package outbox

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/mail"
	"github.com/refrain-dev/refrain/plugin/mail/link"
	"github.com/refrain-dev/refrain/plugin/mail/template"
	"github.com/refrain-dev/refrain/plugin/ptr"
)

// ErrNoAddress is returned when enqueuing mail for a customer without an address.
var ErrNoAddress = errors.New("customer has no email address")

// Config holds the sending settings of a Service. Zero values take the
// defaults given on each field.
type Config struct {
	// From is the sender ("Store <news@store.example>"). Required.
	From string
	// ReplyTo is an optional Reply-To address.
	ReplyTo string
	// ListUnsubscribeMailto is an optional mailto: unsubscribe address added
	// to List-Unsubscribe beside the https link.
	ListUnsubscribeMailto string
	// PublicURL is the base URL of this service; links in mail are
	// PublicURL + "/u/" + token. Required.
	PublicURL string
	// StoreName and StoreURL are shown by templates (.Store).
	StoreName string
	StoreURL  string
	// Tracking turns the provider's open and click tracking on. The plugin
	// sets it; the zero value leaves tracking off.
	Tracking bool
	// Lease is how long a worker holds a claimed message. Default 2 minutes,
	// well above one provider call's timeout.
	Lease time.Duration
	// Batch is how many messages one claim takes. Default 50.
	Batch int
	// Concurrency is how many claimed messages are sent at once. Default 8.
	Concurrency int
	// MaxAttempts is how many attempts a message gets before it fails for
	// good. Default 12 (about a day with the default backoff).
	MaxAttempts int
	// Poll is how long an idle worker waits before looking again. Default 1 second.
	Poll time.Duration
	// WorkerID names this replica's worker in locked_by. Default random.
	WorkerID string
	// Jitter returns a float in [0, 1) for mail.Backoff; nil is random.
	Jitter func() float64
}

// Options are a Service's dependencies.
type Options struct {
	// DB is the database the worker claims from.
	DB *bun.DB
	// Clock dates everything. Default clock.Real.
	Clock clock.Clock
	// Logger receives delivery logs. Nil discards.
	Logger *slog.Logger
	// Engine renders templates. Required.
	Engine *template.Engine
	// Signer signs unsubscribe links. Required.
	Signer *link.Signer
	// Sender delivers messages; Reconciler finds messages a crash left
	// unsure. Required.
	Sender     mail.Sender
	Reconciler mail.Reconciler
	// Provider names the sender in message rows ("mailgun", "outbox").
	Provider string
	Config   Config
	// MarketingHold, when set, returns by customer row id why marketing
	// mail may not go to each of the given customers (list hygiene: a
	// disposable address, a suspected typo). Nil holds nothing.
	MarketingHold func(ctx context.Context, db bun.IDB, customerPKs []int64) (map[int64]string, error)
	// Sends, when set, counts messages as sent in the transaction that
	// marks them sent (the engagement rollups). Nil counts nothing.
	Sends SendRecorder
}

// SendRecorder counts messages as sent. It is called inside the
// transaction that marks them sent, with at the time of the send, so the
// count moves exactly when the state does.
type SendRecorder interface {
	RecordSent(ctx context.Context, db bun.IDB, at time.Time, msgs []*Message) error
}

// Service enqueues, renders and delivers messages.
type Service struct {
	db         *bun.DB
	clock      clock.Clock
	logger     *slog.Logger
	engine     *template.Engine
	signer     *link.Signer
	sender     mail.Sender
	reconciler mail.Reconciler
	provider   string
	cfg        Config
	hold       func(ctx context.Context, db bun.IDB, customerPKs []int64) (map[int64]string, error)
	sends      SendRecorder
	// Wake, when sent to, makes an idle worker look at once.
	Wake chan struct{}
}

// New returns a Service.
func New(o Options) (*Service, error) {
	switch {
	case o.DB == nil:
		return nil, errors.New("outbox: DB is required")
	case o.Engine == nil:
		return nil, errors.New("outbox: Engine is required")
	case o.Signer == nil:
		return nil, errors.New("outbox: Signer is required")
	case o.Sender == nil || o.Reconciler == nil:
		return nil, errors.New("outbox: Sender and Reconciler are required")
	case o.Config.From == "":
		return nil, errors.New("outbox: Config.From is required")
	case o.Config.PublicURL == "":
		return nil, errors.New("outbox: Config.PublicURL is required")
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c := &o.Config
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.Lease <= 0 {
		c.Lease = 2 * time.Minute
	}
	if c.Batch <= 0 {
		c.Batch = 50
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 8
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 12
	}
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
	if c.WorkerID == "" {
		c.WorkerID = "mail-" + randomID(8)
	}
	if o.Provider == "" {
		o.Provider = "outbox"
	}
	return &Service{db: o.DB, clock: o.Clock, logger: o.Logger, engine: o.Engine, signer: o.Signer,
		sender: o.Sender, reconciler: o.Reconciler, provider: o.Provider, cfg: o.Config,
		hold: o.MarketingHold, sends: o.Sends, Wake: make(chan struct{}, 1)}, nil
}

// Engine returns the template engine.
func (s *Service) Engine() *template.Engine { return s.engine }

// Provider names the configured sender.
func (s *Service) Provider() string { return s.provider }

// Sender returns the configured sender.
func (s *Service) Sender() mail.Sender { return s.sender }

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return idEncoding.EncodeToString(b)
}

// NewMessageID returns a fresh public message id: "msg_" and 128 bits,
// the time in milliseconds (48 bits) then 80 random bits. Ids made close
// in time share their first characters, so a batch of rows lands on a few
// pages of the unique index on public_id instead of one page each.
func NewMessageID() string {
	b := make([]byte, 16)
	ms := uint64(time.Now().UnixMilli())
	for i := range 6 {
		b[i] = byte(ms >> (40 - 8*i))
	}
	_, _ = rand.Read(b[6:])
	return "msg_" + idEncoding.EncodeToString(b)
}

// EnqueueInput is one message to write.
type EnqueueInput struct {
	// CustomerPK is the recipient customer's row id. Required.
	CustomerPK int64
	// Template is the template name. Required.
	Template string
	// ProviderTemplate, when set, sends the template of that name stored at
	// the provider (a Mailgun template) with Values as its variables,
	// instead of rendering Template.
	ProviderTemplate string
	// Kind is marketing or transactional. Required.
	Kind mail.Kind
	// Values are the step's values (Data.Values).
	Values map[string]string
	// Cart and Order, when set, are shown by cart and order templates.
	Cart  *template.Cart
	Order *template.Order
	// Locale overrides the customer's locale.
	Locale string
	// Program, Scenario, Step, Variant and Campaign say what sends it; they
	// become the provider tags and user variables.
	Program, Scenario, Step, Variant, Campaign string
	// IdempotencyKey is unique per message: enqueuing the same key again
	// returns the first row and writes nothing. Required.
	IdempotencyKey string
	// SendAt is the earliest send time; zero means now.
	SendAt time.Time
}

// Enqueue renders a message for the customer and writes it as a queued row
// in db, which may be the caller's transaction: the message exists exactly
// when the caller's change commits. A second call with the same
// idempotency key returns the first row and false.
func (s *Service) Enqueue(ctx context.Context, db bun.IDB, in EnqueueInput) (*Message, bool, error) {
	if in.IdempotencyKey == "" {
		return nil, false, errors.New("enqueue message: IdempotencyKey is required")
	}
	if !in.Kind.Valid() {
		return nil, false, fmt.Errorf("enqueue message: kind %q is not marketing or transactional", in.Kind)
	}
	if m, err := byKey(ctx, db, in.IdempotencyKey); err == nil {
		return m, false, nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return nil, false, err
	}
	c, err := customer.Get(ctx, db, in.CustomerPK)
	if err != nil {
		return nil, false, fmt.Errorf("enqueue message: %w", err)
	}
	m, err := s.build(c, in)
	if err != nil {
		return nil, false, fmt.Errorf("enqueue message %s for customer %d: %w", in.IdempotencyKey, in.CustomerPK, err)
	}
	res, err := db.NewInsert().Model(m).On("CONFLICT (idempotency_key) DO NOTHING").Exec(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("enqueue message %s: %w", in.IdempotencyKey, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		// Another writer enqueued the same key between our check and insert.
		first, err := byKey(ctx, db, in.IdempotencyKey)
		if err != nil {
			return nil, false, err
		}
		return first, false, nil
	}
	select {
	case s.Wake <- struct{}{}:
	default:
	}
	return m, true, nil
}

func byKey(ctx context.Context, db bun.IDB, key string) (*Message, error) {
	m := new(Message)
	err := db.NewSelect().Model(m).Where("idempotency_key = ?", key).Scan(ctx)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("load message by key: %w", err)
	}
	if err == nil {
		if err := fillBodies(ctx, db, m); err != nil {
			return nil, err
		}
	}
	return m, err
}

// build renders in for c into an unsaved queued row.
func (s *Service) build(c *customer.Customer, in EnqueueInput) (*Message, error) {
	if c.Email == nil || c.EmailNormalized == nil {
		return nil, ErrNoAddress
	}
	now := s.clock.Now()
	m := &Message{ID: NewMessageID(), IdempotencyKey: in.IdempotencyKey, CustomerPK: &c.PK,
		Recipient: *c.Email, Template: in.Template, Kind: in.Kind, State: StateQueued,
		Program: strp(in.Program), Scenario: strp(in.Scenario), Step: strp(in.Step), Variant: strp(in.Variant),
		Campaign: strp(in.Campaign), Values: map[string]any{}, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now}
	if !in.SendAt.IsZero() && in.SendAt.After(now) {
		m.NextAttemptAt = in.SendAt.UTC()
	}
	for k, v := range in.Values {
		m.Values[k] = v
	}
	if name := fullName(c); name != "" {
		m.RecipientName = &name
	}
	if in.Kind == mail.KindMarketing {
		u := s.UnsubscribeURL(c)
		m.UnsubscribeURL = &u
	}
	if in.ProviderTemplate != "" {
		m.ProviderTemplate = &in.ProviderTemplate
		if m.Template == "" {
			m.Template = in.ProviderTemplate
		}
		return m, nil
	}
	if in.Template == "" {
		return nil, errors.New("template is required")
	}
	r, err := s.engine.Render(in.Template, localeOf(c, in.Locale), s.data(c, in, ptr.Deref(m.UnsubscribeURL)))
	if err != nil {
		return nil, err
	}
	m.Subject, m.HTML, m.Text, m.Locale = r.Subject, r.HTML, r.Text, strp(r.Locale)
	return m, nil
}

// Preview renders template name for the customer as Enqueue would, without
// writing anything.
func (s *Service) Preview(ctx context.Context, db bun.IDB, customerPK int64, name, locale string, kind mail.Kind, values map[string]string) (template.Rendered, error) {
	c, err := customer.Get(ctx, db, customerPK)
	if err != nil {
		return template.Rendered{}, err
	}
	in := EnqueueInput{Template: name, Kind: kind, Values: values, Locale: locale}
	unsub := ""
	if kind == mail.KindMarketing && c.EmailNormalized != nil {
		unsub = s.UnsubscribeURL(c)
	}
	return s.engine.Render(name, localeOf(c, locale), s.data(c, in, unsub))
}

func localeOf(c *customer.Customer, override string) string {
	if override != "" {
		return override
	}
	return ptr.Deref(c.Locale)
}

func fullName(c *customer.Customer) string {
	return strings.TrimSpace(ptr.Deref(c.FirstName) + " " + ptr.Deref(c.LastName))
}

// UnsubscribeURL is the customer's one-click unsubscribe and preferences
// link, bound to their current address.
func (s *Service) UnsubscribeURL(c *customer.Customer) string {
	return s.cfg.PublicURL + "/u/" + s.signer.Sign(link.Unsubscribe, c.PublicID, ptr.Deref(c.EmailNormalized), time.Time{})
}

// LinkURL is the page link for a token.
func (s *Service) LinkURL(token string) string { return s.cfg.PublicURL + "/u/" + token }

// data is what the templates see for c.
func (s *Service) data(c *customer.Customer, in EnqueueInput, unsubscribeURL string) template.Data {
	d := template.Data{
		Customer: template.Customer{ID: c.ID(), Email: ptr.Deref(c.Email), FirstName: ptr.Deref(c.FirstName),
			LastName: ptr.Deref(c.LastName), Locale: ptr.Deref(c.Locale), Attributes: c.Attributes, Preferences: c.Preferences},
		Lifecycle: template.Lifecycle{Stage: c.Stage, OrdersCount: c.OrdersCount,
			TotalSpent: template.Money(c.TotalSpentMinor, ptr.Deref(c.Currency))},
		Values:         map[string]string{},
		Store:          template.Store{Name: s.cfg.StoreName, URL: s.storeURL()},
		UnsubscribeURL: unsubscribeURL,
		PreferencesURL: unsubscribeURL,
	}
	if d.Customer.Attributes == nil {
		d.Customer.Attributes = map[string]any{}
	}
	if d.Customer.Preferences == nil {
		d.Customer.Preferences = map[string]any{}
	}
	for k, v := range in.Values {
		d.Values[k] = v
	}
	if in.Cart != nil {
		d.Cart = *in.Cart
	}
	if in.Order != nil {
		d.Order = *in.Order
	}
	return d
}

func (s *Service) storeURL() string {
	if s.cfg.StoreURL != "" {
		return s.cfg.StoreURL
	}
	return s.cfg.PublicURL
}

// tagsOf are the provider tags of m: the program (or campaign) and the step.
func tagsOf(m *Message) []string {
	var tags []string
	for _, t := range []string{ptr.Deref(m.Program), ptr.Deref(m.Campaign), ptr.Deref(m.Step)} {
		if t != "" && len(tags) < mail.MaxTags && !contains(tags, t) {
			tags = append(tags, t)
		}
	}
	return tags
}

// varsOf are the user variables of m besides message_id.
func varsOf(m *Message) map[string]string {
	vars := map[string]string{}
	program := ptr.Deref(m.Program)
	if program == "" {
		program = ptr.Deref(m.Campaign)
	}
	for k, v := range map[string]string{mail.VarProgram: program, mail.VarStep: ptr.Deref(m.Step), mail.VarVariant: ptr.Deref(m.Variant)} {
		if v != "" {
			vars[k] = v
		}
	}
	return vars
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// recordSent hands msgs, just marked sent in db, to the SendRecorder.
func (s *Service) recordSent(ctx context.Context, db bun.IDB, at time.Time, msgs []*Message) error {
	if s.sends == nil {
		return nil
	}
	return s.sends.RecordSent(ctx, db, at, msgs)
}
