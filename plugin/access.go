package plugin

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/refrain-dev/refrain/plugin/auth"
	"github.com/refrain-dev/refrain/plugin/jwks"
)

func (p *Plugin) newAuthenticator(_ context.Context) (*auth.Authenticator, error) {
	opts := auth.AuthenticatorOptions{Keys: auth.KeyStore{DB: p.db}, BootstrapKey: p.cfg.AdminAPIKey, Clock: p.clock}
	if p.cfg.JWTSecret != "" || p.cfg.JWKSURL != "" {
		jo := auth.JWTOptions{CustomerClaim: p.cfg.JWTCustomerClaim, Issuer: p.cfg.JWTIssuer,
			Audience: p.cfg.JWTAudience, Clock: p.clock}
		if p.cfg.JWTSecret != "" {
			jo.Secret = []byte(p.cfg.JWTSecret)
		}
		if p.cfg.JWKSURL != "" {
			jo.KeySet = jwks.New(p.cfg.JWKSURL, &jwks.Options{HTTPClient: p.http, Clock: p.clock, Logger: p.logger})
		}
		v, err := auth.NewJWTVerifier(jo)
		if err != nil {
			return nil, fmt.Errorf("configure customer tokens (REFRAIN_JWT_SECRET / REFRAIN_JWKS_URL): %w", err)
		}
		opts.JWT = v
	}
	a, err := auth.NewAuthenticator(opts)
	if err != nil {
		return nil, fmt.Errorf("configure access control: %w", err)
	}
	return a, nil
}

// CreateAPIKey creates an admin API key and returns its plaintext, which is
// shown only this once.
func CreateAPIKey(ctx context.Context, cfg Config, name, scopes string) (string, error) {
	db, err := openMigrated(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer db.Close()
	key, _, err := auth.KeyStore{DB: db}.Create(ctx, time.Now().UTC(), name, scopes)
	return key, err
}

// ListAPIKeys writes every admin API key (never its secret) to w.
func ListAPIKeys(ctx context.Context, cfg Config, w io.Writer) error {
	db, err := openMigrated(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	keys, err := auth.KeyStore{DB: db}.List(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tSCOPES\tCREATED\tSTATUS")
	for _, k := range keys {
		status := "active"
		if k.RevokedAt != nil {
			status = "revoked " + k.RevokedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Prefix, k.Scopes, k.CreatedAt.UTC().Format(time.RFC3339), status)
	}
	return tw.Flush()
}

// RevokeAPIKey revokes a key by id or prefix.
func RevokeAPIKey(ctx context.Context, cfg Config, idOrPrefix string, w io.Writer) error {
	db, err := openMigrated(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	k, err := auth.KeyStore{DB: db}.Revoke(ctx, time.Now().UTC(), idOrPrefix)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "revoked key %d (%s)\n", k.ID, k.Name)
	return nil
}
