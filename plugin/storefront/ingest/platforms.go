package ingest

import (
	"github.com/refrain-dev/refrain/plugin/storefront"
	"github.com/refrain-dev/refrain/plugin/storefront/bigcommerce"
	"github.com/refrain-dev/refrain/plugin/storefront/saleor"
	"github.com/refrain-dev/refrain/plugin/storefront/shopify"
	"github.com/refrain-dev/refrain/plugin/storefront/standard"
	"github.com/refrain-dev/refrain/plugin/storefront/woocommerce"
)

// Platforms returns the registry of the storefront platforms Refrain accepts
// webhooks from, each bound to its secret in opts. This is the one place
// that names the adapters: a new platform is one more line here. Parsing
// needs no secret, so Platforms(Options{}) serves the inbox handler.
func Platforms(opts Options) storefront.Registry {
	return storefront.NewRegistry(
		shopify.Platform(opts.ShopifySecret),
		saleor.Platform(saleor.VerifyOpts{Keys: opts.SaleorKeys, Secret: opts.SaleorSecret}),
		bigcommerce.Platform(opts.BigCommerceSecret),
		woocommerce.Platform(opts.WooCommerceSecret),
		standard.Platform(opts.StandardSecret),
	)
}
