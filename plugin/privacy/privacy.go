// Package privacy carries out data rights: Erase removes a customer's
// personal data from every table Refrain keeps (profile, events, orders,
// carts, the mail outbox and its events, scenario context, raw webhook
// bodies), keeps the anonymous rows that counts and KPIs are made of, puts
// the hash of the address on the suppression list so neither an import nor
// a webhook brings it back, and records the erasure. Export returns
// everything Refrain holds about a customer.
//
// It must not import plugin/storefront or a storefront adapter, graph,
// net/http or the assembly: it sees webhooks only as plugin/commerce/event
// values, through VetEvent, which the inbox handler calls.
package privacy

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/commerce"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/hygiene"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
	"github.com/refrain-dev/refrain/plugin/store"
)

// ErasedRecipient replaces the recipient of an erased customer's messages
// (the column cannot be empty of meaning: it says why it holds no address).
const ErasedRecipient = "erased"

// Erasure records one erasure.
type Erasure struct {
	bun.BaseModel `bun:"table:privacy_erasures"`

	ID         int64 `bun:"id,pk,autoincrement"`
	CustomerPK int64 `bun:"customer_id,notnull"`
	// AddressHash is the suppression-list hash of the erased address, if any.
	AddressHash *string        `bun:"address_hash"`
	Reason      string         `bun:"reason,notnull"`
	Counts      map[string]any `bun:"counts,notnull,type:jsonb"`
	ErasedAt    time.Time      `bun:"erased_at,notnull"`
}

// Erase removes customer customerPK's personal data everywhere and records
// why (reason: "admin", "shopify:customers/redact", "scenario sunset").
// Rows stay, so counts of messages, events and orders do not change; the
// customer row stays as an anonymous shell. Erasing twice is harmless. Run
// it in a transaction: it is several statements.
//
// Its signature is scenarios/engine.Eraser's, for the delete_profile step.
func Erase(ctx context.Context, db bun.IDB, now time.Time, customerPK int64, reason string) error {
	c, err := customer.Get(ctx, db, customerPK)
	if err != nil {
		return fmt.Errorf("erase customer %d: %w", customerPK, err)
	}
	// Every form of the address that may appear in a column: as given, as
	// normalised, and lower-cased.
	var addrs []string
	var hash *string
	for _, a := range []*string{c.Email, c.EmailNormalized} {
		if a != nil && *a != "" {
			addrs = appendUnique(addrs, *a, strings.ToLower(*a))
		}
	}
	if len(addrs) > 0 {
		h := outbox.AddressHash(addrs[0])
		hash = &h
	}
	counts := map[string]any{}

	if err := commerce.Erase(ctx, db, now, customerPK, reason); err != nil {
		return err
	}
	if _, err := db.NewUpdate().Table("customers").Set("hygiene_status = NULL").Set("hygiene_suggestion = NULL").Set("hygiene_confirmed_hash = NULL").
		Where("id = ?", customerPK).Exec(ctx); err != nil {
		return fmt.Errorf("erase hygiene status: %w", err)
	}
	res, err := db.NewUpdate().Model((*outbox.Message)(nil)).
		Set("recipient = ?", ErasedRecipient).Set("recipient_name = NULL").Set("template_values = ?", "{}").
		Set("subject = ?", "").Set("html = ?", "").Set("text = ?", "").Set("unsubscribe_url = NULL").
		Set(keepCallID).Set("body_id = NULL").Set("recipient_vars = NULL").
		Set("last_error = NULL").Set("updated_at = ?", now).
		Where("customer_id = ?", customerPK).Exec(ctx)
	if err != nil {
		return fmt.Errorf("erase messages: %w", err)
	}
	counts["messages"] = affected(res)
	if len(addrs) > 0 {
		// Messages written before the customer was known by id.
		if _, err := db.NewUpdate().Model((*outbox.Message)(nil)).
			Set("recipient = ?", ErasedRecipient).Set("recipient_name = NULL").Set("template_values = ?", "{}").
			Set("subject = ?", "").Set("html = ?", "").Set("text = ?", "").Set("unsubscribe_url = NULL").
			Set(keepCallID).Set("body_id = NULL").Set("recipient_vars = NULL").
			Set("last_error = NULL").Set("updated_at = ?", now).
			Where("recipient IN (?) AND customer_id IS NULL", bun.List(addrs)).Exec(ctx); err != nil {
			return fmt.Errorf("erase messages by address: %w", err)
		}
	}
	q := db.NewUpdate().Model((*outbox.MessageEvent)(nil)).Set("recipient = NULL").Set("raw = ?", "{}").
		Where("customer_id = ?", customerPK).
		WhereOr("message_id IN (?)", db.NewSelect().Model((*outbox.Message)(nil)).Column("id").Where("customer_id = ?", customerPK))
	if len(addrs) > 0 {
		q = q.WhereOr("recipient IN (?)", bun.List(addrs))
	}
	if res, err = q.Exec(ctx); err != nil {
		return fmt.Errorf("erase message events: %w", err)
	}
	counts["message_events"] = affected(res)
	if _, err := db.NewUpdate().Table("enrollments").Set("context = ?", "{}").Where("customer_id = ?", customerPK).Exec(ctx); err != nil {
		return fmt.Errorf("erase scenario context: %w", err)
	}
	if hash != nil {
		n, err := redactInbound(ctx, db, addrs)
		if err != nil {
			return err
		}
		counts["inbound_events"] = n
		// Suppressions made before keep only the hash from now on.
		if _, err := db.NewUpdate().Model((*outbox.Suppression)(nil)).Set("address = ?", *hash).
			Where("address_hash = ?", *hash).Exec(ctx); err != nil {
			return fmt.Errorf("erase suppressed address: %w", err)
		}
		s := &outbox.Suppression{AddressHash: *hash, Address: *hash, Reason: outbox.ReasonManual,
			Source: hygiene.ErasureSource, Detail: &reason, CreatedAt: now}
		if _, err := db.NewInsert().Model(s).On("CONFLICT (address_hash, reason) DO UPDATE").
			Set("source = EXCLUDED.source").Set("detail = EXCLUDED.detail").Exec(ctx); err != nil {
			return fmt.Errorf("suppress erased address: %w", err)
		}
	}
	if _, err := db.NewInsert().Model(&Erasure{CustomerPK: customerPK, AddressHash: hash, Reason: reason,
		Counts: counts, ErasedAt: now}).Exec(ctx); err != nil {
		return fmt.Errorf("record erasure: %w", err)
	}
	return nil
}

