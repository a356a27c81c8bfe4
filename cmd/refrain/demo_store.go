package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin"
	"github.com/refrain-dev/refrain/plugin/campaign"
	"github.com/refrain-dev/refrain/plugin/commerce"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/kpi"
	"github.com/refrain-dev/refrain/plugin/mail"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
	"github.com/refrain-dev/refrain/plugin/ptr"
)

// DemoOptions says how big a demo store seedDemo makes.
type DemoOptions struct {
	// Customers is how many customers to generate (at least 1).
	Customers int
	// Seed makes the generated store the same from one run to the next.
	Seed uint64
}

// DemoSummary counts what seedDemo wrote.
type DemoSummary struct {
	Customers, Orders, Carts, AbandonedCarts, OpenCarts, Messages, MessageEvents, Events int
	// Conversions is how many orders are attributed to a mail (a click within
	// the click window, else an open within the open window).
	Conversions int
	// RevenueMinor is the total of the orders, in EUR cents.
	RevenueMinor int64
	// SampleCustomer is the store id of a customer with orders, opens and a cart, for the tour.
	SampleCustomer string
}

// demoBatch is how many rows one INSERT carries.
const demoBatch = 400

var (
	demoFirstNames = []string{"Ann", "Ben", "Chloé", "David", "Emma", "Farid", "Grace", "Hugo", "Inès", "Jonas", "Kenji", "Léa",
		"Marta", "Noah", "Olga", "Pablo", "Quentin", "Rosa", "Sami", "Tess", "Ugo", "Vera", "Wen", "Yara", "Zoé"}
	demoLastNames = []string{"Archer", "Baker", "Carter", "Dubois", "Evans", "Fischer", "Garcia", "Haddad", "Ito", "Jensen",
		"Kowalski", "Lambert", "Moreau", "Nakamura", "Olsen", "Petit", "Rossi", "Schmidt", "Tanaka", "Weber"}
	demoLocales   = []string{"en", "en", "en", "fr", "fr", "de"}
	demoTimeZones = map[string]string{"en": "Europe/London", "fr": "Europe/Paris", "de": "Europe/Berlin"}
	demoProducts  = []commerce.Item{
		{ProductID: "p1", SKU: "TEE-ORG", Title: "Organic cotton tee", PriceMinor: 2900},
		{ProductID: "p2", SKU: "HOOD-GRY", Title: "Grey hoodie", PriceMinor: 6900},
		{ProductID: "p3", SKU: "CAP-NVY", Title: "Navy cap", PriceMinor: 2200},
		{ProductID: "p4", SKU: "SNK-WHT", Title: "White sneakers", PriceMinor: 11900},
		{ProductID: "p5", SKU: "BAG-CNV", Title: "Canvas tote", PriceMinor: 1800},
		{ProductID: "p6", SKU: "JKT-RAIN", Title: "Rain jacket", PriceMinor: 14900},
	}
)

// seedDemo fills an empty database with a generated store: customers who
// signed up over the past year, their orders, carts (converted, abandoned,
// and a few open ones that the abandonment sweep will pick up once the
// service runs) and the mail they received with its deliveries, opens and
// clicks. Everything is written in one transaction with batched inserts.
// Customer events are history: the scenario engine starts after them and
// does not replay them (engine.FollowEvents), so only what happens after
// the start (the open carts being abandoned) fires programs.
func seedDemo(ctx context.Context, p *plugin.Plugin, opts DemoOptions) (DemoSummary, error) {
	if opts.Customers < 1 {
		return DemoSummary{}, fmt.Errorf("demo: the number of customers must be at least 1, not %d", opts.Customers)
	}
	var existing int
	if err := p.DB().NewSelect().Model((*customer.Customer)(nil)).ColumnExpr("COUNT(*)").Scan(ctx, &existing); err != nil {
		return DemoSummary{}, fmt.Errorf("demo: count customers: %w", err)
	}
	if existing > 0 {
		return DemoSummary{}, errors.New("demo: the database already holds customers; the demo needs an empty one")
	}
	g := &demoGen{rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)), now: p.Clock().Now().UTC().Truncate(time.Second),
		th: p.Config().StorefrontConfig.Thresholds()}
	g.generate(opts.Customers)
	g.results()
	var sum DemoSummary
	err := p.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if sum, err = g.write(ctx, tx); err != nil {
			return err
		}
		if err := g.writeResults(ctx, tx); err != nil {
			return err
		}
		sum.Conversions, err = g.rollups(ctx, tx, p.Attributor())
		return err
	})
	return sum, err
}

