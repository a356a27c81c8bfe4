package plugin

import (
	"fmt"
	"net/mail"
	"net/url"
	"strings"
	"time"
)

// MailConfig holds the settings of sending, templates, consent and Mailgun events.
type MailConfig struct {
	// MailgunAPIKey selects Mailgun as the sender; empty keeps mail in the built-in outbox.
	MailgunAPIKey string `env:"REFRAIN_MAILGUN_API_KEY" yaml:"mailgun_api_key" default:"" doc:"Mailgun private API key; empty keeps every mail in the built-in outbox (GET /outbox)" secret:"true"`
	// MailgunDomain is the sending domain of marketing mail (and of transactional mail unless set apart).
	MailgunDomain string `env:"REFRAIN_MAILGUN_DOMAIN" yaml:"mailgun_domain" default:"" doc:"Mailgun sending domain (required with the API key)"`
	// MailgunTransactionalDomain is an optional separate sending domain for transactional mail.
	MailgunTransactionalDomain string `env:"REFRAIN_MAILGUN_TRANSACTIONAL_DOMAIN" yaml:"mailgun_transactional_domain" default:"" doc:"separate Mailgun domain for transactional mail (empty: the sending domain)"`
	// MailgunAPIBase is the API address: empty for the US region, https://api.eu.mailgun.net for the EU.
	MailgunAPIBase string `env:"REFRAIN_MAILGUN_API_BASE" yaml:"mailgun_api_base" default:"" doc:"Mailgun API address: empty for the US region, https://api.eu.mailgun.net for the EU region"`
	// MailgunWebhookSigningKey verifies POST /webhooks/mailgun.
	MailgunWebhookSigningKey string `env:"REFRAIN_MAILGUN_WEBHOOK_SIGNING_KEY" yaml:"mailgun_webhook_signing_key" default:"" doc:"Mailgun webhook signing key; POST /webhooks/mailgun answers 503 without it" secret:"true"`
	// MailgunWebhookWindow is how old a webhook signature may be.
	MailgunWebhookWindow time.Duration `env:"REFRAIN_MAILGUN_WEBHOOK_WINDOW" yaml:"mailgun_webhook_window" default:"5m" doc:"how old a Mailgun webhook signature may be before it is refused"`
	// MailgunEventsPollInterval turns on the poller of Mailgun's events API (0: off).
	MailgunEventsPollInterval time.Duration `env:"REFRAIN_MAILGUN_EVENTS_POLL_INTERVAL" yaml:"mailgun_events_poll_interval" default:"0s" doc:"read Mailgun's events API at this interval to fill webhook gaps (0s: off)"`
	// MailLease is how long a delivery worker holds the messages it claimed.
	MailLease time.Duration `env:"REFRAIN_MAIL_LEASE" yaml:"mail_lease" default:"2m" doc:"how long a delivery worker holds claimed messages, and a campaign sender a batch call in flight; those of a replica that died are checked with Mailgun, never sent blindly again, once it runs out"`
	// MailFrom is the sender of every mail.
	MailFrom string `env:"REFRAIN_MAIL_FROM" yaml:"mail_from" default:"" doc:"sender of every mail, such as Store <news@store.example> (empty: REFRAIN_STORE_NAME at no-reply@ the Mailgun domain)"`
	// MailReplyTo is an optional Reply-To address.
	MailReplyTo string `env:"REFRAIN_MAIL_REPLY_TO" yaml:"mail_reply_to" default:"" doc:"optional Reply-To address"`
	// ListUnsubscribeMailto adds a mailto: address to List-Unsubscribe beside the https link.
	ListUnsubscribeMailto string `env:"REFRAIN_LIST_UNSUBSCRIBE_MAILTO" yaml:"list_unsubscribe_mailto" default:"" doc:"optional mailto: unsubscribe address added to List-Unsubscribe"`
	// TemplatesDir adds templates from a directory, over the built-in ones.
	TemplatesDir string `env:"REFRAIN_TEMPLATES_DIR" yaml:"templates_dir" default:"" doc:"directory of templates (<name>/<locale>/subject.txt, body.html, body.txt) added to and overriding the built-in ones"`
	// DefaultLocale is the locale templates fall back to.
	DefaultLocale string `env:"REFRAIN_DEFAULT_LOCALE" yaml:"default_locale" default:"en" doc:"locale templates fall back to"`
	// StoreName is the store's public name, shown in mail and pages.
	StoreName string `env:"REFRAIN_STORE_NAME" yaml:"store_name" default:"Our store" doc:"the store's public name, shown in mail and on the unsubscribe page"`
	// StoreURL is the storefront's home page, linked from mail.
	StoreURL string `env:"REFRAIN_STORE_URL" yaml:"store_url" default:"" doc:"storefront home page linked from mail (empty: REFRAIN_PUBLIC_URL)"`
	// DoubleOptIn sends a confirmation mail before subscribing.
	DoubleOptIn bool `env:"REFRAIN_DOUBLE_OPT_IN" yaml:"double_opt_in" default:"true" doc:"subscribe only after the confirmation link is followed (false: single opt-in)"`
	// SigningSecret signs unsubscribe, confirmation and survey links.
	SigningSecret string `env:"REFRAIN_SIGNING_SECRET" yaml:"signing_secret" default:"" doc:"secret (32+ bytes) signing unsubscribe, confirmation and survey links; empty: a random one per start, so links stop working at restart (development only)" secret:"true"`
	// SubscribeRateLimit caps subscribe calls per IP address and per email address per hour.
	SubscribeRateLimit int `env:"REFRAIN_SUBSCRIBE_RATE_LIMIT" yaml:"subscribe_rate_limit" default:"10" doc:"subscribe requests allowed per hour per IP address and per email address (0: no limit)"`
}

