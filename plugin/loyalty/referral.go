package loyalty

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/commerce"
	"github.com/refrain-dev/refrain/plugin/customer"
)

// Referral errors, each a user error at the edge.
var (
	ErrUnknownCode     = errors.New("unknown referral code")
	ErrSelfReferral    = errors.New("a customer cannot use their own referral code")
	ErrAlreadyReferred = errors.New("this customer has already used a referral code")
	ErrNotNew          = errors.New("only a new customer (no paid order yet) can use a referral code")
)

// Referral channels: where a code was redeemed.
const (
	ChannelAccount   = "account"
	ChannelOrder     = "order"
	ChannelSubscribe = "subscribe"
)

// Referral links a referred customer to their referrer.
type Referral struct {
	bun.BaseModel `bun:"table:referrals"`

	ID            int64      `bun:"id,pk,autoincrement"`
	ReferrerPK    int64      `bun:"referrer_id,notnull"`
	ReferredPK    int64      `bun:"referred_id,notnull"`
	Code          string     `bun:"code,notnull"`
	Channel       string     `bun:"channel,notnull"`
	RedeemedAt    time.Time  `bun:"redeemed_at,notnull"`
	RewardedAt    *time.Time `bun:"rewarded_at"`
	RewardOrderPK *int64     `bun:"reward_order_id"`
	RewardPoints  int64      `bun:"reward_points,notnull"`
}

type referralCode struct {
	bun.BaseModel `bun:"table:referral_codes"`

	CustomerPK int64     `bun:"customer_id,pk"`
	Code       string    `bun:"code,notnull"`
	CreatedAt  time.Time `bun:"created_at,notnull"`
}

// codeAlphabet leaves out letters and digits people confuse (0/O, 1/I/L).
const codeAlphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

// newCode returns 10 random characters: 31^10, about 8e14 codes, so
// guessing one by trying is hopeless.
func newCode() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = codeAlphabet[int(b[i])%len(codeAlphabet)]
	}
	return string(b)
}

// Code returns the customer's referral code, created on first use and the
// same ever after.
func (s *Service) Code(ctx context.Context, db bun.IDB, now time.Time, customerPK int64) (string, error) {
	for attempt := 0; attempt < 3; attempt++ {
		rc := new(referralCode)
		err := db.NewSelect().Model(rc).Where("customer_id = ?", customerPK).Scan(ctx)
		if err == nil {
			return rc.Code, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return "", fmt.Errorf("load referral code: %w", err)
		}
		rc = &referralCode{CustomerPK: customerPK, Code: newCode(), CreatedAt: now}
		if _, err := db.NewInsert().Model(rc).On("CONFLICT DO NOTHING").Exec(ctx); err != nil {
			return "", fmt.Errorf("create referral code: %w", err)
		}
	}
	return "", errors.New("create referral code: no code after three attempts")
}

// Link returns the referral link for code.
func (s *Service) Link(code string) string {
	if s.o.ReferralURL == "" {
		return ""
	}
	sep := "?"
	if strings.Contains(s.o.ReferralURL, "?") {
		sep = "&"
	}
	return s.o.ReferralURL + sep + "ref=" + url.QueryEscape(code)
}

// Redeem links customer referredPK to the owner of code, once. A customer
// cannot use their own code, use a second code, or use one after a paid order.
func (s *Service) Redeem(ctx context.Context, db bun.IDB, now time.Time, referredPK int64, code, channel string) (*Referral, error) {
	code = strings.ToUpper(strings.TrimSpace(code))
	rc := new(referralCode)
	err := db.NewSelect().Model(rc).Where("code = ?", code).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrUnknownCode
	}
	if err != nil {
		return nil, fmt.Errorf("look up referral code: %w", err)
	}
	if rc.CustomerPK == referredPK {
		return nil, ErrSelfReferral
	}
	n, err := db.NewSelect().Model((*Referral)(nil)).Where("referred_id = ?", referredPK).Count(ctx)
	if err != nil {
		return nil, fmt.Errorf("check referral: %w", err)
	}
	if n > 0 {
		return nil, ErrAlreadyReferred
	}
	if channel != ChannelOrder {
		paid, err := db.NewSelect().Model((*commerce.Order)(nil)).Where("customer_id = ? AND paid_at IS NOT NULL", referredPK).Count(ctx)
		if err != nil {
			return nil, fmt.Errorf("check orders: %w", err)
		}
		if paid > 0 {
			return nil, ErrNotNew
		}
	}
	r := &Referral{ReferrerPK: rc.CustomerPK, ReferredPK: referredPK, Code: code, Channel: channel, RedeemedAt: now}
	res, err := db.NewInsert().Model(r).On("CONFLICT (referred_id) DO NOTHING").Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("record referral: %w", err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return nil, ErrAlreadyReferred
	}
	if _, _, err := customer.AppendEvent(ctx, db, now, referredPK, customer.EventInput{Type: EventReferralRedeemed,
		OccurredAt: now, Source: "referral", Properties: map[string]any{"channel": channel}}); err != nil {
		return nil, err
	}
	return r, nil
}

