// Package consent runs marketing consent: the public subscription with
// double opt-in (or single opt-in when configured), its confirmation, the
// one-click unsubscribe and preference links, and every consent change with
// its proof as a customer event. Links carry tokens signed by package link;
// subscription requests are rate limited per IP address and per address.
package consent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/mail"
	"github.com/refrain-dev/refrain/plugin/mail/link"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
	"github.com/refrain-dev/refrain/plugin/ptr"
)

// Customer event types written by this package.
const (
	// EventConsentChanged records every consent change: from, to, source,
	// method and proof.
	EventConsentChanged = "consent.changed"
	// EventSubscribed records a confirmed subscription (the welcome
	// program starts on it).
	EventSubscribed = "newsletter.subscribed"
	// EventUnsubscribed records an unsubscription, whichever way it came.
	EventUnsubscribed = "email.unsubscribed"
	// EventPreferencesUpdated records a preference change.
	EventPreferencesUpdated = "preferences.updated"
	// EventKept records that the customer asked to stay subscribed (the
	// keep link of a sunset mail); sunset exits on it.
	EventKept = "subscription.kept"
)

// ConfirmTemplate is the transactional template of the confirmation mail;
// it reads the value confirm_url.
const ConfirmTemplate = "subscription-confirm"

// DefaultConfirmTTL is how long a confirmation link works.
const DefaultConfirmTTL = 7 * 24 * time.Hour

// ErrRateLimited is returned when a subscription request exceeds the limit
// for its IP address or its email address.
var ErrRateLimited = errors.New("too many subscription requests; try again later")

// InputError is a subscription input that cannot be accepted; Field names it.
type InputError struct {
	Field, Message string
}

// Error returns the message.
func (e *InputError) Error() string { return e.Message }

// AddressCheck vets an address before a subscription is accepted; an error
// refuses it and its message is shown to the subscriber. It is the hook list
// hygiene (disposable domains, typos, role addresses) plugs into.
type AddressCheck func(ctx context.Context, normalized string) error

// Options configure a Service.
type Options struct {
	// Outbox enqueues the confirmation mail and builds links. Required.
	Outbox *outbox.Service
	// Signer signs and verifies link tokens. Required.
	Signer *link.Signer
	Clock  clock.Clock
	Logger *slog.Logger
	// DoubleOptIn sends a confirmation mail and leaves consent pending
	// until it is confirmed; false subscribes at once.
	DoubleOptIn bool
	// RateLimit is how many subscription requests one IP address, and one
	// email address, may make per hour. 0 means no limit.
	RateLimit int
	// ConfirmTTL is how long confirmation links work. Default DefaultConfirmTTL.
	ConfirmTTL time.Duration
	// CheckAddress, when set, vets addresses (see AddressCheck).
	CheckAddress AddressCheck
}

// Service runs consent.
type Service struct {
	o Options
}

