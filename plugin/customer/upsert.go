package customer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// Profile carries what is known of a customer. Nil fields leave the stored
// value as it is; attributes and preferences are merged key by key; tags are
// added to those already held.
type Profile struct {
	ExternalID     *string
	ExternalSource *string
	Email          *string
	FirstName      *string
	LastName       *string
	Locale         *string
	TimeZone       *string
	// Source is where the customer signed up; used only when the customer is created.
	Source Source
	// CreatedAt is the store's creation time; used only when the customer is created.
	CreatedAt   *time.Time
	Attributes  map[string]any
	Preferences map[string]any
	Tags        []string
	Consent     *Consent
}

// Consent is a consent change with its proof: when, from where and how.
type Consent struct {
	State  ConsentState
	At     time.Time
	Source string
	Method string
	Proof  map[string]any
}

// ErrNoIdentity is returned by Upsert for a profile with neither a store id nor an email.
var ErrNoIdentity = errors.New("upsert customer: neither a store id nor an email address")

// Upsert finds the customer a profile describes and updates it, or creates
// it. Matching is by the store's id (external source and id) first, then by
// normalised email, and an email match is only taken for a customer the
// store has not given another id to. It reports whether a customer was created.
func Upsert(ctx context.Context, db bun.IDB, now time.Time, p Profile) (*Customer, bool, error) {
	var norm *string
	if p.Email != nil && strings.TrimSpace(*p.Email) != "" {
		n, err := NormalizeEmail(*p.Email)
		if err != nil {
			return nil, false, err
		}
		norm = &n
	}
	if p.ExternalID == nil && norm == nil {
		return nil, false, ErrNoIdentity
	}
	if p.Consent != nil && !p.Consent.State.Valid() {
		return nil, false, fmt.Errorf("upsert customer: unknown consent state %q", p.Consent.State)
	}
	for attempt := 0; ; attempt++ {
		c, emailTaken, err := match(ctx, db, p, norm)
		if err != nil {
			return nil, false, err
		}
		matchNorm := norm
		if emailTaken {
			// Another store customer holds this address: keep the address as
			// given but leave this customer out of email matching.
			matchNorm = nil
		}
		if c != nil {
			apply(c, p, matchNorm, now)
			if _, err := db.NewUpdate().Model(c).WherePK().Exec(ctx); err != nil {
				if isUniqueViolation(err) && attempt == 0 {
					continue
				}
				return nil, false, fmt.Errorf("update customer: %w", err)
			}
			return c, false, nil
		}
		c = &Customer{PublicID: NewPublicID(), Source: p.Source, ConsentState: ConsentUnknown,
			ConsentProof: map[string]any{}, Attributes: map[string]any{}, Preferences: map[string]any{},
			Tags: []string{}, Stage: "SUBSCRIBER", CreatedAt: now}
		// Refrain observes the customer from now on, whatever the store
		// says of when they signed up.
		observed := now.UTC()
		c.ObservedSince = &observed
		if c.Source == "" {
			c.Source = SourceOnline
		}
		if p.CreatedAt != nil && !p.CreatedAt.IsZero() {
			c.CreatedAt = p.CreatedAt.UTC()
		}
		apply(c, p, matchNorm, now)
		stageSince := c.CreatedAt
		c.StageSince = &stageSince
		if _, err := db.NewInsert().Model(c).Exec(ctx); err != nil {
			// Another writer created the same customer between our match and
			// our insert: match again and update theirs.
			if isUniqueViolation(err) && attempt == 0 {
				continue
			}
			return nil, false, fmt.Errorf("insert customer: %w", err)
		}
		return c, true, nil
	}
}

