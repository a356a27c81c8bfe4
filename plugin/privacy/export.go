package privacy

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
)

// exportTables lists what Export reads besides the profile: each table and
// the column that names the customer.
var exportTables = []struct{ name, column, order string }{
	{"customer_events", "customer_id", "id"},
	{"orders", "customer_id", "id"},
	{"carts", "customer_id", "id"},
	{"messages", "customer_id", "id"},
	{"message_events", "customer_id", "id"},
	{"enrollments", "customer_id", "id"},
	{"loyalty_ledger", "customer_id", "id"},
	{"referral_codes", "customer_id", "customer_id"},
	{"referrals", "referred_id", "id"},
	{"privacy_erasures", "customer_id", "id"},
}

// Export returns everything Refrain holds about customer customerPK: the
// profile row and, by table, every row that names the customer, as plain
// values ready for JSON.
func Export(ctx context.Context, db bun.IDB, now time.Time, customerPK int64) (map[string]any, error) {
	c, err := customer.Get(ctx, db, customerPK)
	if err != nil {
		return nil, fmt.Errorf("export customer %d: %w", customerPK, err)
	}
	var profile []map[string]any
	if err := db.NewSelect().Table("customers").Where("id = ?", customerPK).Scan(ctx, &profile); err != nil {
		return nil, fmt.Errorf("export customer %d: %w", customerPK, err)
	}
	out := map[string]any{"id": c.ID(), "exportedAt": now.UTC().Format(time.RFC3339), "customer": plain(profile[0])}
	for _, t := range exportTables {
		var rows []map[string]any
		if err := db.NewSelect().Table(t.name).Where("? = ?", bun.Ident(t.column), customerPK).
			Order(t.order).Scan(ctx, &rows); err != nil {
			return nil, fmt.Errorf("export %s: %w", t.name, err)
		}
		if t.name == "messages" {
			if err := wholeMessages(ctx, db, customerPK, rows); err != nil {
				return nil, err
			}
		}
		list := make([]any, 0, len(rows))
		for _, r := range rows {
			list = append(list, plain(r))
		}
		out[t.name] = list
	}
	var referred []map[string]any
	if err := db.NewSelect().Table("referrals").Column("referred_id", "channel", "redeemed_at", "rewarded_at", "reward_points").
		Where("referrer_id = ?", customerPK).Order("id").Scan(ctx, &referred); err != nil {
		return nil, fmt.Errorf("export referrals made: %w", err)
	}
	list := make([]any, 0, len(referred))
	for _, r := range referred {
		list = append(list, plain(r))
	}
	out["referrals_made"] = list
	return out, nil
}

// wholeMessages gives the message rows of a campaign batch, which keep
// their content in a body shared with the batch, their subject, HTML and
// text as they were sent (rows are in id order, as the messages read here).
func wholeMessages(ctx context.Context, db bun.IDB, customerPK int64, rows []map[string]any) error {
	var ms []*outbox.Message
	if err := db.NewSelect().Model(&ms).Where("customer_id = ?", customerPK).Order("id").Scan(ctx); err != nil {
		return fmt.Errorf("export messages: %w", err)
	}
	if err := outbox.FillBodies(ctx, db, ms...); err != nil {
		return fmt.Errorf("export messages: %w", err)
	}
	if len(ms) != len(rows) {
		return fmt.Errorf("export messages: %d rows, then %d messages (written meanwhile?)", len(rows), len(ms))
	}
	for i, m := range ms {
		rows[i]["subject"], rows[i]["html"], rows[i]["text"] = m.Subject, m.HTML, m.Text
	}
	return nil
}

// plain turns driver values into JSON-friendly ones: bytes become text
// (JSON columns on SQLite, raw bodies), times RFC 3339.
func plain(row map[string]any) map[string]any {
	for k, v := range row {
		switch x := v.(type) {
		case []byte:
			row[k] = string(x)
		case time.Time:
			row[k] = x.UTC().Format(time.RFC3339Nano)
		}
	}
	return row
}
