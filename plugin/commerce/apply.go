package commerce

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/uptrace/bun"
)

// Customer event types recorded by commerce processing.
const (
	EventOrderCreated   = "order.created"
	EventOrderPaid      = "order.paid"
	EventOrderFulfilled = "order.fulfilled"
	EventOrderRefunded  = "order.refunded"
	EventOrderCancelled = "order.cancelled"
	EventCartUpdated    = "cart.updated"
	EventCartAbandoned  = "cart.abandoned"
	EventCartConverted  = "cart.converted"
	EventCustomerCreate = "customer.created"
	EventCustomerUpdate = "customer.updated"
	EventCustomerErased = "customer.erased"
	EventDataRequested  = "privacy.data_requested"
	EventConsentChanged = "consent.changed"
	// EventNewsletterSubscribed is also recorded when a storefront consent
	// change makes the customer subscribed, so that programs triggered by a
	// subscription (the welcome) start for a customer whose account existed
	// before they subscribed.
	EventNewsletterSubscribed = "newsletter.subscribed"
)

// Processor applies normalised events to the database.
type Processor struct {
	opts   Options
	logger *slog.Logger
}

// NewProcessor returns a processor with opts (zero fields take defaults).
func NewProcessor(opts Options, logger *slog.Logger) *Processor {
	return &Processor{opts: opts.withDefaults(), logger: logger}
}

// Options returns the processor's effective options.
func (p *Processor) Options() Options { return p.opts }

// Apply applies one event. now is when the delivery was received; it stands
// in for the event time when the payload carries none. Apply is idempotent:
// applying the same event twice has the effect of applying it once.
func (p *Processor) Apply(ctx context.Context, db bun.IDB, now time.Time, ev event.Event) error {
	if ev.Thin {
		return p.applyThin(ctx, db, now, ev)
	}
	switch ev.Kind {
	case event.KindCustomerCreated, event.KindCustomerUpdated:
		return p.applyCustomer(ctx, db, now, ev)
	case event.KindConsentUpdated, event.KindNewsletterSubscribed, event.KindNewsletterUnsubscribed:
		return p.applyConsent(ctx, db, now, ev)
	case event.KindCustomerDeleted, event.KindCustomerRedacted:
		return p.applyErasure(ctx, db, now, ev)
	case event.KindCustomerDataRequest:
		c, err := p.findCustomer(ctx, db, ev)
		if err != nil || c == nil {
			return err
		}
		_, _, err = customer.AppendEvent(ctx, db, now, c.PK, customer.EventInput{Type: EventDataRequested,
			OccurredAt: eventTime(ev, now), Source: string(ev.Source), Properties: map[string]any{"topic": ev.Topic}})
		return err
	case event.KindOrderCreated, event.KindOrderPaid, event.KindOrderFulfilled,
		event.KindOrderRefunded, event.KindOrderCancelled:
		return p.applyOrder(ctx, db, now, ev)
	case event.KindCartUpdated, event.KindCartAbandoned, event.KindCartConverted:
		return p.applyCart(ctx, db, now, ev)
	}
	return fmt.Errorf("%w: %s", ErrUnhandled, ev.Kind)
}

// ErrThin is returned for a thin event whose reference names nothing
// Refrain can record (no resource id).
var ErrThin = errors.New("thin event: no resource id to record")

// applyThin records a thin event (ids only, not completed from the store's
// API) with what it carries: the order, cart or customer by its platform
// id, with no amounts and no buyer, so that a later full payload fills it in.
func (p *Processor) applyThin(ctx context.Context, db bun.IDB, now time.Time, ev event.Event) error {
	ref := ev.Ref
	if ref == nil || ref.ID == "" {
		return ErrThin
	}
	full := ev
	full.Thin = false
	switch ref.Type {
	case event.ResourceOrder:
		full.Order = &event.Order{ID: ref.ID}
		return p.applyOrder(ctx, db, now, full)
	case event.ResourceCart:
		full.Cart = &event.Cart{Token: ref.ID, OrderID: ref.OrderID}
		return p.applyCart(ctx, db, now, full)
	case event.ResourceCustomer:
		full.Customer = &event.Customer{ID: ref.ID}
		return p.Apply(ctx, db, now, full)
	}
	return ErrThin
}

// ErrUnhandled is returned for an event kind commerce does not act on.
var ErrUnhandled = errors.New("unhandled event kind")

func eventTime(ev event.Event, now time.Time) time.Time {
	if ev.OccurredAt.IsZero() {
		return now
	}
	return ev.OccurredAt.UTC()
}

func consentOf(c *event.Consent, source string, at time.Time) *customer.Consent {
	if c == nil {
		return nil
	}
	var state customer.ConsentState
	switch c.State {
	case event.ConsentSubscribed:
		state = customer.ConsentSubscribed
	case event.ConsentPending:
		state = customer.ConsentPending
	case event.ConsentNotSubscribed:
		state = customer.ConsentNotSubscribed
	case event.ConsentUnsubscribed:
		state = customer.ConsentUnsubscribed
	default:
		return nil
	}
	when := c.UpdatedAt
	if when.IsZero() {
		when = at
	}
	proof := map[string]any{"platform_state": c.PlatformState}
	if c.OptInLevel != "" {
		proof["opt_in_level"] = c.OptInLevel
	}
	return &customer.Consent{State: state, At: when, Source: source, Method: "webhook", Proof: proof}
}