// New returns a Service.
func New(o Options) (*Service, error) {
	if o.Outbox == nil || o.Signer == nil {
		return nil, errors.New("consent: Outbox and Signer are required")
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ConfirmTTL <= 0 {
		o.ConfirmTTL = DefaultConfirmTTL
	}
	return &Service{o: o}, nil
}

// Request describes who made a request, for rate limits and proof.
type Request struct {
	IP        string
	UserAgent string
}

type requestKey struct{}

// WithRequest returns ctx carrying req, so that code behind an HTTP edge
// that does not see the request (GraphQL resolvers) knows who asked.
func WithRequest(ctx context.Context, req Request) context.Context {
	return context.WithValue(ctx, requestKey{}, req)
}

// RequestFrom returns the Request WithRequest stored, if any.
func RequestFrom(ctx context.Context) (Request, bool) {
	req, ok := ctx.Value(requestKey{}).(Request)
	return req, ok
}

// SubscribeInput is a subscription request from a public form.
type SubscribeInput struct {
	Email     string
	FirstName string
	// Source names the form or place ("footer", "checkout").
	Source string
	Locale string
	// ConsentText is the text shown to the subscriber, kept as proof.
	ConsentText string
	// Ref is a free reference (a campaign, a referrer).
	Ref string
}

// SubscribeResult says what happened.
type SubscribeResult struct {
	Customer *customer.Customer
	// State is the consent state after the request: pending under double
	// opt-in, subscribed under single opt-in.
	State customer.ConsentState
	// Confirmation is the confirmation mail, when one was enqueued.
	Confirmation *outbox.Message
	// Created is true when the address was new. The caller of Subscribe is
	// anonymous, so anything it would attach to a customer (a referral)
	// applies only then.
	Created bool
}

// Subscribe records a subscription request with its proof and, under
// double opt-in, sets consent pending and enqueues the confirmation mail
// with a signed, expiring link; under single opt-in it subscribes at once.
// A customer already subscribed is left as is (and gets no mail), but the
// answer is the same, so the form does not reveal who is subscribed. The
// caller is anonymous: a known address keeps its profile (name, locale),
// and only the consent that double opt-in records changes.
func (s *Service) Subscribe(ctx context.Context, db *bun.DB, req Request, in SubscribeInput) (SubscribeResult, error) {
	now := s.o.Clock.Now()
	norm, err := customer.NormalizeEmail(in.Email)
	if err != nil {
		return SubscribeResult{}, &InputError{Field: "email", Message: "this is not a valid email address"}
	}
	if s.o.CheckAddress != nil {
		if err := s.o.CheckAddress(ctx, norm); err != nil {
			return SubscribeResult{}, &InputError{Field: "email", Message: err.Error()}
		}
	}
	if in.Locale != "" {
		if err := validLocale(in.Locale); err != nil {
			return SubscribeResult{}, &InputError{Field: "locale", Message: err.Error()}
		}
	}
	var res SubscribeResult
	err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if s.o.RateLimit > 0 {
			for _, key := range []string{"subscribe:ip:" + hash(req.IP), "subscribe:email:" + hash(norm)} {
				ok, err := Allow(ctx, tx, now, key, s.o.RateLimit, time.Hour)
				if err != nil {
					return err
				}
				if !ok {
					return ErrRateLimited
				}
			}
		}
		c, err := customer.GetByEmail(ctx, tx, norm)
		switch {
		case errors.Is(err, customer.ErrNotFound):
			prof := customer.Profile{Email: &norm, Source: customer.SourceOnline}
			if in.FirstName != "" {
				prof.FirstName = &in.FirstName
			}
			if in.Locale != "" {
				prof.Locale = &in.Locale
			}
			c, res.Created, err = customer.Upsert(ctx, tx, now, prof)
			if err != nil {
				return err
			}
		case err != nil:
			return err
		}
		res.Customer = c
		locale := in.Locale
		if !res.Created && c.Locale != nil {
			locale = *c.Locale
		}
		if c.ConsentState == customer.ConsentSubscribed {
			res.State = customer.ConsentPending
			if !s.o.DoubleOptIn {
				res.State = customer.ConsentSubscribed
			}
			return nil
		}
		method := "double_opt_in"
		if !s.o.DoubleOptIn {
			method = "single_opt_in"
		}
		proof := map[string]any{"requested_at": now.Format(time.RFC3339Nano), "source": in.Source, "ip": req.IP,
			"user_agent": req.UserAgent, "consent_text": in.ConsentText, "ref": in.Ref, "locale": in.Locale,
			"email": norm, "method": method}
		if !s.o.DoubleOptIn {
			res.State = customer.ConsentSubscribed
			if _, err := s.Change(ctx, tx, c, customer.Consent{State: customer.ConsentSubscribed, At: now,
				Source: in.Source, Method: method, Proof: proof}); err != nil {
				return err
			}
			return s.subscribed(ctx, tx, c, now, in.Source)
		}
		res.State = customer.ConsentPending
		if _, err := s.Change(ctx, tx, c, customer.Consent{State: customer.ConsentPending, At: now,
			Source: in.Source, Method: method, Proof: proof}); err != nil {
			return err
		}
		token := s.o.Signer.Sign(link.Confirm, c.PublicID, norm, now.Add(s.o.ConfirmTTL))
		// One confirmation per customer per ten minutes, however often the
		// form is posted.
		key := "subscription-confirm:" + strconv.FormatInt(c.PK, 10) + ":" + strconv.FormatInt(now.Unix()/600, 10)
		m, _, err := s.o.Outbox.Enqueue(ctx, tx, outbox.EnqueueInput{CustomerPK: c.PK, Template: ConfirmTemplate,
			Kind: mail.KindTransactional, Locale: locale, Values: map[string]string{"confirm_url": s.o.Outbox.LinkURL(token)},
			Program: "subscription", Step: "confirm", IdempotencyKey: key})
		if err != nil {
			return err
		}
		res.Confirmation = m
		return nil
	})
	if err != nil {
		return SubscribeResult{}, fmt.Errorf("subscribe: %w", err)
	}
	return res, nil
}

