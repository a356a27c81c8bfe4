package customer

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/cursor"
	"github.com/refrain-dev/refrain/plugin/store"
)

// ErrNotFound is returned when no customer matches.
var ErrNotFound = store.ErrNotFound

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewPublicID returns a fresh unguessable customer id ("rfn_" and 26 base32
// characters: 128 random bits).
func NewPublicID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "rfn_" + idEncoding.EncodeToString(b[:])
}

// Get loads a customer by internal row id.
func Get(ctx context.Context, db bun.IDB, pk int64) (*Customer, error) {
	c := new(Customer)
	err := db.NewSelect().Model(c).Where("id = ?", pk).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("customer %d: %w", pk, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load customer %d: %w", pk, err)
	}
	return c, nil
}

// GetByRef loads a customer by graph id: the store's id or Refrain's public id.
func GetByRef(ctx context.Context, db bun.IDB, ref string) (*Customer, error) {
	cs, err := GetManyByRefs(ctx, db, []string{ref})
	if err != nil {
		return nil, err
	}
	if cs[0] == nil {
		return nil, fmt.Errorf("customer %q: %w", ref, ErrNotFound)
	}
	return cs[0], nil
}

// GetManyByRefs loads customers by graph id in one query. The result is in
// the order of refs, with nil where no customer matches.
func GetManyByRefs(ctx context.Context, db bun.IDB, refs []string) ([]*Customer, error) {
	out := make([]*Customer, len(refs))
	if len(refs) == 0 {
		return out, nil
	}
	var found []*Customer
	err := db.NewSelect().Model(&found).
		Where("public_id IN (?) OR external_id IN (?)", bun.List(refs), bun.List(refs)).
		Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("load customers by id: %w", err)
	}
	byRef := make(map[string]*Customer, len(found)*2)
	for _, c := range found {
		for _, r := range c.Refs() {
			byRef[r] = c
		}
	}
	for i, r := range refs {
		out[i] = byRef[r]
	}
	return out, nil
}

// GetByEmail loads a customer by address, compared in normalised form.
func GetByEmail(ctx context.Context, db bun.IDB, email string) (*Customer, error) {
	norm, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	c := new(Customer)
	err = db.NewSelect().Model(c).Where("email_normalized = ?", norm).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("customer with email: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load customer by email: %w", err)
	}
	return c, nil
}

// Filter narrows a customer listing. Empty fields do not filter.
type Filter struct {
	EmailContains string
	Source        Source
	Tag           string
	CreatedAfter  *time.Time
	CreatedBefore *time.Time
}

// Page is one page of a keyset-paginated listing.
type Page struct {
	Customers   []*Customer
	HasNextPage bool
	// EndCursor is the cursor of the last customer of the page.
	EndCursor string
}

// EncodeCursor turns a row id into an opaque cursor.
func EncodeCursor(pk int64) string { return cursor.EncodeID("c:", pk) }

// DecodeCursor reads a cursor made by EncodeCursor.
func DecodeCursor(c string) (int64, error) { return cursor.DecodeID("c:", c) }

// List returns up to first customers after the cursor, oldest first.
func List(ctx context.Context, db bun.IDB, f Filter, first int, after string) (Page, error) {
	q := db.NewSelect().Model((*Customer)(nil))
	if after != "" {
		pk, err := DecodeCursor(after)
		if err != nil {
			return Page{}, err
		}
		q = q.Where("id > ?", pk)
	}
	if f.EmailContains != "" {
		q = q.Where("email_normalized LIKE ? ESCAPE '\\'", "%"+likeEscape(strings.ToLower(f.EmailContains))+"%")
	}
	if f.Source != "" {
		q = q.Where("source = ?", f.Source)
	}
	if f.Tag != "" {
		q = q.Where(store.JSONArrayContains(db, "tags"), f.Tag)
	}
	if f.CreatedAfter != nil {
		q = q.Where("created_at >= ?", f.CreatedAfter.UTC())
	}
	if f.CreatedBefore != nil {
		q = q.Where("created_at < ?", f.CreatedBefore.UTC())
	}
	var cs []*Customer
	if err := q.Order("id ASC").Limit(int64(first)+1).Scan(ctx, &cs); err != nil {
		return Page{}, fmt.Errorf("list customers: %w", err)
	}
	p := Page{Customers: cs}
	if len(cs) > first {
		p.Customers = cs[:first]
		p.HasNextPage = true
	}
	if n := len(p.Customers); n > 0 {
		p.EndCursor = EncodeCursor(p.Customers[n-1].PK)
	}
	return p, nil
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
