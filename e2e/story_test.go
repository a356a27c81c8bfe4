package e2e

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/refrain-dev/refrain/plugin/store/storetest"
	"github.com/stretchr/testify/require"
)

const (
	shopifySecret = "e2e-shopify-app-client-secret"
	signingSecret = "e2e-link-signing-secret-0123456789abcdef"
	publicURL     = "https://refrain.e2e.example"
)

// cartScenario is the store's own cart reminder, uploaded through
// upsertScenario: short waits so the story runs in seconds.
const cartScenario = `id: e2e-cart
title: E2E cart reminder
objective: reactivate
kpi: recovered carts
priority: 80
trigger:
  event: cart.abandoned
exit_on:
  - event: cart.converted
    same: [cart_token]
goal:
  event: cart.converted
  same: [cart_token]
  within: 7d
steps:
  - wait: 1s
  - id: reminder
    send: cart-reminder-1h
  - wait: 1h
  - id: second-reminder
    send: cart-reminder-24h
`

// storyDB is where one run of the story keeps its data: the settings that
// point refrain at it.
type storyDB struct {
	name string
	url  string
}

// storyDatabases returns SQLite always and PostgreSQL (a fresh schema) when
// REFRAIN_TEST_POSTGRES_URL is set.
func storyDatabases(t *testing.T) []storyDB {
	dbs := []storyDB{{name: "sqlite"}}
	if os.Getenv(storetest.PostgresURLEnv) != "" {
		dbs = append(dbs, storyDB{name: "postgres"})
	}
	return dbs
}

// open returns the database URL for one test: a SQLite file in its
// temporary directory, or a fresh migrated PostgreSQL schema.
func (d storyDB) open(t *testing.T) string {
	if d.name == "postgres" {
		return storetest.Postgres(t).URL
	}
	return "sqlite:" + filepath.Join(t.TempDir(), "refrain.db")
}

// storySettings are the settings of a refrain that talks to the Mailgun
// capture server and sweeps carts every second.
func storySettings(dbURL string, mg *mailgunServer) map[string]string {
	s := map[string]string{
		"REFRAIN_DATABASE_URL":        dbURL,
		"REFRAIN_PUBLIC_URL":          publicURL,
		"REFRAIN_SHOPIFY_SECRET":      shopifySecret,
		"REFRAIN_SIGNING_SECRET":      signingSecret,
		"REFRAIN_CART_ABANDON_AFTER":  "1m",
		"REFRAIN_CART_SWEEP_INTERVAL": "1s",
		"REFRAIN_SCENARIOS_LIBRARY":   "none",
		"REFRAIN_SCENARIOS_POLL":      "200ms",
		"REFRAIN_SCENARIOS_LEASE":     "2s",
		"REFRAIN_MAIL_LEASE":          "2s",
		"REFRAIN_INBOX_LEASE":         "2s",
		"REFRAIN_STORE_NAME":          "E2E Shop",
		// Quiet hours would hold the reminder when the suite runs at night
		// (the shoppers have no time zone): the policy is tested on its own.
		"REFRAIN_PRESSURE_QUIET_HOURS": "none",
	}
	for k, v := range mg.settings() {
		s[k] = v
	}
	return s
}

// shopifyBody reads a Shopify fixture and changes fields of it.
func shopifyBody(t *testing.T, fixture string, set func(body map[string]any)) []byte {
	t.Helper()
	raw, err := os.ReadFile("../testdata/webhooks/" + fixture)
	require.NoError(t, err)
	var body map[string]any
	require.NoError(t, json.Unmarshal(raw, &body))
	set(body)
	out, err := json.Marshal(body)
	require.NoError(t, err)
	return out
}

// post sends a webhook body with headers and returns the status and body.
func (s *server) post(path string, headers map[string]string, body []byte) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+path, bytes.NewReader(body))
	require.NoError(s.t, err)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// shopify delivers a webhook signed as Shopify signs it: base64
