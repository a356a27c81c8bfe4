// Package loyalty runs the loyalty and referral programs: points earned by
// paid orders at a configurable rate and reversed on refund or
// cancellation, kept in a ledger with the balance after each change; tiers
// by spend over a rolling period; a stable, unguessable referral code per
// customer, redeemed once by a new customer, whose first paid order rewards
// the referrer. State that segments filter on sits in plain customer
// columns: loyalty_points, loyalty_tier and loyalty_tier_since.
package loyalty

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/commerce"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/ptr"
)

// Customer event types the programs record.
const (
	EventPointsEarned     = "loyalty.points_earned"
	EventTierChanged      = "loyalty.tier_changed"
	EventReferralRewarded = "referral.rewarded"
	EventReferralRedeemed = "referral.redeemed"
	// EventReferralRefused: an order carried a referral code that could
	// not be used (unknown, the buyer's own, or the buyer is not new).
	EventReferralRefused = "referral.refused"
)

// Ledger entry kinds.
const (
	KindEarn     = "earn"
	KindReversal = "reversal"
	KindAdjust   = "adjust"
	KindReferral = "referral"
)

// Tier is a loyalty tier: customers whose spend over the period reaches
// MinSpendMinor (in minor units of their currency) hold it.
type Tier struct {
	Name          string
	MinSpendMinor int64
}

// Options configure the programs. Zero fields take the defaults.
type Options struct {
	// PointsPerUnit is the points earned per major currency unit paid
	// (1 EUR = 100 minor units). Default 1.
	PointsPerUnit float64
	// Tiers, from the lowest; a customer below the first holds no tier.
	// Default DefaultTiers.
	Tiers []Tier
	// TierPeriod is the rolling period spend is summed over. Default 365 days.
	TierPeriod time.Duration
	// ReferralRewardPoints are given to a referrer when the referred
	// customer's first order is paid. Default 500.
	ReferralRewardPoints int64
	// ReferralURL is the page a referral link points to; the code is added
	// as the ref parameter.
	ReferralURL string
	// Logger receives program logs. Nil discards.
	Logger *slog.Logger
}

// DefaultTiers are bronze from 100, silver from 500 and gold from 1,000
// currency units spent over the period.
var DefaultTiers = []Tier{{"bronze", 10000}, {"silver", 50000}, {"gold", 100000}}

// Service runs the programs.
type Service struct {
	o Options
}

