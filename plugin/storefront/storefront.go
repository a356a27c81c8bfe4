// Package storefront holds what every storefront webhook adapter shares: the
// raw Delivery that the HTTP layer stores in the inbox before acknowledging,
// the normalised commerce Event that the rest of Refrain consumes, the
// signature and money helpers, and the errors the adapters return.
//
// Each platform lives in its own subpackage (shopify, saleor, bigcommerce,
// woocommerce, standard) and exposes the same three pure functions:
//
//   - Verify checks the request signature over the raw body (constant time).
//   - Delivery extracts the topic, the dedupe key and the headers worth
//     keeping, so the inbox can store the body and acknowledge quickly.
//   - Parse turns a stored body into zero or more normalised Events. It is
//     called later, asynchronously, from the inbox; it never does I/O.
//
// None of these packages opens a database or serves HTTP. They take the raw
// body and the request headers and return values, so they can be replayed from
// the inbox and fuzzed.
package storefront

// Source names the storefront platform a webhook came from. It is also the
// last path segment of the webhook endpoint, POST /webhooks/{source}.
type Source string

// The storefront platforms Refrain accepts webhooks from.
const (
	// SourceShopify is a Shopify app webhook.
	SourceShopify Source = "shopify"
	// SourceSaleor is a Saleor app webhook (JWS or legacy HMAC signed).
	SourceSaleor Source = "saleor"
	// SourceBigCommerce is a BigCommerce webhook signed the Standard Webhooks way.
	SourceBigCommerce Source = "bigcommerce"
	// SourceWooCommerce is a WooCommerce webhook.
	SourceWooCommerce Source = "woocommerce"
	// SourceStandard is a Standard Webhooks delivery carrying Refrain's own
	// documented event types (Medusa, Vendure, commercetools bridges, custom stores).
	SourceStandard Source = "standard"
)

// Sources lists every Source, in a stable order.
func Sources() []Source {
	return []Source{SourceShopify, SourceSaleor, SourceBigCommerce, SourceWooCommerce, SourceStandard}
}

// Valid reports whether s is one of the known sources.
func (s Source) Valid() bool {
	switch s {
	case SourceShopify, SourceSaleor, SourceBigCommerce, SourceWooCommerce, SourceStandard:
		return true
	}
	return false
}
