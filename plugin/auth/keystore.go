package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/uptrace/bun"
)

// StoredKey is an admin API key row. The plaintext is never stored: only
// its SHA-256 (HashAPIKey) and its public prefix, which finds the row.
type StoredKey struct {
	bun.BaseModel `bun:"table:api_keys"`

	ID         int64      `bun:"id,pk,autoincrement"`
	Name       string     `bun:"name,notnull"`
	Prefix     string     `bun:"prefix,notnull"`
	Hash       []byte     `bun:"hash,notnull"`
	Scopes     string     `bun:"scopes,notnull"`
	CreatedAt  time.Time  `bun:"created_at,notnull"`
	LastUsedAt *time.Time `bun:"last_used_at"`
	RevokedAt  *time.Time `bun:"revoked_at"`
}

// KeyStore keeps admin API keys in the database and implements KeyLookup.
type KeyStore struct {
	DB bun.IDB
}

// Create makes a new key with a name and comma-separated scopes and
// returns its plaintext, shown once, and its stored row.
func (s KeyStore) Create(ctx context.Context, now time.Time, name, scopes string) (string, *StoredKey, error) {
	if name == "" {
		return "", nil, errors.New("create api key: a name is required")
	}
	parsed, err := ParseScopes(scopes)
	if err != nil {
		return "", nil, fmt.Errorf("create api key: %w", err)
	}
	plaintext, prefix, hash, err := GenerateAPIKey()
	if err != nil {
		return "", nil, fmt.Errorf("create api key: %w", err)
	}
	k := &StoredKey{Name: name, Prefix: prefix, Hash: hash, Scopes: FormatScopes(parsed), CreatedAt: now}
	if _, err := s.DB.NewInsert().Model(k).Exec(ctx); err != nil {
		return "", nil, fmt.Errorf("store api key: %w", err)
	}
	return plaintext, k, nil
}

// List returns every key, revoked ones included, oldest first.
func (s KeyStore) List(ctx context.Context) ([]*StoredKey, error) {
	var ks []*StoredKey
	if err := s.DB.NewSelect().Model(&ks).Order("id ASC").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return ks, nil
}

// Revoke disables a key by id (as List shows it) or by prefix.
func (s KeyStore) Revoke(ctx context.Context, now time.Time, idOrPrefix string) (*StoredKey, error) {
	k := new(StoredKey)
	// A prefix may be all digits, so the prefix is tried first and the id second.
	q := s.DB.NewSelect().Model(k).Where("prefix = ?", idOrPrefix)
	if id, err := strconv.ParseInt(idOrPrefix, 10, 64); err == nil {
		q = q.WhereOr("id = ?", id)
	}
	if err := q.OrderExpr("CASE WHEN prefix = ? THEN 0 ELSE 1 END", idOrPrefix).Limit(1).Scan(ctx); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("revoke api key %q: %w", idOrPrefix, ErrAPIKeyNotFound)
		}
		return nil, fmt.Errorf("revoke api key %q: %w", idOrPrefix, err)
	}
	if k.RevokedAt == nil {
		k.RevokedAt = &now
		if _, err := s.DB.NewUpdate().Model(k).Column("revoked_at").WherePK().Exec(ctx); err != nil {
			return nil, fmt.Errorf("revoke api key %q: %w", idOrPrefix, err)
		}
	}
	return k, nil
}

// LookupAPIKey implements KeyLookup.
func (s KeyStore) LookupAPIKey(ctx context.Context, prefix string) (APIKeyRecord, error) {
	k := new(StoredKey)
	err := s.DB.NewSelect().Model(k).Where("prefix = ?", prefix).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return APIKeyRecord{}, fmt.Errorf("api key %q: %w", prefix, ErrAPIKeyNotFound)
	}
	if err != nil {
		return APIKeyRecord{}, fmt.Errorf("look up api key: %w", err)
	}
	scopes, err := ParseScopes(k.Scopes)
	if err != nil {
		return APIKeyRecord{}, fmt.Errorf("api key %d has bad stored scopes: %w", k.ID, err)
	}
	return APIKeyRecord{ID: strconv.FormatInt(k.ID, 10), Name: k.Name, Hash: k.Hash, Scopes: scopes, RevokedAt: k.RevokedAt}, nil
}