// Confirm completes a double opt-in subscription with the token of its
// confirmation link: consent becomes subscribed, with the original request
// and the confirmation as proof, and newsletter.subscribed is appended.
// Confirming twice is harmless. A bad or expired token wraps link.ErrInvalid.
func (s *Service) Confirm(ctx context.Context, db *bun.DB, req Request, token string) (*customer.Customer, error) {
	now := s.o.Clock.Now()
	var out *customer.Customer
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		c, err := s.CustomerFor(ctx, tx, token, link.Confirm)
		if err != nil {
			return err
		}
		out = c
		if c.ConsentState == customer.ConsentSubscribed {
			return nil
		}
		proof := map[string]any{}
		for k, v := range c.ConsentProof {
			proof[k] = v
		}
		proof["confirmed_at"] = now.Format(time.RFC3339Nano)
		proof["confirm_ip"] = req.IP
		proof["confirm_user_agent"] = req.UserAgent
		source := strings.TrimSpace(ptr.Deref(c.ConsentSource))
		changed, err := s.Change(ctx, tx, c, customer.Consent{State: customer.ConsentSubscribed, At: now,
			Source: source, Method: "double_opt_in", Proof: proof})
		if err != nil || !changed {
			return err
		}
		return s.subscribed(ctx, tx, c, now, source)
	})
	if err != nil {
		return nil, fmt.Errorf("confirm subscription: %w", err)
	}
	return out, nil
}

func (s *Service) subscribed(ctx context.Context, db bun.IDB, c *customer.Customer, now time.Time, source string) error {
	// A re-subscription lifts an earlier unsubscribe suppression; bounces
	// and complaints stay.
	if _, err := db.NewDelete().Model((*outbox.Suppression)(nil)).
		Where("address_hash = ? AND reason = ?", outbox.AddressHash(ptr.Deref(c.Email)), outbox.ReasonUnsubscribe).Exec(ctx); err != nil {
		return fmt.Errorf("lift unsubscribe suppression: %w", err)
	}
	_, _, err := customer.AppendEvent(ctx, db, now, c.PK, customer.EventInput{Type: EventSubscribed, OccurredAt: now,
		Source: "consent", Properties: map[string]any{"source": source}})
	return err
}

// Unsubscribe withdraws marketing consent with the token of an unsubscribe
// link: consent becomes unsubscribed (method says how: one_click, link,
// preferences), the address is suppressed for marketing, and
// consent.changed and email.unsubscribed are appended. Unsubscribing twice
// is harmless.
func (s *Service) Unsubscribe(ctx context.Context, db *bun.DB, req Request, token, method string) (*customer.Customer, error) {
	now := s.o.Clock.Now()
	var out *customer.Customer
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		c, err := s.CustomerFor(ctx, tx, token, link.Unsubscribe)
		if err != nil {
			return err
		}
		out = c
		changed, err := Withdraw(ctx, tx, c, now, "link", method, map[string]any{"ip": req.IP, "user_agent": req.UserAgent})
		if err != nil || !changed {
			return err
		}
		_, _, err = customer.AppendEvent(ctx, tx, now, c.PK, customer.EventInput{Type: EventUnsubscribed, OccurredAt: now,
			Source: "link", Properties: map[string]any{"method": method, "source": "link"}})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("unsubscribe: %w", err)
	}
	return out, nil
}

// Withdraw suppresses c's address for marketing and sets c unsubscribed
// with proof (appending consent.changed), unless c is unsubscribed
// already; it reports whether consent changed. The Mailgun event handler
// calls it for unsubscribes and complaints.
func Withdraw(ctx context.Context, db bun.IDB, c *customer.Customer, now time.Time, source, method string, proof map[string]any) (bool, error) {
	if c.Email != nil {
		if _, err := outbox.Suppress(ctx, db, now, *c.Email, outbox.ReasonUnsubscribe, source, method); err != nil {
			return false, err
		}
	}
	if c.ConsentState == customer.ConsentUnsubscribed {
		return false, nil
	}
	p := map[string]any{"at": now.Format(time.RFC3339Nano), "method": method}
	for k, v := range proof {
		p[k] = v
	}
	return Change(ctx, db, now, c, customer.Consent{State: customer.ConsentUnsubscribed, At: now,
		Source: source, Method: method, Proof: p})
}

// Change is the package-level Change with the service's clock.
func (s *Service) Change(ctx context.Context, db bun.IDB, c *customer.Customer, to customer.Consent) (bool, error) {
	return Change(ctx, db, s.o.Clock.Now(), c, to)
}

