package plugin

import (
	"fmt"
	"net/url"
	"time"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/storefront/standard"
)

// StorefrontConfig holds the settings of storefront webhooks, the inbox and
// commerce processing. A platform whose secret is empty is not connected: its
// webhook route answers 503 and stores nothing.
type StorefrontConfig struct {
	// ShopifySecret is the Shopify app's client secret; it keys the base64
	// HMAC-SHA256 in X-Shopify-Hmac-Sha256.
	ShopifySecret string `env:"REFRAIN_SHOPIFY_SECRET" yaml:"shopify_secret" default:"" doc:"Shopify app client secret: verifies X-Shopify-Hmac-Sha256 on POST /webhooks/shopify" secret:"true"`
	// SaleorJWKSURL is the JWKS address of the Saleor instance
	// (https://shop.example.com/.well-known/jwks.json); Saleor-Signature JWS
	// are verified with its keys, never with keys named by request headers.
	SaleorJWKSURL string `env:"REFRAIN_SALEOR_JWKS_URL" yaml:"saleor_jwks_url" default:"" doc:"JWKS address of the Saleor instance: verifies the detached JWS in Saleor-Signature"`
	// SaleorSecret is the secret key of legacy Saleor webhooks (hex HMAC-SHA256).
	SaleorSecret string `env:"REFRAIN_SALEOR_SECRET" yaml:"saleor_secret" default:"" doc:"secret key of legacy Saleor webhooks signed with a hex HMAC-SHA256" secret:"true"`
	// BigCommerceSecret is the app's client secret; its raw bytes key the
	// Standard Webhooks signature of BigCommerce deliveries.
	BigCommerceSecret string `env:"REFRAIN_BIGCOMMERCE_SECRET" yaml:"bigcommerce_secret" default:"" doc:"BigCommerce app client secret: verifies the webhook-signature of POST /webhooks/bigcommerce" secret:"true"`
	// BigCommerceStoreHash is the store hash of the BigCommerce API (stores/{hash}).
	BigCommerceStoreHash string `env:"REFRAIN_BIGCOMMERCE_STORE_HASH" yaml:"bigcommerce_store_hash" default:"" doc:"BigCommerce store hash; with the access token, thin webhooks are completed from the store API"`
	// BigCommerceAccessToken is the API account token (X-Auth-Token) used to
	// fetch the orders, carts and customers that thin webhooks name.
	BigCommerceAccessToken string `env:"REFRAIN_BIGCOMMERCE_ACCESS_TOKEN" yaml:"bigcommerce_access_token" default:"" doc:"BigCommerce API access token (X-Auth-Token, read-only scopes on orders, carts, customers)" secret:"true"`
	// BigCommerceAPIBase is the BigCommerce API address, without the store path.
	BigCommerceAPIBase string `env:"REFRAIN_BIGCOMMERCE_API_BASE" yaml:"bigcommerce_api_base" default:"https://api.bigcommerce.com" doc:"BigCommerce API base address"`
	// WooCommerceSecret is the webhook secret of WooCommerce
	// (X-WC-Webhook-Signature, base64 HMAC-SHA256).
	WooCommerceSecret string `env:"REFRAIN_WOOCOMMERCE_SECRET" yaml:"woocommerce_secret" default:"" doc:"WooCommerce webhook secret: verifies X-WC-Webhook-Signature on POST /webhooks/woocommerce" secret:"true"`
	// StandardWebhookSecret is the whsec_... secret of POST /webhooks/standard.
	StandardWebhookSecret string `env:"REFRAIN_STANDARD_WEBHOOK_SECRET" yaml:"standard_webhook_secret" default:"" doc:"Standard Webhooks secret (whsec_ and base64) of POST /webhooks/standard (Medusa, Vendure, custom stores)" secret:"true"`

	// WebhookMaxBody is the largest webhook body accepted, in bytes; larger gets 413.
	WebhookMaxBody int64 `env:"REFRAIN_WEBHOOK_MAX_BODY" yaml:"webhook_max_body" default:"1048576" doc:"largest webhook body accepted, in bytes (larger: 413)"`
	// CartAbandonAfter is how long an open cart with a known customer or
	// email may stay idle before it is abandoned.
	CartAbandonAfter time.Duration `env:"REFRAIN_CART_ABANDON_AFTER" yaml:"cart_abandon_after" default:"1h" doc:"idle time after which an open cart or checkout with a customer or email is abandoned"`
	// CartSweepInterval is how often open carts are checked for abandonment.
	CartSweepInterval time.Duration `env:"REFRAIN_CART_SWEEP_INTERVAL" yaml:"cart_sweep_interval" default:"1m" doc:"how often open carts and checkouts are checked against REFRAIN_CART_ABANDON_AFTER"`
	// StageNewCustomerDays: a one-order customer is NEW_CUSTOMER this many days after the order.
	StageNewCustomerDays int `env:"REFRAIN_STAGE_NEW_CUSTOMER_DAYS" yaml:"stage_new_customer_days" default:"90" doc:"days a one-order customer stays NEW_CUSTOMER"`
	// StageActiveDays: a last order within this many days is ACTIVE.
	StageActiveDays int `env:"REFRAIN_STAGE_ACTIVE_DAYS" yaml:"stage_active_days" default:"180" doc:"days since the last order within which a customer is ACTIVE"`
	// StageAtRiskDays: a last order older than the active window but within
	// this many days is AT_RISK; older is LAPSED.
	StageAtRiskDays int `env:"REFRAIN_STAGE_AT_RISK_DAYS" yaml:"stage_at_risk_days" default:"365" doc:"days since the last order within which a customer is AT_RISK (older: LAPSED)"`
	// StageSweepInterval is how often stages that change with time alone are recomputed.
	StageSweepInterval time.Duration `env:"REFRAIN_STAGE_SWEEP_INTERVAL" yaml:"stage_sweep_interval" default:"1h" doc:"how often lifecycle stages that change with time alone are recomputed (at most 1h)"`

	// InboxWorkers is the number of inbox workers per replica.
	InboxWorkers int `env:"REFRAIN_INBOX_WORKERS" yaml:"inbox_workers" default:"2" doc:"inbox workers per replica processing stored webhooks"`
	// InboxBatch is how many deliveries one worker claims at a time.
	InboxBatch int `env:"REFRAIN_INBOX_BATCH" yaml:"inbox_batch" default:"50" doc:"deliveries an inbox worker claims at a time"`
	// InboxLease is how long a worker holds the deliveries it claimed.
	InboxLease time.Duration `env:"REFRAIN_INBOX_LEASE" yaml:"inbox_lease" default:"2m" doc:"how long an inbox worker holds claimed deliveries; those of a replica that died (or lost its database connection) are taken again once it runs out"`
	// InboxMaxAttempts is how many times a delivery is tried before it is parked as FAILED.
	InboxMaxAttempts int `env:"REFRAIN_INBOX_MAX_ATTEMPTS" yaml:"inbox_max_attempts" default:"8" doc:"attempts before a failing delivery is parked as FAILED (retries back off from 10s to 1h)"`
}

