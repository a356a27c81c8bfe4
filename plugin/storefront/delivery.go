package storefront

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/refrain-dev/refrain/plugin/commerce/event"
)

// Delivery is one webhook request as the inbox stores it, before it is
// acknowledged and before it is parsed. Everything needed to replay it through
// Parse is here: the topic, the raw body byte for byte, and the few headers
// that carry meaning.
type Delivery struct {
	// Source is the platform the request came from.
	Source event.Source `json:"source"`
	// Topic is the platform's own topic or event name, as given
	// ("orders/create", "order_created", "store/cart/abandoned",
	// "order.updated", "customer.created"). Pass it back to Parse.
	Topic string `json:"topic"`
	// DedupeKey identifies the event across redeliveries. It is unique per
	// Source, not globally: the inbox keys on (Source, DedupeKey). When the
	// platform gives nothing usable it is BodyKey(Body).
	DedupeKey string `json:"dedupeKey"`
	// Headers keeps the request headers worth storing, by canonical name
	// (signature headers included, for audit; never a secret).
	Headers map[string]string `json:"headers,omitempty"`
	// Body is the raw request body, exactly as received.
	Body []byte `json:"body"`
}

// BodyKey is the fallback dedupe key: "sha256:" and the hex SHA-256 of body.
// Identical bodies are the same event; this is right for platforms that
// resend the original payload on retry.
func BodyKey(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// PickHeaders copies the named headers that are present in h into a new map
// keyed by canonical header name, keeping the first value of each. It returns
// nil when none is present.
func PickHeaders(h http.Header, names ...string) map[string]string {
	var out map[string]string
	for _, name := range names {
		v := strings.TrimSpace(h.Get(name))
		if v == "" {
			continue
		}
		if out == nil {
			out = make(map[string]string, len(names))
		}
		out[http.CanonicalHeaderKey(name)] = v
	}
	return out
}
