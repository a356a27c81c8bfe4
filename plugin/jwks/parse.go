package jwks

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// minRSABits is the smallest RSA modulus accepted. Keys below 2048 bits are
// considered breakable (NIST SP 800-131A) and issuers stopped publishing them.
const minRSABits = 2048

// jsonWebKey holds the members of a JWK (RFC 7517 §4, RFC 7518 §6) we read.
type jsonWebKey struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	// RSA.
	N string `json:"n"`
	E string `json:"e"`
	// EC.
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// skippedKey records why one entry of a set was not kept.
type skippedKey struct {
	kid    string
	reason string
}

// parseSet decodes a JWK Set document. Entries that are not signature keys,
// of a type we do not support, or malformed are skipped and reported, so that
// an issuer publishing, say, an Ed25519 key beside its RSA keys still works.
// A document with no usable key at all is an error.
func parseSet(body []byte) (map[string]crypto.PublicKey, []skippedKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, nil, fmt.Errorf("decode key set: %w", err)
	}
	keys := make(map[string]crypto.PublicKey, len(doc.Keys))
	var skipped []skippedKey
	for i, raw := range doc.Keys {
		var jwk jsonWebKey
		if err := json.Unmarshal(raw, &jwk); err != nil {
			skipped = append(skipped, skippedKey{reason: fmt.Sprintf("decode key %d: %v", i, err)})
			continue
		}
		if jwk.Use != "" && jwk.Use != "sig" {
			skipped = append(skipped, skippedKey{kid: jwk.Kid, reason: fmt.Sprintf("use %q is not sig", jwk.Use)})
			continue
		}
		if _, dup := keys[jwk.Kid]; dup {
			// Two keys under one kid make the choice ambiguous; keep the first.
			skipped = append(skipped, skippedKey{kid: jwk.Kid, reason: "duplicate kid"})
			continue
		}
		key, err := parseKey(jwk)
		if err != nil {
			skipped = append(skipped, skippedKey{kid: jwk.Kid, reason: err.Error()})
			continue
		}
		keys[jwk.Kid] = key
	}
	if len(keys) == 0 {
		return nil, skipped, errors.New("no usable key in key set")
	}
	return keys, skipped, nil
}

// parseKey builds the public key of one JWK.
func parseKey(jwk jsonWebKey) (crypto.PublicKey, error) {
	switch jwk.Kty {
	case "RSA":
		return parseRSA(jwk)
	case "EC":
		return parseEC(jwk)
	default:
		return nil, fmt.Errorf("unsupported kty %q", jwk.Kty)
	}
}

func parseRSA(jwk jsonWebKey) (*rsa.PublicKey, error) {
	n, err := decodeMember("n", jwk.N)
	if err != nil {
		return nil, err
	}
	e, err := decodeMember("e", jwk.E)
	if err != nil {
		return nil, err
	}
	modulus := new(big.Int).SetBytes(n)
	if modulus.BitLen() < minRSABits {
		return nil, fmt.Errorf("rsa modulus of %d bits is below %d", modulus.BitLen(), minRSABits)
	}
	exponent := new(big.Int).SetBytes(e)
	// Go's rsa package accepts exponents up to 2^31-1; anything else, or an
	// even or trivial exponent, is not a key anyone legitimately publishes.
	if !exponent.IsInt64() || exponent.Int64() < 3 || exponent.Int64() > 1<<31-1 || exponent.Bit(0) == 0 {
		return nil, fmt.Errorf("invalid rsa exponent")
	}
	return &rsa.PublicKey{N: modulus, E: int(exponent.Int64())}, nil
}

func parseEC(jwk jsonWebKey) (*ecdsa.PublicKey, error) {
	var curve elliptic.Curve
	switch jwk.Crv {
	case "P-256":
		curve = elliptic.P256()
	case "P-384":
		curve = elliptic.P384()
	case "P-521":
		curve = elliptic.P521()
	default:
		return nil, fmt.Errorf("unsupported crv %q", jwk.Crv)
	}
	x, err := decodeMember("x", jwk.X)
	if err != nil {
		return nil, err
	}
	y, err := decodeMember("y", jwk.Y)
	if err != nil {
		return nil, err
	}
	// RFC 7518 §6.2.1.2: coordinates are the full size of the field.
	size := (curve.Params().BitSize + 7) / 8
	if len(x) != size || len(y) != size {
		return nil, fmt.Errorf("%s coordinates must be %d bytes", jwk.Crv, size)
	}
	point := make([]byte, 0, 1+2*size)
	point = append(point, 4) // uncompressed point marker, SEC 1 §2.3.3
	point = append(point, x...)
	point = append(point, y...)
	// ParseUncompressedPublicKey also rejects points that are not on the curve.
	key, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return nil, fmt.Errorf("parse %s point: %w", jwk.Crv, err)
	}
	return key, nil
}

// decodeMember decodes a base64url member. RFC 7515 forbids padding, but some
// issuers add it; it carries no meaning, so it is tolerated.
func decodeMember(name, value string) ([]byte, error) {
	if value == "" {
		return nil, fmt.Errorf("missing %q", name)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(value, "="))
	if err != nil {
		return nil, fmt.Errorf("decode %q: %w", name, err)
	}
	return b, nil
}
