package plugin

// StorefrontConfig holds the settings of storefront webhooks, the inbox and
// commerce processing.
type StorefrontConfig struct{}

func (c StorefrontConfig) validate() []error { return nil }
