package event

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
