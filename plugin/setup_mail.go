package plugin

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/refrain-dev/refrain/plugin/auth"
	"github.com/refrain-dev/refrain/plugin/hygiene"
	"github.com/refrain-dev/refrain/plugin/kpi"
	"github.com/refrain-dev/refrain/plugin/mail"
	"github.com/refrain-dev/refrain/plugin/mail/consent"
	"github.com/refrain-dev/refrain/plugin/mail/link"
	"github.com/refrain-dev/refrain/plugin/mail/mailgun"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
	"github.com/refrain-dev/refrain/plugin/mail/page"
	"github.com/refrain-dev/refrain/plugin/mail/template"
	"github.com/refrain-dev/refrain/plugin/mail/tracking"
	"github.com/refrain-dev/refrain/scenarios/library/templates"
)

// setupMail wires senders, templates, consent routes and Mailgun events: it
// registers routes with route and background workers with p.addWorker.
func (p *Plugin) setupMail(ctx context.Context, route func(pattern, name string, h http.Handler)) error {
	if err := p.setupHygiene(); err != nil {
		return err
	}
	cfg := p.cfg.MailConfig
	engine, err := template.New(&template.Opts{DefaultLocale: cfg.DefaultLocale, Logger: p.logger})
	if err != nil {
		return fmt.Errorf("configure templates (REFRAIN_DEFAULT_LOCALE): %w", err)
	}
	if err := engine.Load(templates.FS); err != nil {
		return fmt.Errorf("load built-in templates: %w", err)
	}
	if cfg.TemplatesDir != "" {
		if err := engine.LoadDir(cfg.TemplatesDir); err != nil {
			return fmt.Errorf("load templates (REFRAIN_TEMPLATES_DIR): %w", err)
		}
	}
	if err := outbox.LoadStoredTemplates(ctx, p.db, engine); err != nil {
		return err
	}

	secret := []byte(cfg.SigningSecret)
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
		p.logger.WarnContext(ctx, "REFRAIN_SIGNING_SECRET is not set: using a random secret, so unsubscribe and confirmation links stop working at restart and differ between replicas; set it in production")
	}
	signer, err := link.New(secret)
	if err != nil {
		return fmt.Errorf("configure links (REFRAIN_SIGNING_SECRET): %w", err)
	}
	p.resolver.Links = signer

	var sender mail.Sender = outbox.Local{}
	var reconciler mail.Reconciler = outbox.Local{}
	provider := "outbox"
	var mg *mailgun.Sender
	if cfg.MailgunAPIKey != "" {
		if u, err := url.Parse(p.cfg.PublicURL); err != nil || u.Scheme != "https" {
			return errors.New("setting REFRAIN_PUBLIC_URL: must be an https URL when Mailgun sends mail: one-click unsubscribe links (RFC 8058) must be https")
		}
		mg, err = mailgun.New(mailgun.Config{APIKey: cfg.MailgunAPIKey, Domain: cfg.MailgunDomain,
			TransactionalDomain: cfg.MailgunTransactionalDomain, APIBase: cfg.MailgunAPIBase}, p.ops.mailgunClient(p.http), p.clock, p.logger)
		if err != nil {
			return fmt.Errorf("configure Mailgun (REFRAIN_MAILGUN_*): %w", err)
		}
		sender, reconciler, provider = mg, mg, "mailgun"
	}
	from := cfg.MailFrom
	if from == "" {
		domain := cfg.MailgunDomain
		if domain == "" {
			domain = "localhost"
		}
		from = fmt.Sprintf("%q <no-reply@%s>", cfg.StoreName, domain)
	}
	svc, err := outbox.New(outbox.Options{DB: p.db, Clock: p.clock, Logger: p.logger, Engine: engine, Signer: signer,
		Sender: sender, Reconciler: reconciler, Provider: provider, Config: outbox.Config{From: from,
			ReplyTo: cfg.MailReplyTo, ListUnsubscribeMailto: cfg.ListUnsubscribeMailto, PublicURL: p.cfg.PublicURL,
			StoreName: cfg.StoreName, StoreURL: cfg.StoreURL, Tracking: true, Lease: cfg.MailLease},
		MarketingHold: p.marketingHold, Sends: kpi.Recorder{}})
	if err != nil {
		return fmt.Errorf("configure mail: %w", err)
	}
	cs, err := consent.New(consent.Options{Outbox: svc, Signer: signer, Clock: p.clock, Logger: p.logger,
		DoubleOptIn: cfg.DoubleOptIn, RateLimit: cfg.SubscribeRateLimit,
		// List hygiene: syntax, disposable domains, typos (setup_hygiene.go).
		CheckAddress: hygiene.AddressCheck{DB: p.db, Checker: p.resolver.Hygiene, RefuseDisposable: p.cfg.RefuseDisposable}.Check})
	if err != nil {
		return fmt.Errorf("configure consent: %w", err)
	}
	p.resolver.Mail, p.resolver.Consent = svc, cs
	if mg != nil {
		p.resolver.SuppressionImporter = func(ctx context.Context) (int, int, error) {
			return importSuppressions(ctx, p, mg)
		}
	}

	if cfg.MailgunWebhookSigningKey != "" {
		route("POST /webhooks/mailgun", "/webhooks/mailgun", &mailgun.WebhookHandler{DB: p.db, SigningKey: cfg.MailgunWebhookSigningKey,
			Window: cfg.MailgunWebhookWindow, Events: kpi.Recorder{}, Clock: p.clock, Logger: p.logger})
	} else {
		route("POST /webhooks/mailgun", "/webhooks/mailgun", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": "REFRAIN_MAILGUN_WEBHOOK_SIGNING_KEY is not set"})
		}))
	}
	route("/u/{token}", "/u", &page.Links{DB: p.db, Consent: cs, Clock: p.clock, Logger: p.logger, StoreName: cfg.StoreName})
	route("GET /outbox", "/outbox", p.adminOnly(&page.Outbox{DB: p.db, Logger: p.logger}))

	p.addWorker("mail-delivery", svc.Run)
	p.addWorker("mail-templates", func(ctx context.Context) error { return reloadTemplates(ctx, p, engine) })
	if mg != nil && cfg.MailgunEventsPollInterval > 0 {
		poller := &tracking.Poller{DB: p.db, Source: mg, Events: kpi.Recorder{}, Clock: p.clock, Logger: p.logger, Interval: cfg.MailgunEventsPollInterval}
		p.addWorker("mailgun-events-poller", poller.Run)
	}
	return nil
}

