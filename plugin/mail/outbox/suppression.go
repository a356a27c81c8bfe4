package outbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/cursor"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/mail"
)

// NormalizeAddress returns the form of an address suppressions and links
// are keyed by: customer.NormalizeEmail's, or the trimmed lower-cased
// address when that refuses it (a provider may report an address Refrain
// would not accept, and it must still be suppressed).
func NormalizeAddress(addr string) string {
	if n, err := customer.NormalizeEmail(addr); err == nil {
		return n
	}
	return strings.ToLower(strings.TrimSpace(addr))
}

// AddressHash is the hex SHA-256 of the normalised address.
func AddressHash(addr string) string {
	sum := sha256.Sum256([]byte(NormalizeAddress(addr)))
	return hex.EncodeToString(sum[:])
}

// Suppress puts addr on the suppression list for reason. It reports whether
// a new entry was made (false when the address was already suppressed for
// that reason).
func Suppress(ctx context.Context, db bun.IDB, now time.Time, addr string, reason Reason, source, detail string) (bool, error) {
	if !reason.Valid() {
		return false, fmt.Errorf("suppress address: unknown reason %q", reason)
	}
	s := &Suppression{AddressHash: AddressHash(addr), Address: NormalizeAddress(addr), Reason: reason,
		Source: source, Detail: strp(detail), CreatedAt: now}
	res, err := db.NewInsert().Model(s).On("CONFLICT (address_hash, reason) DO NOTHING").Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("suppress address: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// Unsuppress removes every suppression of addr and returns how many there were.
func Unsuppress(ctx context.Context, db bun.IDB, addr string) (int, error) {
	res, err := db.NewDelete().Model((*Suppression)(nil)).Where("address_hash = ?", AddressHash(addr)).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("remove suppression: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// Suppressed reports whether mail of kind may not go to addr, and the
// reason: marketing mail is stopped by any suppression, transactional mail
// by hard bounces and complaints only.
func Suppressed(ctx context.Context, db bun.IDB, addr string, kind mail.Kind) (Reason, bool, error) {
	var reasons []Reason
	if err := db.NewSelect().Model((*Suppression)(nil)).Column("reason").
		Where("address_hash = ?", AddressHash(addr)).Order("id ASC").Scan(ctx, &reasons); err != nil {
		return "", false, fmt.Errorf("check suppression: %w", err)
	}
	for _, r := range reasons {
		if kind == mail.KindMarketing || r.BlocksTransactional() {
			return r, true, nil
		}
	}
	return "", false, nil
}

// SuppressionPage is one page of the suppression list.
type SuppressionPage struct {
	Suppressions []*Suppression
	HasNextPage  bool
	EndCursor    string
}

// ListSuppressions returns up to first suppressions after the cursor, oldest first.
func ListSuppressions(ctx context.Context, db bun.IDB, first int, after string) (SuppressionPage, error) {
	q := db.NewSelect().Model((*Suppression)(nil))
	if after != "" {
		id, err := DecodeCursor(after)
		if err != nil {
			return SuppressionPage{}, err
		}
		q = q.Where("id > ?", id)
	}
	var out []*Suppression
	if err := q.Order("id ASC").Limit(int64(first)+1).Scan(ctx, &out); err != nil {
		return SuppressionPage{}, fmt.Errorf("list suppressions: %w", err)
	}
	p := SuppressionPage{Suppressions: out}
	if len(out) > first {
		p.Suppressions, p.HasNextPage = out[:first], true
	}
	if n := len(p.Suppressions); n > 0 {
		p.EndCursor = EncodeCursor(p.Suppressions[n-1].ID)
	}
	return p, nil
}

// EncodeCursor turns a row id into an opaque cursor.
func EncodeCursor(id int64) string { return cursor.EncodeID("o:", id) }

// DecodeCursor reads a cursor made by EncodeCursor.
func DecodeCursor(c string) (int64, error) { return cursor.DecodeID("o:", c) }