func match(ctx context.Context, db bun.IDB, p Profile, norm *string) (c *Customer, emailTaken bool, err error) {
	if p.ExternalID != nil {
		c := new(Customer)
		q := db.NewSelect().Model(c).Where("external_id = ?", *p.ExternalID)
		if p.ExternalSource != nil {
			q = q.Where("external_source = ?", *p.ExternalSource)
		}
		err := q.Limit(1).Scan(ctx)
		if err == nil {
			return c, false, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, false, fmt.Errorf("match customer by store id: %w", err)
		}
	}
	if norm != nil {
		c := new(Customer)
		err := db.NewSelect().Model(c).Where("email_normalized = ?", *norm).Scan(ctx)
		if err == nil {
			if p.ExternalID != nil && c.ExternalID != nil && *c.ExternalID != *p.ExternalID {
				// The address belongs to another store customer: this is a
				// different person sharing an address, not the same one.
				return nil, true, nil
			}
			return c, false, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, false, fmt.Errorf("match customer by email: %w", err)
		}
	}
	return nil, false, nil
}

func apply(c *Customer, p Profile, norm *string, now time.Time) {
	if p.ExternalID != nil {
		c.ExternalID = p.ExternalID
		c.ExternalSource = p.ExternalSource
	}
	if p.Email != nil && strings.TrimSpace(*p.Email) != "" {
		email := strings.TrimSpace(*p.Email)
		c.Email = &email
		c.EmailNormalized = norm
	}
	setIf(&c.FirstName, p.FirstName)
	setIf(&c.LastName, p.LastName)
	setIf(&c.Locale, p.Locale)
	setIf(&c.TimeZone, p.TimeZone)
	for k, v := range p.Attributes {
		c.Attributes[k] = v
	}
	for k, v := range p.Preferences {
		c.Preferences[k] = v
	}
	c.Tags = MergeTags(c.Tags, p.Tags)
	if p.Consent != nil {
		at := p.Consent.At.UTC()
		c.ConsentState = p.Consent.State
		c.ConsentAt = &at
		c.ConsentSource = strPtr(p.Consent.Source)
		c.ConsentMethod = strPtr(p.Consent.Method)
		c.ConsentProof = p.Consent.Proof
		if c.ConsentProof == nil {
			c.ConsentProof = map[string]any{}
		}
	}
	c.UpdatedAt = now
}

func setIf(dst **string, v *string) {
	if v != nil {
		s := strings.TrimSpace(*v)
		if s == "" {
			return
		}
		*dst = &s
	}
}

