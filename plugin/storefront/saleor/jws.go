package saleor

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/refrain-dev/refrain/plugin/storefront"
)

// jwsHeader is the protected header of Saleor's detached JWS.
type jwsHeader struct {
	Alg  string   `json:"alg"`
	Kid  string   `json:"kid"`
	B64  *bool    `json:"b64"`
	Crit []string `json:"crit"`
}

// verifyJWS verifies a detached compact JWS ("<header>..<signature>") over
// body. Only RS256 is accepted, so a forged header cannot choose "none" or
// an HMAC algorithm keyed with the public key. With "b64": false (RFC 7797)
// the signing input is the header, a dot and the raw body; without it, the
// body is base64url-encoded first.
func verifyJWS(ctx context.Context, sig string, body []byte, keys KeyFunc) error {
	parts := strings.Split(sig, ".")
	if len(parts) != 3 || parts[1] != "" {
		return fmt.Errorf("%w: not a detached JWS", storefront.ErrBadSignature)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return fmt.Errorf("%w: JWS header is not base64url", storefront.ErrBadSignature)
	}
	var h jwsHeader
	if err := json.Unmarshal(raw, &h); err != nil {
		return fmt.Errorf("%w: JWS header is not JSON", storefront.ErrBadSignature)
	}
	if h.Alg != "RS256" {
		return fmt.Errorf("%w: JWS alg %q, want RS256", storefront.ErrBadSignature, h.Alg)
	}
	unencoded := h.B64 != nil && !*h.B64
	for _, c := range h.Crit {
		if c != "b64" {
			return fmt.Errorf("%w: JWS critical header %q not understood", storefront.ErrBadSignature, c)
		}
	}
	if unencoded && !contains(h.Crit, "b64") {
		return fmt.Errorf("%w: JWS b64 header not marked critical", storefront.ErrBadSignature)
	}
	signature, err := decodeBase64URL(parts[2])
	if err != nil {
		return fmt.Errorf("%w: JWS signature is not base64url", storefront.ErrBadSignature)
	}
	key, err := keys(ctx, h.Kid)
	if err != nil {
		return fmt.Errorf("resolve saleor key %q: %w", h.Kid, err)
	}
	pub, ok := key.(*rsa.PublicKey)
	if !ok || pub == nil {
		return fmt.Errorf("%w: key %q is not an RSA public key", storefront.ErrBadSignature, h.Kid)
	}
	digest := sha256.New()
	digest.Write([]byte(parts[0]))
	digest.Write([]byte{'.'})
	if unencoded {
		digest.Write(body)
	} else {
		digest.Write([]byte(base64.RawURLEncoding.EncodeToString(body)))
	}
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest.Sum(nil), signature); err != nil {
		return fmt.Errorf("%w: JWS signature does not match", storefront.ErrBadSignature)
	}
	return nil
}

func decodeBase64URL(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, errors.New("empty")
	}
	return b, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