// Change sets c's consent to to and appends consent.changed with from, to,
// source, method and proof. It changes nothing, and reports false, when
// another writer changed the consent since c was loaded.
func Change(ctx context.Context, db bun.IDB, now time.Time, c *customer.Customer, to customer.Consent) (bool, error) {
	from := c.ConsentState
	proof := to.Proof
	if proof == nil {
		proof = map[string]any{}
	}
	at := to.At.UTC()
	next := *c
	next.ConsentState, next.ConsentAt, next.ConsentSource, next.ConsentMethod, next.ConsentProof = to.State, &at,
		nullable(to.Source), nullable(to.Method), proof
	next.UpdatedAt = now
	res, err := db.NewUpdate().Model(&next).
		Column("consent_state", "consent_at", "consent_source", "consent_method", "consent_proof", "updated_at").
		WherePK().Where("consent_state = ?", from).Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("change consent of customer %d: %w", c.PK, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	*c = next
	if _, _, err := customer.AppendEvent(ctx, db, now, c.PK, customer.EventInput{Type: EventConsentChanged, OccurredAt: at,
		Source: "consent", Properties: map[string]any{"from": string(from), "to": string(to.State),
			"source": to.Source, "method": to.Method, "proof": proof}}); err != nil {
		return false, err
	}
	if _, err := customer.RefreshStage(ctx, db, now, c, customer.DefaultThresholds()); err != nil {
		return false, err
	}
	return true, nil
}

// CustomerFor returns the customer a link token names, after checking the
// token against their current address. Every failure wraps link.ErrInvalid.
func (s *Service) CustomerFor(ctx context.Context, db bun.IDB, token string, purpose link.Purpose) (*customer.Customer, error) {
	claims, err := link.Parse(token)
	if err != nil {
		return nil, err
	}
	c, err := customer.GetByRef(ctx, db, claims.CustomerID)
	if errors.Is(err, customer.ErrNotFound) || (err == nil && (c.PublicID != claims.CustomerID || c.EmailNormalized == nil)) {
		return nil, link.ErrInvalid
	}
	if err != nil {
		return nil, err
	}
	if _, err := s.o.Signer.Verify(token, purpose, *c.EmailNormalized, s.o.Clock.Now()); err != nil {
		return nil, err
	}
	return c, nil
}

// Keep records that the customer a keep token names asks to stay
// subscribed: a subscription.kept event, with the request as proof, on
// which the sunset program exits.
func (s *Service) Keep(ctx context.Context, db *bun.DB, req Request, token string) (*customer.Customer, error) {
	var out *customer.Customer
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		c, err := s.CustomerFor(ctx, tx, token, link.Keep)
		if err != nil {
			return err
		}
		now := s.o.Clock.Now()
		if _, _, err := customer.AppendEvent(ctx, tx, now, c.PK, customer.EventInput{Type: EventKept, OccurredAt: now,
			Source: "link", Properties: map[string]any{"ip": req.IP, "user_agent": req.UserAgent}}); err != nil {
			return fmt.Errorf("record keep request: %w", err)
		}
		out = c
		return nil
	})
	return out, err
}

// PurposeOf returns the purpose a token claims, unverified, so the link page
// knows which page to show.
func PurposeOf(token string) (link.Purpose, error) {
	c, err := link.Parse(token)
	return c.Purpose, err
}

// UpdatePreferences merges prefs into c's preferences (a nil value removes
// a key) and appends preferences.updated with the changes and their source.
func UpdatePreferences(ctx context.Context, db bun.IDB, now time.Time, c *customer.Customer, prefs map[string]any, source string) error {
	merged := map[string]any{}
	for k, v := range c.Preferences {
		merged[k] = v
	}
	for k, v := range prefs {
		if v == nil {
			delete(merged, k)
			continue
		}
		merged[k] = v
	}
	next := *c
	next.Preferences, next.UpdatedAt = merged, now
	if _, err := db.NewUpdate().Model(&next).Column("preferences", "updated_at").WherePK().Exec(ctx); err != nil {
		return fmt.Errorf("update preferences of customer %d: %w", c.PK, err)
	}
	*c = next
	_, _, err := customer.AppendEvent(ctx, db, now, c.PK, customer.EventInput{Type: EventPreferencesUpdated, OccurredAt: now,
		Source: source, Properties: map[string]any{"changes": prefs, "source": source}})
	return err
}

// Allow counts one request under key in a fixed window of length window and
// reports whether it is within limit. The counters live in the database, so
// every replica shares them.
func Allow(ctx context.Context, db bun.IDB, now time.Time, key string, limit int, window time.Duration) (bool, error) {
	start := now.UTC().Truncate(window)
	var count int
	err := db.NewRaw(`INSERT INTO rate_limits (key, window_start, count) VALUES (?, ?, 1)
ON CONFLICT (key) DO UPDATE SET
  count = CASE WHEN rate_limits.window_start = EXCLUDED.window_start THEN rate_limits.count + 1 ELSE 1 END,
  window_start = EXCLUDED.window_start
RETURNING count`, key, start).Scan(ctx, &count)
	if err != nil {
		return false, fmt.Errorf("count rate limit: %w", err)
	}
	return count <= limit, nil
}

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:12])
}

func validLocale(l string) error {
	if len(l) < 2 || len(l) > 35 {
		return fmt.Errorf("locale %q is not a language tag such as fr or fr-CA", l)
	}
	for _, r := range l {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("locale %q is not a language tag such as fr or fr-CA", l)
		}
	}
	return nil
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