// New returns a Service with o (zero fields take defaults).
func New(o Options) *Service {
	if o.PointsPerUnit <= 0 {
		o.PointsPerUnit = 1
	}
	if len(o.Tiers) == 0 {
		o.Tiers = DefaultTiers
	}
	if o.TierPeriod <= 0 {
		o.TierPeriod = 365 * 24 * time.Hour
	}
	if o.ReferralRewardPoints <= 0 {
		o.ReferralRewardPoints = 500
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{o: o}
}

// Options returns the effective options.
func (s *Service) Options() Options { return s.o }

// Entry is one change of a customer's points balance.
type Entry struct {
	bun.BaseModel `bun:"table:loyalty_ledger"`

	ID             int64     `bun:"id,pk,autoincrement"`
	CustomerPK     int64     `bun:"customer_id,notnull"`
	Delta          int64     `bun:"delta,notnull"`
	Balance        int64     `bun:"balance,notnull"`
	Kind           string    `bun:"kind,notnull"`
	OrderPK        *int64    `bun:"order_id"`
	Note           *string   `bun:"note"`
	IdempotencyKey *string   `bun:"idempotency_key"`
	CreatedAt      time.Time `bun:"created_at,notnull"`
}

// Account is a customer's loyalty state.
type Account struct {
	// CustomerPK is the customer the account belongs to.
	CustomerPK int64
	Points     int64
	Tier       *string
	TierSince  *time.Time
	// SpendMinor is the spend over the tier period, in minor units.
	SpendMinor int64
	// NextTier is the tier above, nil at the top.
	NextTier *NextTier
}

// NextTier is the next tier and the spend still missing to reach it.
type NextTier struct {
	Name string
	// MissingMinor is the spend still needed, in minor currency units.
	MissingMinor int64
}

// ErrInsufficientPoints refuses an adjustment that would make the balance negative.
var ErrInsufficientPoints = errors.New("not enough points")

// pointsFor is what an order earns in its current state.
func (s *Service) pointsFor(o *commerce.Order) int64 {
	if o.PaidAt == nil || o.CancelledAt != nil {
		return 0
	}
	net := o.TotalMinor - o.RefundedMinor
	if net <= 0 {
		return 0
	}
	return int64(math.Floor(float64(net) / 100 * s.o.PointsPerUnit))
}

// OnOrder brings the programs up to date with an order as just stored: the
// order's points (written as the difference with what it holds already,
// so a redelivered event writes nothing), the customer's tier, and the
// referrer's reward on a referred customer's first paid order. It has
// commerce.OrderHook's signature and runs in the order's transaction.
func (s *Service) OnOrder(ctx context.Context, db bun.IDB, now time.Time, o *commerce.Order) error {
	if o.CustomerPK == nil {
		return nil
	}
	pk := *o.CustomerPK
	if err := s.redeemFromOrder(ctx, db, now, pk, o); err != nil {
		return err
	}
	var held sql.NullInt64
	if err := db.NewSelect().Model((*Entry)(nil)).ColumnExpr("SUM(delta)").Where("order_id = ?", o.PK).
		Scan(ctx, &held); err != nil {
		return fmt.Errorf("load order points: %w", err)
	}
	target := s.pointsFor(o)
	if delta := target - held.Int64; delta != 0 {
		kind := KindEarn
		if delta < 0 {
			kind = KindReversal
		}
		key := fmt.Sprintf("order:%d:%d", o.PK, target)
		balance, err := s.write(ctx, db, now, pk, delta, kind, &o.PK, "order "+o.ExternalID, key)
		if err != nil {
			return err
		}
		if delta > 0 {
			if _, _, err := customer.AppendEvent(ctx, db, now, pk, customer.EventInput{Type: EventPointsEarned,
				OccurredAt: now, Source: "loyalty", IdempotencyKey: "loyalty.points_earned:" + key,
				Properties: map[string]any{"points": delta, "balance": balance, "order_id": o.ExternalID}}); err != nil {
				return err
			}
		}
	}
	if err := s.refreshTier(ctx, db, now, pk); err != nil {
		return err
	}
	if o.PaidAt != nil && o.CancelledAt == nil {
		return s.reward(ctx, db, now, pk, o)
	}
	return nil
}

// write adds one ledger entry and moves the balance, returning the new balance.
func (s *Service) write(ctx context.Context, db bun.IDB, now time.Time, pk, delta int64, kind string, orderPK *int64, note, key string) (int64, error) {
	var balance int64
	if err := db.NewUpdate().Table("customers").Set("loyalty_points = loyalty_points + ?", delta).
		Where("id = ?", pk).Returning("loyalty_points").Scan(ctx, &balance); err != nil {
		return 0, fmt.Errorf("update points balance: %w", err)
	}
	e := &Entry{CustomerPK: pk, Delta: delta, Balance: balance, Kind: kind, OrderPK: orderPK, CreatedAt: now}
	if note != "" {
		e.Note = &note
	}
	if key != "" {
		e.IdempotencyKey = &key
	}
	if _, err := db.NewInsert().Model(e).Exec(ctx); err != nil {
		return 0, fmt.Errorf("write points ledger: %w", err)
	}
	return balance, nil
}

// Adjust adds delta points (negative to remove) to a customer's balance by
// hand, with a note that says why.
func (s *Service) Adjust(ctx context.Context, db bun.IDB, now time.Time, customerPK, delta int64, note string) (int64, error) {
	a, err := s.Account(ctx, db, now, customerPK)
	if err != nil {
		return 0, err
	}
	if a.Points+delta < 0 {
		return 0, fmt.Errorf("%w: the balance is %d", ErrInsufficientPoints, a.Points)
	}
	return s.write(ctx, db, now, customerPK, delta, KindAdjust, nil, note, "")
}

// spend sums a customer's paid, not cancelled orders over the tier period,
// net of refunds, in minor units.
func (s *Service) spend(ctx context.Context, db bun.IDB, now time.Time, pk int64) (int64, error) {
	var total sql.NullInt64
	if err := db.NewSelect().Model((*commerce.Order)(nil)).ColumnExpr("SUM(total_minor - refunded_minor)").
		Where("customer_id = ? AND paid_at IS NOT NULL AND cancelled_at IS NULL AND paid_at >= ?", pk, now.Add(-s.o.TierPeriod)).
		Scan(ctx, &total); err != nil {
		return 0, fmt.Errorf("sum spend for tier: %w", err)
	}
	return total.Int64, nil
}

func (s *Service) tierFor(spend int64) (*Tier, *NextTier) {
	var cur *Tier
	for i := range s.o.Tiers {
		if spend >= s.o.Tiers[i].MinSpendMinor {
			cur = &s.o.Tiers[i]
			continue
		}
		return cur, &NextTier{Name: s.o.Tiers[i].Name, MissingMinor: s.o.Tiers[i].MinSpendMinor - spend}
	}
	return cur, nil
}

type loyaltyCols struct {
	Points    int64      `bun:"loyalty_points"`
	Tier      *string    `bun:"loyalty_tier"`
	TierSince *time.Time `bun:"loyalty_tier_since"`
}

func loadCols(ctx context.Context, db bun.IDB, pk int64) (loyaltyCols, error) {
	var c loyaltyCols
	err := db.NewSelect().Table("customers").Column("loyalty_points", "loyalty_tier", "loyalty_tier_since").
		Where("id = ?", pk).Scan(ctx, &c)
	if errors.Is(err, sql.ErrNoRows) {
		return c, customer.ErrNotFound
	}
	if err != nil {
		return c, fmt.Errorf("load loyalty state: %w", err)
	}
	return c, nil
}

// refreshTier stores the tier the customer's spend earns, and records a
// change with its event.
func (s *Service) refreshTier(ctx context.Context, db bun.IDB, now time.Time, pk int64) error {
	spend, err := s.spend(ctx, db, now, pk)
	if err != nil {
		return err
	}
	cols, err := loadCols(ctx, db, pk)
	if err != nil {
		return err
	}
	t, _ := s.tierFor(spend)
	from, to := ptr.Deref(cols.Tier), ""
	if t != nil {
		to = t.Name
	}
	if from == to {
		return nil
	}
	q := db.NewUpdate().Table("customers").Set("loyalty_tier_since = ?", now).Where("id = ?", pk)
	if to == "" {
		q = q.Set("loyalty_tier = NULL")
	} else {
		q = q.Set("loyalty_tier = ?", to)
	}
	if _, err := q.Exec(ctx); err != nil {
		return fmt.Errorf("store tier: %w", err)
	}
	_, _, err = customer.AppendEvent(ctx, db, now, pk, customer.EventInput{Type: EventTierChanged, OccurredAt: now,
		Source: "loyalty", Properties: map[string]any{"from": from, "to": to, "spend": spend}})
	return err
}

// RefreshTier re-evaluates a customer's tier now (spend leaves the rolling
// period as time passes, not only when orders arrive).
func (s *Service) RefreshTier(ctx context.Context, db bun.IDB, now time.Time, customerPK int64) error {
	return s.refreshTier(ctx, db, now, customerPK)
}

// Account returns a customer's loyalty state.
func (s *Service) Account(ctx context.Context, db bun.IDB, now time.Time, customerPK int64) (Account, error) {
	cols, err := loadCols(ctx, db, customerPK)
	if err != nil {
		return Account{}, err
	}
	spend, err := s.spend(ctx, db, now, customerPK)
	if err != nil {
		return Account{}, err
	}
	_, next := s.tierFor(spend)
	return Account{CustomerPK: customerPK, Points: cols.Points, Tier: cols.Tier, TierSince: cols.TierSince, SpendMinor: spend, NextTier: next}, nil
}

// LedgerPage is one page of a customer's ledger, newest first.
type LedgerPage struct {
	Entries     []*Entry
	HasNextPage bool
}

// Ledger returns up to first entries of a customer's ledger older than the
// entry with id after (0: from the newest).
func Ledger(ctx context.Context, db bun.IDB, customerPK int64, first int, after int64) (LedgerPage, error) {
	q := db.NewSelect().Model((*Entry)(nil)).Where("customer_id = ?", customerPK)
	if after > 0 {
		q = q.Where("id < ?", after)
	}
	var out []*Entry
	if err := q.Order("id DESC").Limit(int64(first)+1).Scan(ctx, &out); err != nil {
		return LedgerPage{}, fmt.Errorf("list points ledger: %w", err)
	}
	p := LedgerPage{Entries: out}
	if len(out) > first {
		p.Entries, p.HasNextPage = out[:first], true
	}
	return p, nil
}