// demoGen generates the rows of a demo store before they are written.
type demoGen struct {
	rng *rand.Rand
	now time.Time
	th  customer.Thresholds

	customers []*customer.Customer
	// Per customer, by index: its orders, carts and messages (with events).
	orders   [][]*commerce.Order
	carts    [][]*commerce.Cart
	messages [][]*demoMessage
	sample   int
	// What results adds: a sent A/B campaign and win-back entries.
	campaign    *campaign.Campaign
	enrollments []demoEnrollment
}

type demoMessage struct {
	msg    *outbox.Message
	events []*outbox.MessageEvent
}

func (g *demoGen) between(a, b time.Time) time.Time {
	if !b.After(a) {
		return a
	}
	return a.Add(time.Duration(g.rng.Int64N(int64(b.Sub(a))))).Truncate(time.Second)
}

func (g *demoGen) generate(n int) {
	yearAgo := g.now.AddDate(-1, 0, 0)
	eur := "EUR"
	msgN := 0
	for i := 0; i < n; i++ {
		first := demoFirstNames[g.rng.IntN(len(demoFirstNames))]
		last := demoLastNames[g.rng.IntN(len(demoLastNames))]
		locale := demoLocales[g.rng.IntN(len(demoLocales))]
		email := fmt.Sprintf("%s.%s.%d@example.com", asciiLower(first), asciiLower(last), i+1)
		created := g.between(yearAgo, g.now.Add(-24*time.Hour))
		c := &customer.Customer{PublicID: customer.NewPublicID(),
			ExternalID: ptr.To(fmt.Sprintf("gid://shopify/Customer/%d", 7000001+i)), ExternalSource: ptr.To("shopify"),
			Email: ptr.To(email), EmailNormalized: ptr.To(email), FirstName: ptr.To(first), LastName: ptr.To(last),
			Locale: ptr.To(locale), TimeZone: ptr.To(demoTimeZones[locale]), Source: "shopify",
			ConsentState: customer.ConsentSubscribed, ConsentAt: ptr.To(created), ConsentSource: ptr.To("shopify"),
			ConsentMethod: ptr.To("checkout"), ConsentProof: map[string]any{"source": "demo"},
			Attributes: map[string]any{}, Preferences: map[string]any{}, Tags: []string{},
			// The demo writes a year of mail and opens: Refrain has
			// observed these customers since they signed up.
			ObservedSince: ptr.To(created), CreatedAt: created, UpdatedAt: created}
		switch r := g.rng.IntN(100); {
		case r < 8:
			c.ConsentState = customer.ConsentUnsubscribed
		case r < 13:
			c.ConsentState, c.ConsentAt, c.ConsentMethod = customer.ConsentNotSubscribed, nil, nil
		}
		if g.rng.IntN(10) == 0 {
			c.Tags = []string{"vip"}
		}

		// Orders: most customers order once or never, a few often.
		var count int
		switch r := g.rng.IntN(100); {
		case r < 40:
		case r < 70:
			count = 1
		case r < 85:
			count = 2
		case r < 95:
			count = 3 + g.rng.IntN(3)
		default:
			count = 6 + g.rng.IntN(7)
		}
		var orders []*commerce.Order
		for k := 0; k < count; k++ {
			placed := g.between(created, g.now.Add(-time.Hour))
			items, total := g.items()
			o := &commerce.Order{Source: "shopify", ExternalID: fmt.Sprintf("gid://shopify/Order/%d", 5000000+i*20+k),
				Number: ptr.To(fmt.Sprintf("#%d", 1001+i*20+k)), Status: "fulfilled", TotalMinor: total, Currency: &eur,
				Items: items, ContactEmail: c.Email, PlacedAt: placed, PaidAt: ptr.To(placed.Add(time.Minute)),
				Counted: true, CreatedAt: placed, UpdatedAt: placed}
			if placed.Before(g.now.Add(-72 * time.Hour)) {
				o.FulfilledAt = ptr.To(placed.Add(48 * time.Hour))
			}
			orders = append(orders, o)
			c.OrdersCount++
			c.TotalSpentMinor += total
			c.Currency = &eur
			if c.FirstOrderAt == nil || placed.Before(*c.FirstOrderAt) {
				c.FirstOrderAt = ptr.To(placed)
			}
			if c.LastOrderAt == nil || placed.After(*c.LastOrderAt) {
				c.LastOrderAt = ptr.To(placed)
			}
		}

		// Carts: converted with an order, abandoned, or still open.
		var carts []*commerce.Cart
		if len(orders) > 0 && g.rng.IntN(2) == 0 {
			o := orders[g.rng.IntN(len(orders))]
			tok := fmt.Sprintf("demo-cart-%d-c", i)
			o.CartToken = &tok
			carts = append(carts, &commerce.Cart{Source: "shopify", Token: tok, CartToken: &tok, Email: c.Email,
				Items: o.Items, ValueMinor: o.TotalMinor, Currency: &eur, Status: commerce.CartConverted,
				LastActivityAt: o.PlacedAt.Add(-10 * time.Minute), ConvertedAt: ptr.To(o.PlacedAt), OrderExternalID: &o.ExternalID,
				CreatedAt: o.PlacedAt.Add(-30 * time.Minute), UpdatedAt: o.PlacedAt})
		}
		switch r := g.rng.IntN(100); {
		case r < 20:
			at := g.between(created, g.now.Add(-2*time.Hour))
			items, total := g.items()
			tok := fmt.Sprintf("demo-cart-%d-a", i)
			carts = append(carts, &commerce.Cart{Source: "shopify", Token: tok, CartToken: &tok, Email: c.Email,
				Items: items, ValueMinor: total, Currency: &eur, RecoveryURL: ptr.To("https://shop.example/cart/recover/" + tok),
				Status: commerce.CartAbandoned, LastActivityAt: at, AbandonedAt: ptr.To(at.Add(time.Hour)),
				CreatedAt: at.Add(-15 * time.Minute), UpdatedAt: at.Add(time.Hour)})
		case r < 23:
			// Idle for 61 to 120 minutes: the sweep abandons it right after the start.
			at := g.now.Add(-time.Duration(61+g.rng.IntN(60)) * time.Minute)
			items, total := g.items()
			tok := fmt.Sprintf("demo-cart-%d-o", i)
			carts = append(carts, &commerce.Cart{Source: "shopify", Token: tok, CartToken: &tok, Email: c.Email,
				Items: items, ValueMinor: total, Currency: &eur, RecoveryURL: ptr.To("https://shop.example/cart/recover/" + tok),
				Status: commerce.CartOpen, LastActivityAt: at, CreatedAt: at.Add(-5 * time.Minute), UpdatedAt: at})
		}

		// Mail: the welcome at sign-up, a monthly newsletter, a reminder per
		// abandoned cart and a win-back for the lapsed.
		var msgs []*demoMessage
		if c.ConsentState == customer.ConsentSubscribed {
			send := func(program, scenario, template, subject string, at time.Time, campaign *string) {
				msgN++
				msgs = append(msgs, g.message(c, msgN, program, scenario, template, subject, at, campaign))
			}
			send("build", "welcome", "welcome", "Welcome to the store, "+first, created.Add(2*time.Minute), nil)
			for m := created.AddDate(0, 1, 0); m.Before(g.now); m = m.AddDate(0, 1, 0) {
				if g.rng.IntN(3) > 0 {
					name := "newsletter-" + m.Format("2006-01")
					send("maintain", "", "newsletter", "News of "+m.Format("January"), m, &name)
				}
			}
			for _, ct := range carts {
				if ct.Status == commerce.CartAbandoned {
					send("retain", "cart-abandonment", "cart-reminder-1h", "You left something in your cart", ct.AbandonedAt.Add(time.Hour), nil)
				}
			}
			stage := customer.StageOf(c, g.now, g.th, false)
			if stage == customer.StageAtRisk || stage == customer.StageLapsed {
				send("reactivate", "win-back", "win-back", "We miss you, "+first, g.between(c.LastOrderAt.AddDate(0, 4, 0), g.now), nil)
			}
		}
		for _, m := range msgs {
			for _, ev := range m.events {
				switch ev.Kind {
				case mail.EventOpened:
					if c.LastOpenAt == nil || ev.OccurredAt.After(*c.LastOpenAt) {
						c.LastOpenAt = ptr.To(ev.OccurredAt)
					}
				case mail.EventClicked:
					if c.LastClickAt == nil || ev.OccurredAt.After(*c.LastClickAt) {
						c.LastClickAt = ptr.To(ev.OccurredAt)
					}
				}
			}
		}
		c.Stage = string(customer.StageOf(c, g.now, g.th, false))
		c.StageSince = ptr.To(created)
		if c.LastOrderAt != nil {
			c.StageSince = c.LastOrderAt
		}
		g.customers = append(g.customers, c)
		g.orders = append(g.orders, orders)
		g.carts = append(g.carts, carts)
		g.messages = append(g.messages, msgs)
		if g.sample == 0 && len(orders) >= 2 && len(msgs) >= 3 && c.LastOpenAt != nil {
			g.sample = i + 1
		}
	}
}

