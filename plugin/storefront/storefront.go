// Package storefront is the edge that storefront webhooks come through. It
// owns what every webhook adapter shares: the raw Delivery that the HTTP
// layer stores in the inbox before acknowledging, the signature, JSON text
// and timestamp helpers that read platform requests, the errors the adapters
// return, the Fetcher that completes thin events, and the Platform value and
// Registry that describe each adapter to the receiver and the inbox handler.
//
// Each platform lives in its own subpackage (shopify, saleor, bigcommerce,
// woocommerce, standard) and exposes the same three pure functions, gathered
// with its secret setting in one Platform value:
//
//   - Verify checks the request signature over the raw body (constant time).
//   - Delivery extracts the topic, the dedupe key and the headers worth
//     keeping, so the inbox can store the body and acknowledge quickly.
//   - Parse turns a stored body into zero or more normalised commerce
//     events (package plugin/commerce/event). It is called later,
//     asynchronously, from the inbox; it never does I/O.
//
// None of these packages opens a database or serves HTTP. They take the raw
// body and the request headers and return values, so they can be replayed from
// the inbox and fuzzed. They may import plugin/commerce/event, the one domain
// package they translate into, and must not import any other domain package
// (commerce, customer, privacy, inbox), graph or the assembly.
package storefront