// redactInbound replaces the raw body of every stored webhook delivery
// that holds one of addrs with a redaction notice, and empties its headers.
func redactInbound(ctx context.Context, db bun.IDB, addrs []string) (int64, error) {
	var n int64
	body := []byte(`{"redacted":"personal data erased"}`)
	for _, a := range addrs {
		q := db.NewUpdate().Table("inbound_events").Set("body = ?", body).Set("headers = ?", "{}").
			Where(store.BytesContain(db, "body"), a)
		res, err := q.Exec(ctx)
		if err != nil {
			return 0, fmt.Errorf("redact webhook bodies: %w", err)
		}
		n += affected(res)
	}
	return n, nil
}

func affected(res interface{ RowsAffected() (int64, error) }) int64 {
	n, _ := res.RowsAffected()
	return n
}

func appendUnique(list []string, vals ...string) []string {
	for _, v := range vals {
		found := false
		for _, l := range list {
			if l == v {
				found = true
			}
		}
		if !found {
			list = append(list, v)
		}
	}
	return list
}

// keepCallID gives an erased row of a batch call the provider id its
// call recorded, before the row loses its body.
const keepCallID = "provider_message_id = COALESCE(provider_message_id, " +
	"(SELECT b.provider_message_id FROM message_bodies AS b WHERE b.id = ?TableAlias.body_id))"

// EraseInTx is Erase in a transaction of its own, or in the caller's when
// db already is one.
func EraseInTx(ctx context.Context, db bun.IDB, now time.Time, customerPK int64, reason string) error {
	if tx, ok := db.(bun.Tx); ok {
		return Erase(ctx, tx, now, customerPK, reason)
	}
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		return Erase(ctx, tx, now, customerPK, reason)
	})
}