// asciiLower lower-cases a name and drops its accents, for an address.
func asciiLower(s string) string {
	r := strings.NewReplacer("é", "e", "è", "e", "ç", "c")
	return strings.ToLower(r.Replace(s))
}

func (g *demoGen) items() ([]commerce.Item, int64) {
	n := 1 + g.rng.IntN(3)
	var items []commerce.Item
	var total int64
	for k := 0; k < n; k++ {
		it := demoProducts[g.rng.IntN(len(demoProducts))]
		it.Quantity = int64(1 + g.rng.IntN(2))
		total += it.PriceMinor * it.Quantity
		items = append(items, it)
	}
	return items, total
}

// message makes one sent marketing message and the events Mailgun would
// have reported: delivered (97%), opened (45% of those, a tenth by a
// machine), clicked (a quarter of the human opens).
func (g *demoGen) message(c *customer.Customer, n int, program, scenario, template, subject string, at time.Time, campaign *string) *demoMessage {
	if at.After(g.now) {
		at = g.now.Add(-time.Minute)
	}
	id := fmt.Sprintf("demo_msg_%07d", n)
	body := fmt.Sprintf("Hello %s,\n\n%s.\n", *c.FirstName, subject)
	m := &outbox.Message{ID: id, IdempotencyKey: "demo:" + id, Recipient: *c.Email, RecipientName: c.FirstName,
		Template: template, Values: map[string]any{}, Locale: c.Locale, Kind: mail.KindMarketing, Subject: subject,
		HTML: "<p>" + strings.ReplaceAll(body, "\n", "<br>") + "</p>", Text: body, Program: &program, Campaign: campaign,
		State: outbox.StateSent, Provider: ptr.To("outbox"), ProviderMessageID: ptr.To("<" + id + "@demo.refrain>"),
		Attempts: 1, NextAttemptAt: at, SentAt: &at, CreatedAt: at, UpdatedAt: at}
	if scenario != "" {
		m.Scenario = &scenario
		m.Step = ptr.To(template)
	}
	dm := &demoMessage{msg: m}
	ev := func(kind mail.EventKind, after time.Duration, url *string, machine bool) {
		t := at.Add(after).Truncate(time.Second)
		if t.After(g.now) {
			t = g.now
		}
		dm.events = append(dm.events, &outbox.MessageEvent{ProviderEventID: fmt.Sprintf("%s-%s", id, kind), Provider: "outbox",
			Kind: kind, OccurredAt: t, Recipient: c.Email, URL: url, MachineOpen: machine, Raw: map[string]any{}, CreatedAt: t})
	}
	if g.rng.IntN(100) >= 97 {
		return dm
	}
	ev(mail.EventDelivered, 5*time.Second, nil, false)
	if g.rng.IntN(100) >= 45 {
		return dm
	}
	machine := g.rng.IntN(10) == 0
	ev(mail.EventOpened, time.Duration(1+g.rng.IntN(48*60))*time.Minute, nil, machine)
	if !machine && g.rng.IntN(4) == 0 {
		ev(mail.EventClicked, time.Duration(49*60+g.rng.IntN(60))*time.Minute, ptr.To("https://shop.example/?utm_campaign="+template), false)
	}
	return dm
}

