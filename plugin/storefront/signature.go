package storefront

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// HMACSHA256 returns HMAC-SHA256(key, msg).
func HMACSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// VerifyBase64HMAC checks that sig is the standard base64 encoding of
// HMAC-SHA256(secret, body), in constant time. It is the scheme of Shopify and
// WooCommerce. An empty secret is ErrNoKey; a missing, undecodable or wrong
// signature is ErrBadSignature.
func VerifyBase64HMAC(secret string, body []byte, sig string) error {
	if secret == "" {
		return ErrNoKey
	}
	sig = strings.TrimSpace(sig)
	if sig == "" {
		return fmt.Errorf("%w: missing signature", ErrBadSignature)
	}
	got, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("%w: signature is not base64", ErrBadSignature)
	}
	if !hmac.Equal(got, HMACSHA256([]byte(secret), body)) {
		return fmt.Errorf("%w: signature does not match", ErrBadSignature)
	}
	return nil
}

// VerifyHexHMAC checks that sig is the hex encoding of HMAC-SHA256(secret,
// body), in constant time (Saleor's legacy secret-key signatures).
func VerifyHexHMAC(secret string, body []byte, sig string) error {
	if secret == "" {
		return ErrNoKey
	}
	sig = strings.TrimSpace(sig)
	if sig == "" {
		return fmt.Errorf("%w: missing signature", ErrBadSignature)
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("%w: signature is not hex", ErrBadSignature)
	}
	if !hmac.Equal(got, HMACSHA256([]byte(secret), body)) {
		return fmt.Errorf("%w: signature does not match", ErrBadSignature)
	}
	return nil
}

// The Standard Webhooks header names.
const (
	// HeaderWebhookID is the Standard Webhooks message id, stable across retries.
	HeaderWebhookID = "Webhook-Id"
	// HeaderWebhookTimestamp is the Standard Webhooks send time, in Unix seconds.
	HeaderWebhookTimestamp = "Webhook-Timestamp"
	// HeaderWebhookSignature holds one or more space-separated "v1,<base64>" signatures.
	HeaderWebhookSignature = "Webhook-Signature"
)

// StandardTolerance is the freshness window of Standard Webhooks: a delivery
// whose timestamp is more than this before or after now is rejected.
const StandardTolerance = 5 * time.Minute

// VerifyStandardWebhook verifies a Standard Webhooks signature
// (https://www.standardwebhooks.com): webhook-signature holds space-separated
// "v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)>" entries,
// any one of which may match; other versions are skipped. The timestamp must
// lie within tolerance of now (StandardTolerance when tolerance is zero). key
// is the raw HMAC key: callers decode "whsec_" secrets first. All comparisons
// are constant time.
func VerifyStandardWebhook(h http.Header, body, key []byte, now time.Time, tolerance time.Duration) error {
	if len(key) == 0 {
		return ErrNoKey
	}
	if tolerance <= 0 {
		tolerance = StandardTolerance
	}
	id := strings.TrimSpace(h.Get(HeaderWebhookID))
	ts := strings.TrimSpace(h.Get(HeaderWebhookTimestamp))
	sigs := strings.TrimSpace(h.Get(HeaderWebhookSignature))
	if id == "" || ts == "" || sigs == "" {
		return fmt.Errorf("%w: missing webhook-id, webhook-timestamp or webhook-signature", ErrBadSignature)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: webhook-timestamp is not Unix seconds", ErrBadSignature)
	}
	// Compare in seconds so huge values cannot overflow a time.Duration.
	skew := now.Unix() - sec
	if skew > int64(tolerance/time.Second) || -skew > int64(tolerance/time.Second) {
		return fmt.Errorf("%w: webhook-timestamp outside the %s window", ErrBadSignature, tolerance)
	}
	msg := make([]byte, 0, len(id)+len(ts)+len(body)+2)
	msg = append(msg, id...)
	msg = append(msg, '.')
	msg = append(msg, ts...)
	msg = append(msg, '.')
	msg = append(msg, body...)
	want := HMACSHA256(key, msg)
	for _, entry := range strings.Fields(sigs) {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no v1 signature matches", ErrBadSignature)
}

// SignStandardWebhook returns the "v1,<base64>" webhook-signature value for
// id, timestamp and body under key. Tests and senders use it; receivers call
// VerifyStandardWebhook.
func SignStandardWebhook(key []byte, id string, timestamp time.Time, body []byte) string {
	msg := id + "." + strconv.FormatInt(timestamp.Unix(), 10) + "." + string(body)
	return "v1," + base64.StdEncoding.EncodeToString(HMACSHA256(key, []byte(msg)))
}