// HMAC-SHA256 of the raw body with the app's client secret.
func (s *server) shopify(topic string, body []byte) {
	s.t.Helper()
	mac := hmac.New(sha256.New, []byte(shopifySecret))
	mac.Write(body)
	status, out := s.post("/webhooks/shopify", map[string]string{
		"X-Shopify-Topic":       topic,
		"X-Shopify-Event-Id":    randomHex(16),
		"X-Shopify-Shop-Domain": "e2e.myshopify.com",
		"X-Shopify-Hmac-Sha256": base64.StdEncoding.EncodeToString(mac.Sum(nil)),
	}, body)
	require.Equal(s.t, http.StatusOK, status, "shopify %s: %s", topic, out)
}

// mailgun delivers a Mailgun webhook.
func (s *server) mailgun(body []byte) {
	s.t.Helper()
	status, out := s.post("/webhooks/mailgun", nil, body)
	require.Equal(s.t, http.StatusOK, status, "mailgun webhook: %s", out)
}

// uploadScenario installs and activates a scenario through GraphQL.
func (s *server) uploadScenario(def string) {
	s.t.Helper()
	var up struct {
		Refrain struct {
			UpsertScenario struct {
				Scenario   *struct{ ID, Status string }
				UserErrors []struct{ Message string }
			} `json:"upsertScenario"`
		}
	}
	s.admin(`mutation($d: String!) { refrain { upsertScenario(definition: $d) { scenario { id status } userErrors { message } } } }`,
		map[string]any{"d": def}, &up)
	require.Empty(s.t, up.Refrain.UpsertScenario.UserErrors)
	sc := up.Refrain.UpsertScenario.Scenario
	require.NotNil(s.t, sc)
	if sc.Status != "ACTIVE" {
		s.admin(`mutation($id: ID!) { refrain { setScenarioStatus(id: $id, status: ACTIVE) { userErrors { message } } } }`,
			map[string]any{"id": sc.ID}, nil)
	}
}

// shopper is one customer of the story with the ids of their checkout.
type shopper struct {
	id       int64
	email    string
	checkout string
	cart     string
}

func newShopper(n int64, tag string) shopper {
	return shopper{id: 7_100_000_000 + n, email: fmt.Sprintf("shopper%d.%s@e2e-shop.example", n, tag),
		checkout: fmt.Sprintf("chk-%s-%d", tag, n), cart: fmt.Sprintf("cart-%s-%d", tag, n)}
}

func (p shopper) gid() string { return fmt.Sprintf("gid://shopify/Customer/%d", p.id) }

// signUp delivers customers/create with marketing consent.
func (s *server) signUp(p shopper) {
	s.t.Helper()
	now := time.Now().UTC().Format(time.RFC3339)
	s.shopify("customers/create", shopifyBody(s.t, "shopify_customers_create.json", func(b map[string]any) {
		b["id"] = p.id
		b["admin_graphql_api_id"] = p.gid()
		b["email"] = p.email
		b["first_name"] = "Mia"
		b["created_at"], b["updated_at"] = now, now
		b["email_marketing_consent"] = map[string]any{"state": "subscribed", "opt_in_level": "single_opt_in", "consent_updated_at": now}
		if da, ok := b["default_address"].(map[string]any); ok {
			da["customer_id"] = p.id
		}
	}))
}

// leaveCheckout delivers checkouts/update for a checkout last touched
// idle ago, so the sweep abandons it.
func (s *server) leaveCheckout(p shopper, idle time.Duration) {
	s.t.Helper()
	at := time.Now().UTC().Add(-idle).Format(time.RFC3339)
	s.shopify("checkouts/update", shopifyBody(s.t, "shopify_checkouts_update.json", func(b map[string]any) {
		b["token"], b["cart_token"] = p.checkout, p.cart
		b["email"] = p.email
		b["created_at"], b["updated_at"] = at, at
		b["abandoned_checkout_url"] = "https://e2e-shop.example/checkouts/" + p.checkout + "/recover"
		setCustomer(b, p)
	}))
}