// write inserts the generated rows in batches and links them by the row ids
// the database gives back.
func (g *demoGen) write(ctx context.Context, tx bun.Tx) (DemoSummary, error) {
	var sum DemoSummary
	if err := insertBatches(ctx, tx, g.customers); err != nil {
		return sum, fmt.Errorf("demo: insert customers: %w", err)
	}
	// Hygiene: every generated address is a plain one.
	if _, err := tx.NewUpdate().Table("customers").Set("hygiene_status = ?", "OK").Where("hygiene_status IS NULL").Exec(ctx); err != nil {
		return sum, fmt.Errorf("demo: hygiene status: %w", err)
	}
	var orders []*commerce.Order
	var carts []*commerce.Cart
	var msgs []*outbox.Message
	var events []*customer.Event
	event := func(c *customer.Customer, typ string, at time.Time, props map[string]any) {
		events = append(events, &customer.Event{CustomerPK: c.PK, Type: typ, OccurredAt: at, Properties: props, Source: "demo", CreatedAt: at})
	}
	for i, c := range g.customers {
		event(c, "customer.created", c.CreatedAt, map[string]any{"source": "shopify"})
		for _, o := range g.orders[i] {
			o.CustomerPK = &c.PK
			orders = append(orders, o)
			sum.RevenueMinor += o.TotalMinor
			event(c, "order.created", o.PlacedAt, map[string]any{"orderId": o.ExternalID, "total": o.TotalMinor, "currency": "EUR"})
		}
		for _, ct := range g.carts[i] {
			ct.CustomerPK = &c.PK
			carts = append(carts, ct)
			switch ct.Status {
			case commerce.CartAbandoned:
				sum.AbandonedCarts++
				event(c, "cart.abandoned", *ct.AbandonedAt, map[string]any{"token": ct.Token, "value": ct.ValueMinor, "currency": "EUR"})
			case commerce.CartOpen:
				sum.OpenCarts++
			case commerce.CartConverted:
				event(c, "cart.converted", *ct.ConvertedAt, map[string]any{"token": ct.Token, "orderId": *ct.OrderExternalID})
			}
		}
		for _, m := range g.messages[i] {
			m.msg.CustomerPK = &c.PK
			msgs = append(msgs, m.msg)
		}
	}
	if err := insertBatches(ctx, tx, orders); err != nil {
		return sum, fmt.Errorf("demo: insert orders: %w", err)
	}
	if err := insertBatches(ctx, tx, carts); err != nil {
		return sum, fmt.Errorf("demo: insert carts: %w", err)
	}
	if err := insertBatches(ctx, tx, msgs); err != nil {
		return sum, fmt.Errorf("demo: insert messages: %w", err)
	}
	var mevents []*outbox.MessageEvent
	for i, c := range g.customers {
		for _, m := range g.messages[i] {
			for _, ev := range m.events {
				ev.MessagePK, ev.CustomerPK = &m.msg.PK, &c.PK
				mevents = append(mevents, ev)
				switch ev.Kind {
				case mail.EventOpened:
					event(c, "email.opened", ev.OccurredAt, map[string]any{"messageId": m.msg.ID, "template": m.msg.Template})
				case mail.EventClicked:
					event(c, "email.clicked", ev.OccurredAt, map[string]any{"messageId": m.msg.ID, "url": *ev.URL})
				}
			}
		}
	}
	if err := insertBatches(ctx, tx, mevents); err != nil {
		return sum, fmt.Errorf("demo: insert message events: %w", err)
	}
	if err := insertBatches(ctx, tx, events); err != nil {
		return sum, fmt.Errorf("demo: insert customer events: %w", err)
	}
	// The scenario engine follows the event log from here: the history does
	// not fire programs, what happens from the start on (the open carts the
	// sweep abandons) does, whichever worker runs first.
	var last int64
	if err := tx.NewSelect().Model((*customer.Event)(nil)).ColumnExpr("COALESCE(MAX(id), 0)").Scan(ctx, &last); err != nil {
		return sum, fmt.Errorf("demo: last event: %w", err)
	}
	if _, err := tx.NewRaw(`INSERT INTO scenario_cursors (name, position, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position`, "events", last, g.now).Exec(ctx); err != nil {
		return sum, fmt.Errorf("demo: start the scenario engine after the history: %w", err)
	}
	sum.Customers, sum.Orders, sum.Carts = len(g.customers), len(orders), len(carts)
	sum.Messages, sum.MessageEvents, sum.Events = len(msgs), len(mevents), len(events)
	if g.sample > 0 {
		sum.SampleCustomer = g.customers[g.sample-1].ID()
	} else {
		sum.SampleCustomer = g.customers[0].ID()
	}
	return sum, nil
}