// Mail returns the mail service: Enqueue and SendBatch for scenarios,
// campaigns and the pressure policy, and the delivery worker's ProcessDue.
func (p *Plugin) Mail() *outbox.Service { return p.resolver.Mail }

// withRequestInfo records the caller's address and User-Agent in the
// request context, for the GraphQL operations that rate limit and keep
// proof (subscribe, confirmSubscription).
func withRequestInfo(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(consent.WithRequest(r.Context(), page.RequestOf(r))))
	})
}

// adminOnly serves next to an admin key with the read scope, given in the
// Authorization header (never in the URL, where it would be logged).
func (p *Plugin) adminOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pr, err := p.authn.Authenticate(r.Context(), r.Header.Get("Authorization"))
		switch {
		case err != nil && !errors.Is(err, auth.ErrUnauthenticated):
			p.logger.ErrorContext(r.Context(), "authenticate admin page", "err", err)
			writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "internal error"})
		case err != nil || pr.Kind == auth.Anonymous:
			w.Header().Set("WWW-Authenticate", `Bearer realm="refrain"`)
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "send an admin API key as Authorization: Bearer <key>"})
		case !pr.IsAdmin() || !pr.Can(auth.ScopeRead):
			writeJSON(w, http.StatusForbidden, map[string]any{"error": "an admin key with the read scope is required"})
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// importSuppressions copies Mailgun's bounce, complaint and unsubscribe
// lists into Refrain's suppression list.
func importSuppressions(ctx context.Context, p *Plugin, mg *mailgun.Sender) (read, added int, err error) {
	reasons := map[string]outbox.Reason{mailgun.ListBounces: outbox.ReasonHardBounce,
		mailgun.ListComplaints: outbox.ReasonComplaint, mailgun.ListUnsubscribes: outbox.ReasonUnsubscribe}
	err = mg.Suppressions(ctx, func(s mailgun.Suppressed) error {
		read++
		created, err := outbox.Suppress(ctx, p.db, p.clock.Now(), s.Address, reasons[s.List], "import", s.Detail)
		if created {
			added++
		}
		return err
	})
	return read, added, err
}

// reloadTemplates picks up templates another replica stored.
func reloadTemplates(ctx context.Context, p *Plugin, engine *template.Engine) error {
	last, err := outbox.TemplatesVersion(ctx, p.db)
	if err != nil {
		return err
	}
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		v, err := outbox.TemplatesVersion(ctx, p.db)
		if err != nil {
			p.logger.WarnContext(ctx, "read stored templates version", "err", err)
			continue
		}
		if v != last {
			if err := outbox.LoadStoredTemplates(ctx, p.db, engine); err != nil {
				p.logger.ErrorContext(ctx, "reload stored templates", "err", err)
				continue
			}
			last = v
		}
	}
}