// strPtr returns nil for an empty string, so that an absent value leaves
// the column NULL, and a pointer to s otherwise.
func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// MergeTags returns the sorted union of two tag lists, trimmed, without blanks.
func MergeTags(a, b []string) []string {
	set := make(map[string]struct{}, len(a)+len(b))
	for _, list := range [][]string{a, b} {
		for _, t := range list {
			if t = strings.TrimSpace(t); t != "" {
				set[t] = struct{}{}
			}
		}
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

func isUniqueViolation(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "SQLSTATE=23505") || strings.Contains(msg, "UNIQUE constraint failed") ||
		strings.Contains(msg, "duplicate key value")
}

// EventInput is a new entry for a customer's event log.
type EventInput struct {
	Type       string
	OccurredAt time.Time
	Properties map[string]any
	Source     string
	// IdempotencyKey, when set, makes a second append with the same key a no-op.
	IdempotencyKey string
}

// ValidateEventType checks an event type: dotted lower-case words such as
// "order.created" or "page.viewed", at most 100 characters.
func ValidateEventType(t string) error {
	if t == "" || len(t) > 100 {
		return fmt.Errorf("event type must be 1 to 100 characters, got %d", len(t))
	}
	for i, r := range t {
		ok := (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' || (r == '.' && i > 0 && i < len(t)-1)
		if !ok {
			return fmt.Errorf("event type %q: only lower-case letters, digits, _ and inner dots are allowed", t)
		}
	}
	return nil
}

// ReservedEventFamilies are the families (the part of a type before its
// first dot) of the events Refrain itself writes: commerce, lifecycle,
// segments, mail and consent, scenarios, and the customer record. A
// customer token may not send them; an admin key with the write scope may.
func ReservedEventFamilies() []string {
	return []string{"order", "cart", "checkout", "product", "refund", "fulfillment", "lifecycle", "segment",
		"email", "newsletter", "consent", "mail", "scenario", "customer", "loyalty", "privacy"}
}

// IsReservedEventType reports whether t belongs to a ReservedEventFamilies family.
func IsReservedEventType(t string) bool {
	family, _, _ := strings.Cut(t, ".")
	return slices.Contains(ReservedEventFamilies(), family)
}

// AppendEvent adds an event to a customer's log. With an idempotency key
// already used, it adds nothing and returns the stored event and false.
func AppendEvent(ctx context.Context, db bun.IDB, now time.Time, customerPK int64, in EventInput) (*Event, bool, error) {
	if err := ValidateEventType(in.Type); err != nil {
		return nil, false, err
	}
	e := &Event{CustomerPK: customerPK, Type: in.Type, OccurredAt: in.OccurredAt.UTC(), Properties: in.Properties,
		Source: in.Source, CreatedAt: now}
	if e.Properties == nil {
		e.Properties = map[string]any{}
	}
	if e.OccurredAt.IsZero() {
		e.OccurredAt = now
	}
	if e.Source == "" {
		e.Source = "api"
	}
	if in.IdempotencyKey != "" {
		key := in.IdempotencyKey
		e.IdempotencyKey = &key
	}
	if _, inTx := db.(bun.Tx); !inTx && db.Dialect().Name() == dialect.PG {
		// The shared lock must be held until the insert commits: give the
		// single insert a transaction of its own.
		var stored *Event
		var added bool
		err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			var err error
			stored, added, err = insertEvent(ctx, tx, e, in.IdempotencyKey)
			return err
		})
		return stored, added, err
	}
	return insertEvent(ctx, db, e, in.IdempotencyKey)
}

// insertEvent writes e as a writer of the event log (see eventLogLock); with
// its idempotency key already used it returns the stored event and false.
func insertEvent(ctx context.Context, db bun.IDB, e *Event, idempotencyKey string) (*Event, bool, error) {
	if err := lockEventLogShared(ctx, db); err != nil {
		return nil, false, err
	}
	res, err := db.NewInsert().Model(e).On("CONFLICT (idempotency_key) DO NOTHING").Exec(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("append customer event: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return e, true, nil
	}
	existing := new(Event)
	if err := db.NewSelect().Model(existing).Where("idempotency_key = ?", idempotencyKey).Scan(ctx); err != nil {
		return nil, false, fmt.Errorf("load event with idempotency key: %w", err)
	}
	return existing, false, nil
}

// EventPage is one page of a customer's events, newest first.
type EventPage struct {
	Events      []*Event
	HasNextPage bool
	EndCursor   string
}

// ListEvents lists a customer's events, newest first, optionally of one type.
func ListEvents(ctx context.Context, db bun.IDB, customerPK int64, typ string, first int, after string) (EventPage, error) {
	q := db.NewSelect().Model((*Event)(nil)).Where("customer_id = ?", customerPK)
	if typ != "" {
		q = q.Where("type = ?", typ)
	}
	if after != "" {
		id, err := DecodeCursor(after)
		if err != nil {
			return EventPage{}, err
		}
		q = q.Where("id < ?", id)
	}
	var es []*Event
	if err := q.Order("id DESC").Limit(int64(first)+1).Scan(ctx, &es); err != nil {
		return EventPage{}, fmt.Errorf("list customer events: %w", err)
	}
	p := EventPage{Events: es}
	if len(es) > first {
		p.Events = es[:first]
		p.HasNextPage = true
	}
	if n := len(p.Events); n > 0 {
		p.EndCursor = EncodeCursor(p.Events[n-1].ID)
	}
	return p, nil
}