// reward gives the referrer their reward on the referred customer's first
// paid order, once.
func (s *Service) reward(ctx context.Context, db bun.IDB, now time.Time, referredPK int64, o *commerce.Order) error {
	r := new(Referral)
	err := db.NewSelect().Model(r).Where("referred_id = ? AND rewarded_at IS NULL", referredPK).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load referral: %w", err)
	}
	res, err := db.NewUpdate().Model(r).Set("rewarded_at = ?", now).Set("reward_order_id = ?", o.PK).
		Set("reward_points = ?", s.o.ReferralRewardPoints).Where("id = ? AND rewarded_at IS NULL", r.ID).Exec(ctx)
	if err != nil {
		return fmt.Errorf("mark referral rewarded: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	key := fmt.Sprintf("referral:%d", r.ID)
	balance, err := s.write(ctx, db, now, r.ReferrerPK, s.o.ReferralRewardPoints, KindReferral, nil, "referral reward", key)
	if err != nil {
		return err
	}
	referred, err := customer.Get(ctx, db, referredPK)
	if err != nil {
		return err
	}
	_, _, err = customer.AppendEvent(ctx, db, now, r.ReferrerPK, customer.EventInput{Type: EventReferralRewarded,
		OccurredAt: now, Source: "referral", IdempotencyKey: EventReferralRewarded + ":" + key,
		Properties: map[string]any{"points": s.o.ReferralRewardPoints, "balance": balance,
			"referred_customer": referred.ID(), "order_id": o.ExternalID}})
	return err
}

// Stats is a referrer's record.
type Stats struct {
	ReferredCount int
	RewardsEarned int
	RewardPoints  int64
}

// ReferralStats counts the customers a customer referred and the rewards they earned.
func ReferralStats(ctx context.Context, db bun.IDB, customerPK int64) (Stats, error) {
	var rs []Referral
	if err := db.NewSelect().Model(&rs).Where("referrer_id = ?", customerPK).Scan(ctx); err != nil {
		return Stats{}, fmt.Errorf("load referrals: %w", err)
	}
	st := Stats{ReferredCount: len(rs)}
	for _, r := range rs {
		if r.RewardedAt != nil {
			st.RewardsEarned++
			st.RewardPoints += r.RewardPoints
		}
	}
	return st, nil
}

// OrderReferralKeys are the order attributes read as a referral code, in
// order: a storefront puts the code its visitor arrived with (the ?ref=
// parameter of a referral link) in one of them.
var OrderReferralKeys = []string{"ref", "referral_code"}

// redeemFromOrder links the buyer to a referrer when the order carries a
// referral code. A refused code (unknown, their own, a second one) leaves
// the order alone: it is recorded as a customer event rather than failing
// the delivery, since the storefront cannot correct an order already placed.
func (s *Service) redeemFromOrder(ctx context.Context, db bun.IDB, now time.Time, pk int64, o *commerce.Order) error {
	var code string
	for _, k := range OrderReferralKeys {
		if v := strings.TrimSpace(o.Attributes[k]); v != "" {
			code = v
			break
		}
	}
	if code == "" {
		return nil
	}
	// Only a first order counts: an earlier paid order means the buyer is
	// not new (Redeem cannot tell, since this order is already stored).
	earlier, err := db.NewSelect().Model((*commerce.Order)(nil)).
		Where("customer_id = ? AND paid_at IS NOT NULL AND id <> ?", pk, o.PK).Count(ctx)
	if err != nil {
		return fmt.Errorf("check orders: %w", err)
	}
	if earlier == 0 {
		_, err = s.Redeem(ctx, db, now, pk, code, ChannelOrder)
	} else {
		err = ErrNotNew
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrAlreadyReferred):
		// A redelivery of the order that linked them, or a second code.
		return nil
	case errors.Is(err, ErrUnknownCode), errors.Is(err, ErrSelfReferral), errors.Is(err, ErrNotNew):
		_, _, err := customer.AppendEvent(ctx, db, now, pk, customer.EventInput{Type: EventReferralRefused,
			OccurredAt: now, Source: "referral", IdempotencyKey: "referral.refused:order:" + o.Source + ":" + o.ExternalID,
			Properties: map[string]any{"channel": ChannelOrder, "order_id": o.ExternalID, "reason": err.Error()}})
		return err
	}
	return err
}
