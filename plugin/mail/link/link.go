// Package link signs and verifies the tokens carried by the links in mail:
// the one-click unsubscribe and preferences link, and the double opt-in
// confirmation link. A token names a customer and a purpose, may expire, and
// is bound to the customer's current address: its HMAC covers the
// normalised address without carrying it, so a token cannot be forged,
// edited to name another customer, or used once the address has changed.
package link

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Purpose says what a token allows.
type Purpose string

const (
	// Unsubscribe tokens open the unsubscribe and preferences page and
	// unsubscribe at once on POST (RFC 8058). They do not expire: a link in
	// a years-old message must still work.
	Unsubscribe Purpose = "u"
	// Confirm tokens complete a double opt-in subscription.
	Confirm Purpose = "c"
	// Survey tokens let the customer a mail went to answer a survey
	// (submitSurvey) without signing in.
	Survey Purpose = "s"
	// Keep tokens let the customer a sunset mail went to ask to stay
	// subscribed, which takes them out of the program that would erase
	// them.
	Keep Purpose = "k"
)

// ErrInvalid reports a token that is malformed, forged, expired, of another
// purpose, or bound to another address. The edges answer it uniformly so
// that a caller learns nothing about which check failed.
var ErrInvalid = errors.New("invalid or expired link")

// Signer signs and verifies tokens with one secret. It is safe for
// concurrent use.
type Signer struct {
	secret []byte
}

// MinSecretLen is the shortest secret New accepts, in bytes.
const MinSecretLen = 32

// New returns a Signer for secret (at least MinSecretLen bytes).
func New(secret []byte) (*Signer, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("link signer: secret is %d bytes, want at least %d", len(secret), MinSecretLen)
	}
	return &Signer{secret: append([]byte(nil), secret...)}, nil
}

// Claims is what a verified token says.
type Claims struct {
	// Purpose is what the token allows.
	Purpose Purpose
	// CustomerID is the customer's public id.
	CustomerID string
	// Expires is when the token stops working; zero for never.
	Expires time.Time
}

// Sign returns a token for customerID with purpose, bound to address (the
// normalised address the customer holds now). A zero expires never expires.
// The token is URL-safe: <purpose>.<customer>.<expiry>.<mac>.
func (s *Signer) Sign(purpose Purpose, customerID, address string, expires time.Time) string {
	exp := "0"
	if !expires.IsZero() {
		exp = strconv.FormatInt(expires.Unix(), 36)
	}
	head := string(purpose) + "." + customerID + "." + exp
	return head + "." + s.mac(head, address)
}

// Parse reads a token without checking its signature, so that the caller can
// load the customer it names and then call Verify with their address.
func Parse(token string) (Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 4 || parts[1] == "" || parts[3] == "" {
		return Claims{}, ErrInvalid
	}
	c := Claims{Purpose: Purpose(parts[0]), CustomerID: parts[1]}
	if c.Purpose != Unsubscribe && c.Purpose != Confirm && c.Purpose != Survey && c.Purpose != Keep {
		return Claims{}, ErrInvalid
	}
	if parts[2] != "0" {
		secs, err := strconv.ParseInt(parts[2], 36, 64)
		if err != nil {
			return Claims{}, ErrInvalid
		}
		c.Expires = time.Unix(secs, 0).UTC()
	}
	return c, nil
}

// Verify checks token: its signature over the customer's current address,
// its purpose and its expiry at now. It returns the claims, or ErrInvalid.
func (s *Signer) Verify(token string, purpose Purpose, address string, now time.Time) (Claims, error) {
	c, err := Parse(token)
	if err != nil {
		return Claims{}, err
	}
	i := strings.LastIndexByte(token, '.')
	if !hmac.Equal([]byte(token[i+1:]), []byte(s.mac(token[:i], address))) {
		return Claims{}, ErrInvalid
	}
	if c.Purpose != purpose {
		return Claims{}, ErrInvalid
	}
	if !c.Expires.IsZero() && !now.Before(c.Expires) {
		return Claims{}, ErrInvalid
	}
	return c, nil
}

// mac is the base64url HMAC-SHA256 of the token head and the address,
// truncated to 128 bits (ample against forgery, and it keeps links short).
func (s *Signer) mac(head, address string) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte("refrain-link-v1\x00"))
	m.Write([]byte(head))
	m.Write([]byte{0})
	m.Write([]byte(strings.ToLower(strings.TrimSpace(address))))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}