// Thresholds returns the lifecycle stage thresholds of the configuration.
func (c StorefrontConfig) Thresholds() customer.Thresholds {
	day := 24 * time.Hour
	return customer.Thresholds{NewCustomer: time.Duration(c.StageNewCustomerDays) * day,
		Active: time.Duration(c.StageActiveDays) * day, AtRisk: time.Duration(c.StageAtRiskDays) * day}
}

func (c StorefrontConfig) validate() []error {
	var errs []error
	bad := func(env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("setting %s: "+format, append([]any{env}, args...)...))
	}
	if c.SaleorJWKSURL != "" {
		if u, err := url.Parse(c.SaleorJWKSURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("REFRAIN_SALEOR_JWKS_URL", "must be an absolute http(s) URL, got %q", c.SaleorJWKSURL)
		}
	}
	if c.StandardWebhookSecret != "" {
		if _, err := standard.DecodeSecret(c.StandardWebhookSecret); err != nil {
			bad("REFRAIN_STANDARD_WEBHOOK_SECRET", "must be whsec_ followed by base64, as the sender shows it")
		}
	}
	if (c.BigCommerceStoreHash == "") != (c.BigCommerceAccessToken == "") {
		bad("REFRAIN_BIGCOMMERCE_ACCESS_TOKEN", "set it together with REFRAIN_BIGCOMMERCE_STORE_HASH, or neither")
	}
	if u, err := url.Parse(c.BigCommerceAPIBase); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("REFRAIN_BIGCOMMERCE_API_BASE", "must be an absolute http(s) URL, got %q", c.BigCommerceAPIBase)
	}
	if c.WebhookMaxBody < 1024 {
		bad("REFRAIN_WEBHOOK_MAX_BODY", "must be at least 1024 bytes, got %d", c.WebhookMaxBody)
	}
	if c.CartAbandonAfter < time.Minute {
		bad("REFRAIN_CART_ABANDON_AFTER", "must be at least 1m, got %s", c.CartAbandonAfter)
	}
	if c.CartSweepInterval < time.Second || c.CartSweepInterval > time.Hour {
		bad("REFRAIN_CART_SWEEP_INTERVAL", "must be between 1s and 1h, got %s", c.CartSweepInterval)
	}
	if c.StageNewCustomerDays < 1 {
		bad("REFRAIN_STAGE_NEW_CUSTOMER_DAYS", "must be at least 1, got %d", c.StageNewCustomerDays)
	}
	if c.StageActiveDays < 1 {
		bad("REFRAIN_STAGE_ACTIVE_DAYS", "must be at least 1, got %d", c.StageActiveDays)
	}
	if c.StageAtRiskDays <= c.StageActiveDays {
		bad("REFRAIN_STAGE_AT_RISK_DAYS", "must be more than REFRAIN_STAGE_ACTIVE_DAYS (%d), got %d", c.StageActiveDays, c.StageAtRiskDays)
	}
	if c.StageSweepInterval < time.Second || c.StageSweepInterval > time.Hour {
		bad("REFRAIN_STAGE_SWEEP_INTERVAL", "must be between 1s and 1h, got %s", c.StageSweepInterval)
	}
	if c.InboxWorkers < 0 || c.InboxWorkers > 64 {
		bad("REFRAIN_INBOX_WORKERS", "must be between 0 and 64, got %d", c.InboxWorkers)
	}
	if c.InboxBatch < 1 || c.InboxBatch > 1000 {
		bad("REFRAIN_INBOX_BATCH", "must be between 1 and 1000, got %d", c.InboxBatch)
	}
	if c.InboxLease < time.Second {
		bad("REFRAIN_INBOX_LEASE", "must be at least 1s, got %s", c.InboxLease)
	}
	if c.InboxMaxAttempts < 1 {
		bad("REFRAIN_INBOX_MAX_ATTEMPTS", "must be at least 1, got %d", c.InboxMaxAttempts)
	}
	return errs
}