// rollups counts the history into the engagement rollups the KPIs and the
// dashboard read, the way the outbox, the Mailgun events and the orders
// count them as they happen: the sends, each message's first delivery,
// open and click, and each order attributed to the mail before it.
func (g *demoGen) rollups(ctx context.Context, tx bun.Tx, attr *kpi.Attributor) (int, error) {
	byHour := map[time.Time][]kpi.Dims{}
	for _, msgs := range g.messages {
		for _, m := range msgs {
			h := kpi.Hour(*m.msg.SentAt)
			byHour[h] = append(byHour[h], kpi.DimsOf(m.msg))
		}
	}
	for h, dims := range byHour {
		if err := kpi.CountSent(ctx, tx, h, dims); err != nil {
			return 0, fmt.Errorf("demo: %w", err)
		}
	}
	for _, msgs := range g.messages {
		for _, m := range msgs {
			km := kpi.MessageOf(m.msg)
			for _, ev := range m.events {
				if err := kpi.CountEvent(ctx, tx, km, ev.Kind, "", ev.MachineOpen, ev.OccurredAt); err != nil {
					return 0, fmt.Errorf("demo: %w", err)
				}
			}
		}
	}
	conversions := 0
	for _, orders := range g.orders {
		for _, o := range orders {
			at, err := attr.Attribute(ctx, tx, o.PlacedAt, o)
			if err != nil {
				return 0, fmt.Errorf("demo: %w", err)
			}
			if at != nil && at.MessagePK != 0 {
				conversions++
			}
		}
	}
	return conversions, nil
}

// insertBatches inserts rows demoBatch at a time; the database fills in
// their ids.
func insertBatches[T any](ctx context.Context, tx bun.Tx, rows []*T) error {
	for len(rows) > 0 {
		n := min(len(rows), demoBatch)
		chunk := rows[:n]
		if _, err := tx.NewInsert().Model(&chunk).Exec(ctx); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}
