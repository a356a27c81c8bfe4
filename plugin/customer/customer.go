// Package customer owns the customer model: profile, consent, free
// attributes and preferences, tags, the rollups other packages keep up to
// date, and the append-only customer event log. It matches people by the
// store's own customer id first and by normalised email otherwise.
//
// It must not import plugin/commerce, plugin/storefront or a storefront
// adapter, graph, net/http or the assembly: the packages that feed customers
// (commerce, csvimport, graph) call it, never the other way round.
package customer

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/uptrace/bun"
	"golang.org/x/net/idna"
)

// Source says where a customer signed up.
type Source string

// Sign-up sources. A platform name (shopify, saleor, ...) is a source too.
const (
	SourceOnline Source = "online"
	SourceStore  Source = "store"
	SourceImport Source = "import"
)

// ConsentState is the state of a customer's marketing consent.
type ConsentState string

// Consent states.
const (
	ConsentUnknown      ConsentState = "unknown"
	ConsentPending      ConsentState = "pending"
	ConsentSubscribed   ConsentState = "subscribed"
	ConsentUnsubscribed ConsentState = "unsubscribed"
	// ConsentNotSubscribed: the store says the customer never agreed.
	ConsentNotSubscribed ConsentState = "not_subscribed"
)

// Valid reports whether s is a known consent state.
func (s ConsentState) Valid() bool {
	switch s {
	case ConsentUnknown, ConsentPending, ConsentSubscribed, ConsentUnsubscribed, ConsentNotSubscribed:
		return true
	}
	return false
}

// Customer is one person known to Refrain.
type Customer struct {
	bun.BaseModel `bun:"table:customers"`

	// PK is the internal row id; it never leaves the service.
	PK int64 `bun:"id,pk,autoincrement"`
	// PublicID is Refrain's own unguessable id, used until the store's id is known.
	PublicID string `bun:"public_id,notnull"`
	// ExternalID is the id the store's own GraphQL API gives this customer.
	ExternalID *string `bun:"external_id"`
	// ExternalSource is the platform that owns ExternalID.
	ExternalSource *string `bun:"external_source"`

	Email           *string `bun:"email"`
	EmailNormalized *string `bun:"email_normalized"`
	FirstName       *string `bun:"first_name"`
	LastName        *string `bun:"last_name"`
	Locale          *string `bun:"locale"`
	TimeZone        *string `bun:"time_zone"`
	Source          Source  `bun:"source,notnull"`

	ConsentState  ConsentState   `bun:"consent_state,notnull"`
	ConsentAt     *time.Time     `bun:"consent_at"`
	ConsentSource *string        `bun:"consent_source"`
	ConsentMethod *string        `bun:"consent_method"`
	ConsentProof  map[string]any `bun:"consent_proof,notnull,type:jsonb"`

	Attributes  map[string]any `bun:"attributes,notnull,type:jsonb"`
	Preferences map[string]any `bun:"preferences,notnull,type:jsonb"`
	Tags        []string       `bun:"tags,notnull,type:jsonb"`

	OrdersCount     int        `bun:"orders_count,notnull"`
	TotalSpentMinor int64      `bun:"total_spent_minor,notnull"`
	Currency        *string    `bun:"currency"`
	FirstOrderAt    *time.Time `bun:"first_order_at"`
	LastOrderAt     *time.Time `bun:"last_order_at"`
	LastOpenAt      *time.Time `bun:"last_open_at"`
	LastClickAt     *time.Time `bun:"last_click_at"`
	LastVisitAt     *time.Time `bun:"last_visit_at"`
	// ObservedSince is when Refrain started observing the customer's
	// engagement: their first webhook, sync, subscription or import, or
	// earlier when an import brings engagement dates. Programs that delete
	// act only on customers observed for at least their inactivity window.
	// Nil: never observed.
	ObservedSince *time.Time `bun:"observed_since"`

	Stage      string     `bun:"stage,notnull"`
	StageSince *time.Time `bun:"stage_since"`

	CreatedAt time.Time `bun:"created_at,notnull"`
	UpdatedAt time.Time `bun:"updated_at,notnull"`
	// PlatformUpdatedAt is the store's updated time of the last profile applied.
	PlatformUpdatedAt *time.Time `bun:"platform_updated_at"`
}