func (c MailConfig) validate() []error {
	var errs []error
	bad := func(env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("setting %s: "+format, append([]any{env}, args...)...))
	}
	if c.MailLease < time.Second {
		bad("REFRAIN_MAIL_LEASE", "must be at least 1s, got %s", c.MailLease)
	}
	if c.MailgunAPIKey != "" && strings.TrimSpace(c.MailgunDomain) == "" {
		bad("REFRAIN_MAILGUN_DOMAIN", "is required when REFRAIN_MAILGUN_API_KEY is set")
	}
	if c.MailgunAPIBase != "" {
		if u, err := url.Parse(c.MailgunAPIBase); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("REFRAIN_MAILGUN_API_BASE", "must be an absolute http(s) URL such as https://api.eu.mailgun.net, got %q", c.MailgunAPIBase)
		}
	}
	if c.MailgunWebhookWindow <= 0 {
		bad("REFRAIN_MAILGUN_WEBHOOK_WINDOW", "must be positive, got %s", c.MailgunWebhookWindow)
	}
	if c.MailgunEventsPollInterval < 0 {
		bad("REFRAIN_MAILGUN_EVENTS_POLL_INTERVAL", "must not be negative, got %s", c.MailgunEventsPollInterval)
	} else if c.MailgunEventsPollInterval > 0 && c.MailgunAPIKey == "" {
		bad("REFRAIN_MAILGUN_EVENTS_POLL_INTERVAL", "needs REFRAIN_MAILGUN_API_KEY")
	}
	if c.MailFrom != "" {
		if _, err := mail.ParseAddress(c.MailFrom); err != nil {
			bad("REFRAIN_MAIL_FROM", "%q is not an address such as Store <news@store.example>", c.MailFrom)
		}
	}
	if c.MailReplyTo != "" {
		if _, err := mail.ParseAddress(c.MailReplyTo); err != nil {
			bad("REFRAIN_MAIL_REPLY_TO", "%q is not an address", c.MailReplyTo)
		}
	}
	if c.DefaultLocale == "" {
		bad("REFRAIN_DEFAULT_LOCALE", "must not be empty")
	} else if !looksLikeLocale(c.DefaultLocale) {
		bad("REFRAIN_DEFAULT_LOCALE", "%q is not a language tag such as en or fr-CA", c.DefaultLocale)
	}
	if c.StoreURL != "" {
		if u, err := url.Parse(c.StoreURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("REFRAIN_STORE_URL", "must be an absolute http(s) URL, got %q", c.StoreURL)
		}
	}
	if c.SigningSecret != "" && len(c.SigningSecret) < 32 {
		bad("REFRAIN_SIGNING_SECRET", "must be at least 32 bytes")
	}
	if c.SubscribeRateLimit < 0 {
		bad("REFRAIN_SUBSCRIBE_RATE_LIMIT", "must not be negative, got %d", c.SubscribeRateLimit)
	}
	return errs
}

// looksLikeLocale accepts a language tag such as en, fr-CA or pt_BR; the
// template engine checks it fully at start.
func looksLikeLocale(s string) bool {
	if len(s) < 2 || len(s) > 35 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