// setCustomer makes the embedded customer of a payload the shopper.
func setCustomer(b map[string]any, p shopper) {
	c := b["customer"].(map[string]any)
	c["id"], c["admin_graphql_api_id"], c["email"], c["first_name"] = p.id, p.gid(), p.email, "Mia"
	if da, ok := c["default_address"].(map[string]any); ok {
		da["customer_id"] = p.id
	}
}

// order delivers orders/create for the shopper's checkout, paid, for total EUR.
func (s *server) order(p shopper, orderID int64, total string) {
	s.t.Helper()
	now := time.Now().UTC().Format(time.RFC3339)
	s.shopify("orders/create", shopifyBody(s.t, "shopify_orders_create.json", func(b map[string]any) {
		b["id"] = orderID
		b["admin_graphql_api_id"] = fmt.Sprintf("gid://shopify/Order/%d", orderID)
		b["email"], b["contact_email"] = p.email, p.email
		b["checkout_token"], b["cart_token"] = p.checkout, p.cart
		b["created_at"], b["updated_at"], b["processed_at"] = now, now, now
		b["total_price"], b["current_total_price"], b["subtotal_price"] = total, total, total
		b["currency"], b["presentment_currency"] = "EUR", "EUR"
		b["financial_status"] = "paid"
		b["cancelled_at"], b["cancel_reason"] = nil, nil
		money := map[string]any{"amount": total, "currency_code": "EUR"}
		b["total_price_set"] = map[string]any{"shop_money": money, "presentment_money": money}
		b["current_total_price_set"] = map[string]any{"shop_money": money, "presentment_money": money}
		setCustomer(b, p)
	}))
}

// dump logs what refrain holds about a shopper, to explain a failure.
func (s *server) dump(p shopper) {
	for _, q := range []string{
		`query($id: ID) { refrain { customer(id: $id) { id consent { state } hygiene { status } lifecycle { stage ordersCount } carts { token status lastActivityAt abandonedAt } enrollments { scenario step state nextRunAt } events(first: 20) { nodes { type occurredAt properties } } } } }`,
		`{ refrain { outbox(first: 20) { nodes { to state lastError attempts template scenario step } } } }`,
		`{ refrain { inboundEvents(first: 20) { nodes { topic status lastError } } } }`,
	} {
		res := s.gql(adminKey, q, map[string]any{"id": p.gid()})
		s.t.Logf("%s\n=> %s %v", q, res.Data, res.Errors)
	}
}

// waitDeliveries waits until the capture server holds n deliveries to addr.
func waitDeliveries(t *testing.T, mg *mailgunServer, addr string, n int, within time.Duration) []delivery {
	t.Helper()
	eventually(t, within, fmt.Sprintf("%d mail(s) to %s at the Mailgun server", n, addr), func() bool {
		return len(mg.to(addr)) >= n
	})
	return mg.to(addr)
}