// profileOf turns a webhook customer into a customer profile; fallbackEmail
// is used for guests known only by an order or cart contact address.
func profileOf(source string, c *event.Customer, fallbackEmail string) (customer.Profile, bool) {
	var p customer.Profile
	email := fallbackEmail
	if c != nil {
		if c.ID != "" {
			id, src := c.ID, source
			p.ExternalID, p.ExternalSource = &id, &src
		}
		if c.Email != "" {
			email = c.Email
		}
		p.FirstName, p.LastName, p.Locale = strp(c.FirstName), strp(c.LastName), strp(c.Locale)
		p.CreatedAt = timep(c.CreatedAt)
	}
	if strings.TrimSpace(email) != "" {
		if _, err := customer.NormalizeEmail(email); err == nil {
			p.Email = &email
		}
	}
	p.Source = customer.Source(source)
	return p, p.ExternalID != nil || p.Email != nil
}

// resolve finds or creates the customer an event names: by the store's id
// first, by normalised email only for a guest.
func (p *Processor) resolve(ctx context.Context, db bun.IDB, now time.Time, source string, c *event.Customer, fallbackEmail string) (*customer.Customer, error) {
	prof, ok := profileOf(source, c, fallbackEmail)
	if !ok {
		return nil, nil
	}
	if prof.ExternalID != nil && prof.Email != nil {
		// On an order or cart the buyer is identified by id; their account
		// address is theirs, but the contact address of this order is not
		// necessarily (fallbackEmail is only for guests).
		if c == nil || c.Email == "" {
			prof.Email = nil
		}
	}
	cust, _, err := customer.Upsert(ctx, db, now, prof)
	if err != nil {
		return nil, fmt.Errorf("resolve customer: %w", err)
	}
	return cust, nil
}

func (p *Processor) findCustomer(ctx context.Context, db bun.IDB, ev event.Event) (*customer.Customer, error) {
	if ev.Customer == nil {
		return nil, nil
	}
	if ev.Customer.ID != "" {
		c := new(customer.Customer)
		err := db.NewSelect().Model(c).Where("external_id = ? AND external_source = ?", ev.Customer.ID, string(ev.Source)).Scan(ctx)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("find customer: %w", err)
		}
	}
	if ev.Customer.Email != "" {
		c, err := customer.GetByEmail(ctx, db, ev.Customer.Email)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, customer.ErrNotFound) && !errors.Is(err, customer.ErrInvalidEmail) {
			return nil, err
		}
	}
	return nil, nil
}

func (p *Processor) applyCustomer(ctx context.Context, db bun.IDB, now time.Time, ev event.Event) error {
	if ev.Customer == nil {
		return &ParseGap{What: "customer event without a customer"}
	}
	at := eventTime(ev, now)
	existing, err := p.findCustomer(ctx, db, ev)
	if err != nil {
		return err
	}
	if existing != nil && !newer(ev.Customer.UpdatedAt, existing.PlatformUpdatedAt) {
		p.logger.DebugContext(ctx, "older customer payload ignored", "customer", existing.ID())
		return nil
	}
	prof, ok := profileOf(string(ev.Source), ev.Customer, "")
	if !ok {
		return &ParseGap{What: "customer with neither id nor valid email"}
	}
	prof.Consent = consentOf(ev.Customer.EmailConsent, string(ev.Source), at)
	c, created, err := customer.Upsert(ctx, db, now, prof)
	if err != nil {
		return err
	}
	if upd := timep(ev.Customer.UpdatedAt); upd != nil {
		if _, err := db.NewUpdate().Model((*customer.Customer)(nil)).Set("platform_updated_at = ?", *upd).
			Where("id = ?", c.PK).Exec(ctx); err != nil {
			return fmt.Errorf("store platform time: %w", err)
		}
	}
	typ := EventCustomerUpdate
	if created || ev.Kind == event.KindCustomerCreated {
		typ = EventCustomerCreate
	}
	key := ""
	if typ == EventCustomerCreate {
		key = fmt.Sprintf("%s:customer.created:%d", ev.Source, c.PK)
	}
	if _, _, err := customer.AppendEvent(ctx, db, now, c.PK, customer.EventInput{Type: typ, OccurredAt: at,
		Source: string(ev.Source), IdempotencyKey: key}); err != nil {
		return err
	}
	_, err = customer.RefreshStage(ctx, db, now, c, p.opts.Thresholds)
	return err
}

