package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"strings"
)

// API keys look like
//
//	rfn_<prefix>_<secret>
//
// where prefix is 8 characters of a lower-case base32 alphabet (40 random
// bits) and secret is 32 random bytes in unpadded base64url (43 characters).
// The "rfn_" marker lets secret scanners recognise leaked keys and lets the
// Authenticator tell a key from a JWT. The prefix is not secret: it is stored
// in clear, shown in `refrain apikey list`, and used to find the key's record
// (the store must keep it unique; on the rare collision, generate again).
// Fixed positions, not the underscores, delimit the parts, because base64url
// text may itself contain "_".
//
// Only SHA-256 of the whole key is stored. A slow password hash (bcrypt,
// argon2) exists to make guessing low-entropy human passwords expensive; the
// secret part here carries 256 random bits, so a stolen hash cannot be
// reversed by guessing however fast the hash is, and a fast hash keeps every
// authenticated request cheap.
const (
	apiKeyMarker    = "rfn_"
	apiKeyPrefixLen = 8
	apiKeySecretLen = 32 // bytes of randomness
	apiKeyLen       = len(apiKeyMarker) + apiKeyPrefixLen + 1 + 43
)

// prefixEncoding is base32 with an alphabet of lower-case letters and digits
// that avoids look-alikes (no 0, 1, l, o), so prefixes read well aloud and
// never contain "_". Five random bytes encode to exactly eight characters.
func prefixEncoding() *base32.Encoding {
	return base32.NewEncoding("abcdefghijkmnpqrstuvwxyz23456789").WithPadding(base32.NoPadding)
}

// secretEncoding encodes the secret part.
func secretEncoding() *base64.Encoding { return base64.RawURLEncoding.Strict() }

// GenerateAPIKey returns a new random API key: the plaintext, shown once to
// the operator and never stored; its public prefix, to store and look the key
// up by; and the SHA-256 hash of the plaintext, to store.
func GenerateAPIKey() (plaintext, prefix string, hash []byte, err error) {
	var buf [5 + apiKeySecretLen]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", "", nil, fmt.Errorf("read random bytes: %w", err)
	}
	prefix = prefixEncoding().EncodeToString(buf[:5])
	plaintext = apiKeyMarker + prefix + "_" + secretEncoding().EncodeToString(buf[5:])
	return plaintext, prefix, HashAPIKey(plaintext), nil
}

// HashAPIKey returns the SHA-256 hash of an API key's plaintext, the form in
// which keys are stored.
func HashAPIKey(plaintext string) []byte {
	sum := sha256.Sum256([]byte(plaintext))
	return sum[:]
}

// LooksLikeAPIKey reports whether token carries the API key marker "rfn_",
// well formed or not.
func LooksLikeAPIKey(token string) bool { return strings.HasPrefix(token, apiKeyMarker) }

// ParseAPIKey checks that token has the shape of a Refrain API key and returns
// its public prefix. It says nothing about whether the key exists or is valid.
func ParseAPIKey(token string) (prefix string, ok bool) {
	if len(token) != apiKeyLen || !LooksLikeAPIKey(token) {
		return "", false
	}
	prefix = token[len(apiKeyMarker) : len(apiKeyMarker)+apiKeyPrefixLen]
	rest := token[len(apiKeyMarker)+apiKeyPrefixLen:]
	if rest[0] != '_' {
		return "", false
	}
	if b, err := prefixEncoding().DecodeString(prefix); err != nil || len(b) != 5 {
		return "", false
	}
	if b, err := secretEncoding().DecodeString(rest[1:]); err != nil || len(b) != apiKeySecretLen {
		return "", false
	}
	return prefix, true
}

// VerifyAPIKeyHash reports whether plaintext hashes to hash, comparing in
// constant time.
func VerifyAPIKeyHash(plaintext string, hash []byte) bool {
	return subtle.ConstantTimeCompare(HashAPIKey(plaintext), hash) == 1
}