// The whole story on the built binary, through HTTP only: a shopper signs
// up, leaves a checkout, the store's own scenario (uploaded through
// GraphQL) sends the reminder through Mailgun, Mailgun reports delivery,
// open and click, the order converts the cart, and the KPIs show it.
func TestStory(t *testing.T) {
	for _, d := range storyDatabases(t) {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			mg := newMailgunServer(t)
			r := startRefrain(t, storySettings(d.open(t), mg))
			r.uploadScenario(cartScenario)

			p := newShopper(1, d.name)
			t.Cleanup(func() {
				if t.Failed() {
					r.dump(p)
				}
			})
			r.signUp(p)
			r.leaveCheckout(p, 2*time.Minute)

			// The sweep abandons the checkout, the scenario waits a second
			// and sends the reminder through Mailgun.
			got := waitDeliveries(t, mg, p.email, 1, 45*time.Second)[0]
			var out struct {
				Refrain struct {
					Outbox struct {
						Nodes []struct {
							ID, State, Template, Program, Scenario, Step string
							ProviderMessageID                            *string
						}
					}
				}
			}
			r.admin(`query($to: String) { refrain { outbox(to: $to) { nodes { id state template program scenario step providerMessageId } } } }`,
				map[string]any{"to": p.email}, &out)
			require.Len(t, out.Refrain.Outbox.Nodes, 1)
			msg := out.Refrain.Outbox.Nodes[0]
			require.Equal(t, "cart-reminder-1h", msg.Template)
			require.Equal(t, "e2e-cart", msg.Scenario)
			// What Mailgun received: the message id and program as user
			// variables, one-click unsubscribe headers pointing at Refrain.
			require.Equal(t, msg.ID, got.MessageID, "v:message_id is the message's id")
			require.Equal(t, "e2e-cart", got.Vars["program"])
			require.Equal(t, "reminder", got.Vars["step"])
			require.Contains(t, got.Headers["List-Unsubscribe"], "<"+publicURL+"/u/")
			require.Equal(t, "List-Unsubscribe=One-Click", got.Headers["List-Unsubscribe-Post"])
			require.NotEmpty(t, got.Subject)
			eventually(t, 10*time.Second, "the message is marked sent with Mailgun's id", func() bool {
				r.admin(`query($to: String) { refrain { outbox(to: $to) { nodes { id state template program scenario step providerMessageId } } } }`,
					map[string]any{"to": p.email}, &out)
				m := out.Refrain.Outbox.Nodes[0]
				return m.State == "sent" && m.ProviderMessageID != nil && *m.ProviderMessageID == got.ProviderID
			})

			// Mailgun reports delivery, the open and the click.
			r.mailgun(mailgunEvent(t, "mailgun_delivered.json", got, nil))
			r.mailgun(mailgunEvent(t, "mailgun_opened.json", got, nil))
			r.mailgun(mailgunEvent(t, "mailgun_clicked.json", got, func(data map[string]any) {
				data["url"] = "https://e2e-shop.example/checkouts/" + p.checkout + "/recover"
				// A person clicks a minute after the send; a click seconds
				// after it is a link scanner's and is not counted.
				data["timestamp"] = float64(time.Now().Add(time.Minute).UnixNano()) / 1e9
			}))
			var eng struct {
				Refrain struct {
					Customer struct {
						Engagement struct{ LastOpenAt, LastClickAt *string }
						Lifecycle  struct {
							Stage       string
							OrdersCount int
						}
						Carts []struct{ Status string }
					}
				}
			}
			const custQ = `query($id: ID) { refrain { customer(id: $id) { engagement { lastOpenAt lastClickAt } lifecycle { stage ordersCount } carts { status } } } }`
			r.admin(custQ, map[string]any{"id": p.gid()}, &eng)
			require.NotNil(t, eng.Refrain.Customer.Engagement.LastOpenAt, "the opened webhook recorded the open")
			require.NotNil(t, eng.Refrain.Customer.Engagement.LastClickAt, "the clicked webhook recorded the click")

			// The order from the same checkout converts the cart and ends the
			// scenario. Shopify dates orders to the whole second: a moment
			// passes so that the order is placed after the click it follows
			// (attribution looks back from the placed time).
			time.Sleep(1100 * time.Millisecond)
			r.order(p, 9_100_000_001, "89.90")
			eventually(t, 20*time.Second, "the order converts the cart", func() bool {
				r.admin(custQ, map[string]any{"id": p.gid()}, &eng)
				c := eng.Refrain.Customer
				return c.Lifecycle.OrdersCount == 1 && len(c.Carts) == 1 && c.Carts[0].Status == "CONVERTED"
			})
			var sc struct {
				Refrain struct {
					Scenario struct {
						Counts struct{ Active, Exited, Completed, Goals int }
					}
				}
			}
			eventually(t, 20*time.Second, "the enrollment leaves on the conversion and counts the goal", func() bool {
				r.admin(`{ refrain { scenario(id: "e2e-cart") { counts { active exited completed goals } } } }`, nil, &sc)
				c := sc.Refrain.Scenario.Counts
				return c.Active == 0 && c.Goals == 1
			})
			// One reminder, the second one never comes: exactly one mail.
			require.Len(t, mg.to(p.email), 1)

			t.Run("kpis", func(t *testing.T) {
				checkKPIs(t, r, "e2e-cart", 8990)
			})
		})
	}
}