func (p *Processor) applyConsent(ctx context.Context, db bun.IDB, now time.Time, ev event.Event) error {
	if ev.Customer == nil {
		return &ParseGap{What: "consent event without a customer"}
	}
	at := eventTime(ev, now)
	cons := consentOf(ev.Customer.EmailConsent, string(ev.Source), at)
	switch {
	case cons != nil:
	case ev.Kind == event.KindNewsletterSubscribed:
		cons = &customer.Consent{State: customer.ConsentSubscribed, At: at, Source: string(ev.Source), Method: "webhook"}
	case ev.Kind == event.KindNewsletterUnsubscribed:
		cons = &customer.Consent{State: customer.ConsentUnsubscribed, At: at, Source: string(ev.Source), Method: "webhook"}
	default:
		return &ParseGap{What: "consent event without a consent state"}
	}
	prof, ok := profileOf(string(ev.Source), ev.Customer, "")
	if !ok {
		return &ParseGap{What: "consent event with neither customer id nor valid email"}
	}
	existing, err := p.findCustomer(ctx, db, ev)
	if err != nil {
		return err
	}
	if existing != nil && existing.ConsentAt != nil && cons.At.Before(*existing.ConsentAt) {
		return nil // an older consent change never overrides a newer one
	}
	prof.Consent = cons
	c, _, err := customer.Upsert(ctx, db, now, prof)
	if err != nil {
		return err
	}
	props := map[string]any{"state": string(cons.State), "source": cons.Source, "method": cons.Method}
	for k, v := range cons.Proof {
		props[k] = v
	}
	if _, _, err := customer.AppendEvent(ctx, db, now, c.PK, customer.EventInput{Type: EventConsentChanged, OccurredAt: at,
		Source: string(ev.Source), Properties: props}); err != nil {
		return err
	}
	if cons.State == customer.ConsentSubscribed && (existing == nil || existing.ConsentState != customer.ConsentSubscribed) {
		key := string(ev.Source) + ":subscribed:" + strconv.FormatInt(c.PK, 10) + ":" + at.UTC().Format(time.RFC3339Nano)
		if _, _, err := customer.AppendEvent(ctx, db, now, c.PK, customer.EventInput{Type: EventNewsletterSubscribed, OccurredAt: at,
			Source: string(ev.Source), Properties: props, IdempotencyKey: key}); err != nil {
			return err
		}
	}
	_, err = customer.RefreshStage(ctx, db, now, c, p.opts.Thresholds)
	return err
}

func (p *Processor) applyErasure(ctx context.Context, db bun.IDB, now time.Time, ev event.Event) error {
	c, err := p.findCustomer(ctx, db, ev)
	if err != nil || c == nil {
		return err
	}
	erase := p.opts.Erase
	if erase == nil {
		erase = Erase
	}
	return erase(ctx, db, now, c.PK, string(ev.Source)+":"+ev.Topic)
}

// Erase removes a customer's personal data everywhere commerce keeps it
// (profile, consent proof, attributes, order contact addresses, cart
// addresses and recovery links, event properties) and keeps the anonymous
// rows that counts are made of. The erasure itself is recorded.
func Erase(ctx context.Context, db bun.IDB, now time.Time, customerPK int64, reason string) error {
	_, err := db.NewUpdate().Model((*customer.Customer)(nil)).
		Set("email = NULL").Set("email_normalized = NULL").Set("first_name = NULL").Set("last_name = NULL").
		Set("external_id = NULL").Set("locale = NULL").Set("time_zone = NULL").
		Set("attributes = ?", "{}").Set("preferences = ?", "{}").Set("consent_proof = ?", "{}").Set("tags = ?", "[]").
		Set("consent_state = ?", customer.ConsentUnsubscribed).Set("consent_at = ?", now).
		Set("consent_source = ?", "erasure").Set("consent_method = ?", "erasure").
		Set("updated_at = ?", now).
		Where("id = ?", customerPK).Exec(ctx)
	if err != nil {
		return fmt.Errorf("erase customer %d: %w", customerPK, err)
	}
	if _, err := db.NewUpdate().Model((*Order)(nil)).Set("contact_email = NULL").Where("customer_id = ?", customerPK).Exec(ctx); err != nil {
		return fmt.Errorf("erase order addresses: %w", err)
	}
	if _, err := db.NewUpdate().Model((*Cart)(nil)).Set("email = NULL").Set("recovery_url = NULL").Where("customer_id = ?", customerPK).Exec(ctx); err != nil {
		return fmt.Errorf("erase cart addresses: %w", err)
	}
	if _, err := db.NewUpdate().Model((*customer.Event)(nil)).Set("properties = ?", "{}").Where("customer_id = ?", customerPK).Exec(ctx); err != nil {
		return fmt.Errorf("erase event properties: %w", err)
	}
	_, _, err = customer.AppendEvent(ctx, db, now, customerPK, customer.EventInput{Type: EventCustomerErased, OccurredAt: now,
		Source: "refrain", Properties: map[string]any{"reason": reason}})
	return err
}

// ParseGap is returned when an event lacks what its kind needs; retrying
// cannot help.
type ParseGap struct{ What string }

func (e *ParseGap) Error() string { return "incomplete event: " + e.What }