// ID is the customer's id in the federated graph: the store's own id once
// known, Refrain's public id before that.
func (c *Customer) ID() string {
	if c.ExternalID != nil && *c.ExternalID != "" {
		return *c.ExternalID
	}
	return c.PublicID
}

// Refs lists every id this customer can be looked up by.
func (c *Customer) Refs() []string {
	var refs []string
	if c.PublicID != "" {
		refs = append(refs, c.PublicID)
	}
	if c.ExternalID != nil && *c.ExternalID != "" {
		refs = append(refs, *c.ExternalID)
	}
	return refs
}

// HasRef reports whether ref is one of this customer's ids.
func (c *Customer) HasRef(ref string) bool {
	if ref == "" {
		return false
	}
	for _, r := range c.Refs() {
		if r == ref {
			return true
		}
	}
	return false
}

// Event is one entry of a customer's append-only event log.
type Event struct {
	bun.BaseModel `bun:"table:customer_events"`

	ID             int64          `bun:"id,pk,autoincrement"`
	CustomerPK     int64          `bun:"customer_id,notnull"`
	Type           string         `bun:"type,notnull"`
	OccurredAt     time.Time      `bun:"occurred_at,notnull"`
	Properties     map[string]any `bun:"properties,notnull,type:jsonb"`
	Source         string         `bun:"source,notnull"`
	IdempotencyKey *string        `bun:"idempotency_key"`
	CreatedAt      time.Time      `bun:"created_at,notnull"`
}

// ErrInvalidEmail is returned for an address that cannot be an email address.
var ErrInvalidEmail = errors.New("invalid email address")

// NormalizeEmail returns the form of an address used for matching: trimmed,
// the domain converted to ASCII (IDNA) and the whole address lower-cased.
// Refrain does not strip dots or +tags: providers differ on what they mean.
func NormalizeEmail(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidEmail)
	}
	if !utf8.ValidString(s) || len(s) > 254 {
		return "", fmt.Errorf("%w: %q", ErrInvalidEmail, raw)
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return "", fmt.Errorf("%w: %q has no local part or domain", ErrInvalidEmail, raw)
	}
	local, domain := s[:at], s[at+1:]
	if strings.ContainsAny(local, " \t\r\n<>()[],;:\\\"@") || len(local) > 64 {
		return "", fmt.Errorf("%w: %q has a bad local part", ErrInvalidEmail, raw)
	}
	ascii, err := idna.Lookup.ToASCII(strings.TrimSuffix(domain, "."))
	if err != nil || !strings.Contains(ascii, ".") || strings.HasPrefix(ascii, ".") || strings.Contains(ascii, "..") {
		return "", fmt.Errorf("%w: %q has a bad domain", ErrInvalidEmail, raw)
	}
	return strings.ToLower(local + "@" + ascii), nil
}

// IsEntity marks Customer as a federation entity for the GraphQL layer,
// which binds this type directly (no mapping layer).
func (Customer) IsEntity() {}

// Unknown returns the customer a store id names when Refrain holds nothing
// about it yet: no row, an empty profile and lifecycle.
func Unknown(externalID string) *Customer {
	id := externalID
	return &Customer{ExternalID: &id, Source: SourceOnline, ConsentState: ConsentUnknown, Stage: "SUBSCRIBER",
		ConsentProof: map[string]any{}, Attributes: map[string]any{}, Preferences: map[string]any{}, Tags: []string{}}
}

// ValidateTimeZone checks an IANA time zone name such as Europe/Paris.
func ValidateTimeZone(name string) error {
	if name == "" || name == "Local" {
		return fmt.Errorf("time zone %q: give an IANA name such as Europe/Paris", name)
	}
	if _, err := time.LoadLocation(name); err != nil {
		return fmt.Errorf("unknown time zone %q: give an IANA name such as Europe/Paris", name)
	}
	return nil
}
