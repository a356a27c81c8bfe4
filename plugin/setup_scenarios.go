package plugin

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/mail"
	"github.com/refrain-dev/refrain/plugin/mail/link"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
	"github.com/refrain-dev/refrain/plugin/privacy"
	"github.com/refrain-dev/refrain/plugin/survey"
	"github.com/refrain-dev/refrain/scenarios"
	"github.com/refrain-dev/refrain/scenarios/engine"
	"github.com/refrain-dev/refrain/scenarios/library"
)

// setupScenarios builds the scenario engine on the mail outbox, installs
// the enabled library programs and the store's own files, and registers
// the engine's worker. It runs after setupMail.
func (p *Plugin) setupScenarios(ctx context.Context) error {
	cfg := p.cfg.ScenariosConfig
	svc := p.resolver.Mail
	if svc == nil {
		return errors.New("configure scenarios: the mail service is not set up")
	}
	storeURL := strings.TrimRight(p.cfg.StoreURL, "/")
	if storeURL == "" {
		storeURL = strings.TrimRight(p.cfg.PublicURL, "/")
	}
	surveyURL := cfg.SurveyURL
	if surveyURL == "" {
		surveyURL = storeURL + "/survey"
	}
	eng, err := engine.New(engine.Options{DB: p.db, Clock: p.clock, Logger: p.logger,
		Mailer: OutboxMailer{Outbox: svc}, Templates: svc.Engine(), Gate: pressureGate{policy: p.resolver.Pressure},
		// Audience, exit_when and if rules are segment rules.
		Rules: segmentRules{},
		Erase: privacy.Erase, Membership: segmentRules{}, Links: surveyLinks{base: surveyURL, public: strings.TrimRight(p.cfg.PublicURL, "/"), signer: p.resolver.Links, clock: p.clock}, StoreURL: storeURL,
		StoreAnniversary: cfg.StoreAnniversary, Batch: cfg.ScenariosBatch, Lease: cfg.ScenariosLease, Poll: cfg.ScenariosPoll})
	if err != nil {
		return fmt.Errorf("configure scenarios: %w", err)
	}
	enabled, err := cfg.libraryEnabled()
	if err != nil {
		return fmt.Errorf("setting REFRAIN_SCENARIOS_LIBRARY: %w", err)
	}
	own, err := ReadScenarioDir(cfg.ScenariosDir)
	if err != nil {
		return fmt.Errorf("read scenarios (REFRAIN_SCENARIOS_DIR): %w", err)
	}
	overridden := map[string]bool{}
	for _, f := range own {
		if sc, err := scenarios.Parse(f.Name, f.Data); err == nil {
			overridden[sc.ID] = true
		}
	}
	var files []engine.File
	disable := map[string]bool{}
	for _, f := range library.Files() {
		id := strings.TrimSuffix(filepath.Base(f.Name), ".yaml")
		if overridden[id] {
			continue
		}
		if !enabled[id] {
			disable[id] = true
		}
		file := engine.File{Name: f.Name, Data: f.Data}
		if sc, err := scenarios.Parse(f.Name, f.Data); err == nil && sc.Destructive() && !cfg.libraryNamed(id) {
			// A program that deletes profiles ships paused: a person enables
			// it (setScenarioStatus, or by naming it in
			// REFRAIN_SCENARIOS_LIBRARY) after seeing whom it would touch.
			file.Status = engine.StatusPaused
		}
		files = append(files, file)
	}
	if _, err := eng.Install(ctx, p.db, "library", files, disable); err != nil {
		return fmt.Errorf("install library scenarios: %w", err)
	}
	if _, err := eng.Install(ctx, p.db, "store", own, nil); err != nil {
		return fmt.Errorf("install scenarios (REFRAIN_SCENARIOS_DIR): %w", err)
	}
	p.resolver.Scenarios = eng
	p.starters = append(p.starters, eng.StartFollowing)
	p.addWorker("scenarios", eng.Run)
	return nil
}

// Scenarios returns the scenario engine.
func (p *Plugin) Scenarios() *engine.Engine { return p.resolver.Scenarios }

// ReadScenarioDir reads every *.yaml and *.yml file of dir (none when dir is empty).
func ReadScenarioDir(dir string) ([]engine.File, error) {
	if dir == "" {
		return nil, nil
	}
	var names []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return nil, err
		}
		names = append(names, m...)
	}
	sort.Strings(names)
	out := make([]engine.File, 0, len(names))
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", n, err)
		}
		out = append(out, engine.File{Name: n, Data: data})
	}
	return out, nil
}

// OutboxMailer writes scenario sends as outbox message rows in the
// engine's transaction, with the abandoned cart for cart templates and
// the order for order templates.
type OutboxMailer struct{ Outbox *outbox.Service }

// Send enqueues m and returns the message's public id.
func (o OutboxMailer) Send(ctx context.Context, db bun.IDB, m engine.Message) (string, error) {
	in := outbox.EnqueueInput{CustomerPK: m.CustomerPK, Template: m.Template, Kind: mail.Kind(m.Kind), Values: m.Values,
		Program: m.Program, Scenario: m.Program, Step: m.Step, Variant: m.Variant, IdempotencyKey: m.IdempotencyKey}
	if token, _ := m.Context["cart_token"].(string); token != "" {
		source, _ := m.Context["source"].(string)
		cart, err := outbox.CartOf(ctx, db, source, token, m.Context)
		if err != nil {
			return "", err
		}
		in.Cart = cart
	}
	if id, ok := m.Context["order_id"]; ok && id != nil && id != "" {
		source, _ := m.Context["source"].(string)
		order, err := outbox.OrderOf(ctx, db, source, fmt.Sprint(id), m.Context)
		if err != nil {
			return "", err
		}
		in.Order = order
	}
	msg, _, err := o.Outbox.Enqueue(ctx, db, in)
	if err != nil {
		return "", err
	}
	return msg.ID, nil
}

// KeepURL returns the customer's keep link: the link page with a token
// that keeps them subscribed, bound to their address, valid 60 days.
func (s surveyLinks) KeepURL(c *customer.Customer) string {
	if s.signer == nil || c.EmailNormalized == nil {
		return s.public + "/u/"
	}
	return s.public + "/u/" + s.signer.Sign(link.Keep, c.PublicID, *c.EmailNormalized, s.clock.Now().Add(survey.TokenLifetime))
}

// surveyLinks points ${survey_url} at the survey page for one customer:
// ?customer=<id>&token=<signed>, the token letting the page call
// submitSurvey for that customer without a sign-in (valid 60 days, bound to
// the address the mail went to).
type surveyLinks struct {
	base   string
	public string
	signer *link.Signer
	clock  interface{ Now() time.Time }
}

// SurveyURL returns the survey page with the customer's id and token.
func (s surveyLinks) SurveyURL(c *customer.Customer) string {
	sep := "?"
	if strings.Contains(s.base, "?") {
		sep = "&"
	}
	u := s.base + sep + "customer=" + url.QueryEscape(c.ID())
	if s.signer != nil && c.EmailNormalized != nil {
		u += "&token=" + url.QueryEscape(s.signer.Sign(link.Survey, c.ID(), *c.EmailNormalized, s.clock.Now().Add(survey.TokenLifetime)))
	}
	return u
}
