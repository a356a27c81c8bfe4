package plugin_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/refrain-dev/refrain/plugin"
	"github.com/refrain-dev/refrain/plugin/commerce"
	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/inbox"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
	"github.com/refrain-dev/refrain/plugin/storefront"
	"github.com/stretchr/testify/require"
)

const (
	testShopifySecret = "shpss_test_client_secret"
	testSaleorSecret  = "saleor-legacy-secret"
	testBCSecret      = "bigcommerce-client-secret"
	testWooSecret     = "woocommerce-webhook-secret"
)

var testStandardKey = []byte("standard-webhooks-test-key-0123456789")

func testStandardSecret() string {
	return "whsec_" + base64.StdEncoding.EncodeToString(testStandardKey)
}

// webhookFixtures is the shared fixture folder, beside the repository.
func webhookFixtures() string { return filepath.Join("..", "testdata", "webhooks") }

func readWebhookFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(webhookFixtures(), name))
	require.NoError(t, err)
	return b
}

// hooks is a plugin env with every storefront connected and a Saleor JWKS.
type hooks struct {
	*env
	saleorKey *rsa.PrivateKey
	otherKey  *rsa.PrivateKey
	seq       int
}

func newHooks(t *testing.T, db *storetest.DB, mutate func(*plugin.Config)) *hooks {
	t.Helper()
	jw := newJWKSServer(t)
	key := mustRSA(t)
	jw.setRSA("k1", &key.PublicKey)
	e := newEnv(t, db, func(c *plugin.Config) {
		c.ShopifySecret = testShopifySecret
		c.SaleorJWKSURL = jw.serve.URL + "/.well-known/jwks.json"
		c.SaleorSecret = testSaleorSecret
		c.BigCommerceSecret = testBCSecret
		c.WooCommerceSecret = testWooSecret
		c.StandardWebhookSecret = testStandardSecret()
		if mutate != nil {
			mutate(c)
		}
	})
	return &hooks{env: e, saleorKey: key, otherKey: mustRSA(t)}
}

func hmacB64(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// saleorJWS signs body the way Saleor does: a detached RS256 JWS with an
// unencoded payload.
func saleorJWS(t *testing.T, key *rsa.PrivateKey, kid string, body []byte) string {
	t.Helper()
	header := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"alg":"RS256","kid":%q,"b64":false,"crit":["b64"]}`, kid)))
	digest := sha256.Sum256(append([]byte(header+"."), body...))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	require.NoError(t, err)
	return header + ".." + base64.RawURLEncoding.EncodeToString(sig)
}

// sign returns the headers a platform would send with body. id is the
// delivery's event id where the platform has one.
func (h *hooks) sign(src event.Source, topic, id string, body []byte) http.Header {
	hd := http.Header{}
	hd.Set("Content-Type", "application/json")
	now := h.clock.Now()
	switch src {
	case event.SourceShopify:
		hd.Set("X-Shopify-Topic", topic)
		hd.Set("X-Shopify-Event-Id", id)
		hd.Set("X-Shopify-Shop-Domain", "example.myshopify.com")
		hd.Set("X-Shopify-Hmac-Sha256", hmacB64(testShopifySecret, body))
	case event.SourceSaleor:
		hd.Set("Saleor-Event", topic)
		hd.Set("Saleor-Domain", "shop.example.com")
		hd.Set("Saleor-Signature", saleorJWS(h.t, h.saleorKey, "k1", body))
	case event.SourceBigCommerce:
		hd.Set("Webhook-Id", id)
		hd.Set("Webhook-Timestamp", fmt.Sprint(now.Unix()))
		hd.Set("Webhook-Signature", storefront.SignStandardWebhook([]byte(testBCSecret), id, now, body))
	case event.SourceWooCommerce:
		hd.Set("X-WC-Webhook-Topic", topic)
		hd.Set("X-WC-Webhook-Delivery-Id", id)
		hd.Set("X-WC-Webhook-Source", "https://example.com/")
		hd.Set("X-WC-Webhook-Signature", hmacB64(testWooSecret, body))
	case event.SourceStandard:
		hd.Set("Webhook-Id", id)
		hd.Set("Webhook-Timestamp", fmt.Sprint(now.Unix()))
		hd.Set("Webhook-Signature", storefront.SignStandardWebhook(testStandardKey, id, now, body))
	}
	return hd
}

type hookResponse struct {
	Code   int
	Status string `json:"status"`
	ID     string `json:"id"`
	Error  string `json:"error"`
}

func (h *hooks) post(src event.Source, hd http.Header, body []byte) hookResponse {
	h.t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/webhooks/"+string(src), bytes.NewReader(body))
	req.Header = hd.Clone()
	rec := httptest.NewRecorder()
	h.p.Handler().ServeHTTP(rec, req)
	out := hookResponse{Code: rec.Code}
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		require.NoError(h.t, json.Unmarshal(rec.Body.Bytes(), &out), rec.Body.String())
	}
	return out
}

// deliver signs and posts body once and returns the response.
func (h *hooks) deliver(src event.Source, topic string, body []byte) hookResponse {
	h.t.Helper()
	h.seq++
	return h.post(src, h.sign(src, topic, fmt.Sprintf("evt-%d", h.seq), body), body)
}

func (h *hooks) process() int {
	h.t.Helper()
	n, err := h.p.ProcessInbox(context.Background())
	require.NoError(h.t, err)
	return n
}

func (h *hooks) inboxCount() int {
	h.t.Helper()
	n, err := h.db.NewSelect().Model((*inbox.Event)(nil)).Count(context.Background())
	require.NoError(h.t, err)
	return int(n)
}

func (h *hooks) customer(ref string) *customer.Customer {
	h.t.Helper()
	c, err := customer.GetByRef(context.Background(), h.db, ref)
	require.NoError(h.t, err, ref)
	return c
}

func (h *hooks) byEmail(email string) *customer.Customer {
	h.t.Helper()
	c, err := customer.GetByEmail(context.Background(), h.db, email)
	require.NoError(h.t, err, email)
	return c
}

// events counts a customer's events of one type.
func (h *hooks) events(pk int64, typ string) int {
	h.t.Helper()
	page, err := customer.ListEvents(context.Background(), h.db, pk, typ, 500, "")
	require.NoError(h.t, err)
	return len(page.Events)
}

func (h *hooks) order(src, id string) *commerce.Order {
	h.t.Helper()
	o, err := commerce.GetOrder(context.Background(), h.db, src, id)
	require.NoError(h.t, err)
	return o
}

func (h *hooks) cart(src, token string) *commerce.Cart {
	h.t.Helper()
	c, err := commerce.GetCart(context.Background(), h.db, src, token)
	require.NoError(h.t, err)
	return c
}

type fixtureCase struct {
	file   string
	src    event.Source
	topic  string // the topic header; BigCommerce and Standard carry it in the body
	status inbox.Status
	check  func(t *testing.T, h *hooks)
}

func fixtureCases() []fixtureCase {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return v
	}
	return []fixtureCase{
		{"shopify_customers_create.json", event.SourceShopify, "customers/create", inbox.StatusDone, func(t *testing.T, h *hooks) {
			c := h.customer("gid://shopify/Customer/706405506930370084")
			require.Equal(t, "bob@biller.com", *c.Email)
			require.Equal(t, "Bob", *c.FirstName)
			require.Equal(t, "SUBSCRIBER", c.Stage)
			require.Equal(t, 1, h.events(c.PK, "customer.created"))
		}},
		{"shopify_customers_email_marketing_consent_update.json", event.SourceShopify, "customers_email_marketing_consent/update", inbox.StatusDone, func(t *testing.T, h *hooks) {
			c := h.customer("gid://shopify/Customer/706405506930370084")
			require.Equal(t, customer.ConsentNotSubscribed, c.ConsentState)
			require.Equal(t, "UNSUBSCRIBED", c.Stage)
			require.Equal(t, 1, h.events(c.PK, "consent.changed"))
			require.Equal(t, 1, h.events(c.PK, customer.EventStageChanged))
		}},
		{"shopify_orders_create.json", event.SourceShopify, "orders/create", inbox.StatusDone, func(t *testing.T, h *hooks) {
			o := h.order("shopify", "gid://shopify/Order/820982911946154508")
			require.Equal(t, int64(41495), o.TotalMinor)
			require.Equal(t, "USD", *o.Currency)
			require.Equal(t, "voided", o.Status)
			require.Equal(t, "#9999", *o.Number)
			require.Len(t, o.Items, 5)
			require.Equal(t, "Aviator sunglasses", o.Items[0].Title)
			require.Equal(t, "jon@example.com", *o.ContactEmail)
			require.NotNil(t, o.CancelledAt)
			c := h.customer("gid://shopify/Customer/115310627314723954")
			require.Equal(t, c.PK, *o.CustomerPK)
			require.Equal(t, "john@example.com", *c.Email, "the customer's email, not the order's contact email")
			require.Equal(t, 0, c.OrdersCount, "a cancelled order does not count")
			require.Equal(t, 1, h.events(c.PK, "order.created"))
		}},
		{"shopify_checkouts_update.json", event.SourceShopify, "checkouts/update", inbox.StatusDone, func(t *testing.T, h *hooks) {
			ct := h.cart("shopify", "123123123")
			require.Equal(t, commerce.CartOpen, ct.Status)
			require.Equal(t, int64(42188), ct.ValueMinor)
			require.Len(t, ct.Items, 2)
			require.Equal(t, "https://checkout.local/548380009/checkouts/123123123/recover?key=example-secret-token", *ct.RecoveryURL)
			require.Equal(t, "eeafa272cebfd4b22385bc4b645e762c", *ct.CartToken)
			c := h.customer("gid://shopify/Customer/603851970716743426")
			require.Equal(t, c.PK, *ct.CustomerPK)
			require.Equal(t, 1, h.events(c.PK, "cart.updated"))
		}},
		{"shopify_carts_update.json", event.SourceShopify, "carts/update", inbox.StatusDone, func(t *testing.T, h *hooks) {
			ct := h.cart("shopify", "exampleCartId")
			require.Equal(t, int64(5997), ct.ValueMinor)
			require.Nil(t, ct.CustomerPK)
			require.Equal(t, at("2022-01-01T00:00:00Z"), ct.LastActivityAt.UTC())
		}},
		{"saleor_order_created.json", event.SourceSaleor, "ORDER_CREATED", inbox.StatusDone, func(t *testing.T, h *hooks) {
			o := h.order("saleor", "T3JkZXI6YzhmY2FjMTgtMWQ5Yy00NWRkLTgxMGYtMGIzMTJiYTNjZDYz")
			require.Len(t, o.Items, 1)
			require.Nil(t, o.CustomerPK)
			require.Equal(t, t0, o.PlacedAt.UTC(), "no time in the payload: the receipt time")
		}},
		{"saleor_order_created_event_root.json", event.SourceSaleor, "order_created", inbox.StatusDone, func(t *testing.T, h *hooks) {
			o := h.order("saleor", "T3JkZXI6MWFkNzZjOTctZDkxNy00NjRmLWIwNzUtOTljNzcwY2IzOWI4")
			require.Equal(t, at("2022-12-12T00:37:17.405467Z"), o.PlacedAt.UTC())
		}},
		{"saleor_checkout_updated.json", event.SourceSaleor, "checkout_updated", inbox.StatusDone, func(t *testing.T, h *hooks) {
			ct := h.cart("saleor", "3b2b8b6a-2a43-4b7b-9a5f-0c1f3c2d9e11")
			require.Equal(t, commerce.CartOpen, ct.Status)
			require.Len(t, ct.Items, 1)
			require.Equal(t, "UHJvZHVjdFZhcmlhbnQ6NDI=", ct.Items[0].VariantID)
		}},
		{"bigcommerce_store_customer_created.json", event.SourceBigCommerce, "", inbox.StatusDone, func(t *testing.T, h *hooks) {
			c := h.customer("32")
			require.Equal(t, "bigcommerce", *c.ExternalSource)
			require.Equal(t, 1, h.events(c.PK, "customer.created"))
		}},
		{"bigcommerce_store_order_created.json", event.SourceBigCommerce, "", inbox.StatusDone, func(t *testing.T, h *hooks) {
			o := h.order("bigcommerce", "250")
			require.Equal(t, time.Unix(1561479335, 0).UTC(), o.PlacedAt.UTC())
			require.Nil(t, o.PaidAt)
		}},
		{"bigcommerce_store_order_statusUpdated.json", event.SourceBigCommerce, "", inbox.StatusDone, func(t *testing.T, h *hooks) {
			o := h.order("bigcommerce", "250")
			require.Equal(t, time.Unix(1561479335, 0).UTC(), o.PaidAt.UTC(), "status 11, awaiting fulfillment, means paid")
		}},
		{"bigcommerce_store_order_refund_created.json", event.SourceBigCommerce, "", inbox.StatusDone, func(t *testing.T, h *hooks) {
			o := h.order("bigcommerce", "250")
			require.Equal(t, time.Unix(1561479923, 0).UTC(), o.RefundedAt.UTC())
		}},
		{"bigcommerce_store_cart_updated.json", event.SourceBigCommerce, "", inbox.StatusDone, func(t *testing.T, h *hooks) {
			require.Equal(t, commerce.CartOpen, h.cart("bigcommerce", "09346904-4175-44fd-be53-f7e598531b6c").Status)
		}},
		{"bigcommerce_store_cart_abandoned.json", event.SourceBigCommerce, "", inbox.StatusDone, func(t *testing.T, h *hooks) {
			require.Equal(t, commerce.CartAbandoned, h.cart("bigcommerce", "09346904-4175-44fd-be53-f7e598531b6c").Status,
				"the platform's own abandoned event")
		}},
		{"bigcommerce_store_subscriber_created.json", event.SourceBigCommerce, "", inbox.StatusIgnored, func(t *testing.T, h *hooks) {
			// Without store credentials a subscriber id alone names nobody.
		}},
		{"woocommerce_order_created.json", event.SourceWooCommerce, "order.created", inbox.StatusDone, func(t *testing.T, h *hooks) {
			o := h.order("woocommerce", "727")
			require.Equal(t, int64(2935), o.TotalMinor)
			require.NotNil(t, o.PaidAt, "processing means paid")
			c := h.byEmail("john.doe@example.com")
			require.Equal(t, c.PK, *o.CustomerPK, "a guest is matched by email")
			require.Equal(t, 1, c.OrdersCount)
			require.Equal(t, int64(2935), c.TotalSpentMinor)
			require.Equal(t, "LAPSED", c.Stage, "ordered in 2017")
			require.Equal(t, 1, h.events(c.PK, "order.created"))
			require.Equal(t, 1, h.events(c.PK, "order.paid"))
		}},
		{"woocommerce_action_woocommerce_add_to_cart_shape.json", event.SourceWooCommerce, "action.woocommerce_add_to_cart", inbox.StatusIgnored, func(t *testing.T, h *hooks) {
			// A cart item key without cart or customer identity records nothing.
		}},
		{"standardwebhooks_contact_created.json", event.SourceStandard, "", inbox.StatusIgnored, func(t *testing.T, h *hooks) {
			// contact.created is not one of Refrain's event types: stored, then ignored.
		}},
	}
}

func TestEveryStorefrontFixtureHasACase(t *testing.T) {
	files, err := os.ReadDir(webhookFixtures())
	require.NoError(t, err)
	covered := map[string]bool{}
	for _, c := range fixtureCases() {
		covered[c.file] = true
	}
	n := 0
	for _, f := range files {
		for _, prefix := range []string{"shopify_", "saleor_", "bigcommerce_", "woocommerce_", "standardwebhooks_"} {
			if strings.HasPrefix(f.Name(), prefix) && strings.HasSuffix(f.Name(), ".json") {
				require.True(t, covered[f.Name()], "fixture %s has no case", f.Name())
				n++
			}
		}
	}
	require.Equal(t, len(fixtureCases()), n)
}

func TestWebhookFixturesThroughTheHandler(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		h := newHooks(t, db, nil)
		for _, tc := range fixtureCases() {
			t.Run(tc.file, func(t *testing.T) {
				h.t = t
				body := readWebhookFixture(t, tc.file)
				before := h.inboxCount()
				hd := h.sign(tc.src, tc.topic, "evt-"+tc.file, body)
				first := h.post(tc.src, hd, body)
				require.Equal(t, http.StatusOK, first.Code, first.Error)
				require.Equal(t, "accepted", first.Status)
				require.Equal(t, before+1, h.inboxCount(), "committed before the 200")

				again := h.post(tc.src, hd, body)
				require.Equal(t, http.StatusOK, again.Code)
				require.Equal(t, "duplicate", again.Status)
				require.Equal(t, first.ID, again.ID)

				require.Equal(t, 1, h.process())
				var id int64
				_, err := fmt.Sscan(first.ID, &id)
				require.NoError(t, err)
				ev, err := inbox.Get(context.Background(), db, id)
				require.NoError(t, err)
				require.Equal(t, tc.status, ev.Status, "last error: %v", ev.LastError)
				require.Equal(t, string(tc.src), ev.Source)
				require.Equal(t, body, ev.Body, "the raw body, byte for byte")
				tc.check(t, h)

				// A redelivery after processing has no second effect either.
				require.Equal(t, "duplicate", h.post(tc.src, hd, body).Status)
				require.Equal(t, 0, h.process())
				tc.check(t, h)
			})
		}
	})
}

func TestWebhookRejections(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		h := newHooks(t, db, func(c *plugin.Config) { c.WebhookMaxBody = 4096; c.WooCommerceSecret = "" })
		order := readWebhookFixture(t, "saleor_order_created.json")
		rejected := func(src, reason string) float64 {
			rec := httptest.NewRecorder()
			h.p.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			prefix := fmt.Sprintf("refrain_webhook_rejected_total{reason=%q,source=%q} ", reason, src)
			for _, line := range strings.Split(rec.Body.String(), "\n") {
				if v, ok := strings.CutPrefix(line, prefix); ok {
					var f float64
					_, err := fmt.Sscan(v, &f)
					require.NoError(t, err)
					return f
				}
			}
			return 0
		}

		// Shopify: tampered body, wrong secret, no signature.
		hd := h.sign(event.SourceShopify, "orders/create", "e1", order)
		require.Equal(t, http.StatusUnauthorized, h.post(event.SourceShopify, hd, append([]byte(" "), order...)).Code)
		hd.Set("X-Shopify-Hmac-Sha256", hmacB64("another-secret", order))
		require.Equal(t, http.StatusUnauthorized, h.post(event.SourceShopify, hd, order).Code)
		hd.Del("X-Shopify-Hmac-Sha256")
		require.Equal(t, http.StatusUnauthorized, h.post(event.SourceShopify, hd, order).Code)
		require.Equal(t, 2.0, rejected("shopify", "bad_signature"))
		require.Equal(t, 1.0, rejected("shopify", "missing_signature"))

		// Standard Webhooks: a timestamp six minutes old.
		std := []byte(`{"type":"cart.updated","timestamp":"2026-06-01T09:00:00Z","data":{"token":"c1"}}`)
		old := h.clock.Now().Add(-6 * time.Minute)
		hd = http.Header{}
		hd.Set("Webhook-Id", "msg_1")
		hd.Set("Webhook-Timestamp", fmt.Sprint(old.Unix()))
		hd.Set("Webhook-Signature", storefront.SignStandardWebhook(testStandardKey, "msg_1", old, std))
		require.Equal(t, http.StatusUnauthorized, h.post(event.SourceStandard, hd, std).Code)
		require.Equal(t, 1.0, rejected("standard", "stale_timestamp"))

		// BigCommerce signed with another secret.
		bc := readWebhookFixture(t, "bigcommerce_store_order_created.json")
		hd = h.sign(event.SourceBigCommerce, "", "bc1", bc)
		hd.Set("Webhook-Signature", storefront.SignStandardWebhook([]byte("wrong"), "bc1", h.clock.Now(), bc))
		require.Equal(t, http.StatusUnauthorized, h.post(event.SourceBigCommerce, hd, bc).Code)

		// Saleor: a JWS made with another key under the known kid, and one
		// whose kid the configured JWKS does not have.
		hd = h.sign(event.SourceSaleor, "order_created", "", order)
		hd.Set("Saleor-Signature", saleorJWS(t, h.otherKey, "k1", order))
		require.Equal(t, http.StatusUnauthorized, h.post(event.SourceSaleor, hd, order).Code)
		hd.Set("Saleor-Signature", saleorJWS(t, h.otherKey, "k2", order))
		require.Equal(t, http.StatusUnauthorized, h.post(event.SourceSaleor, hd, order).Code)
		require.Equal(t, 1.0, rejected("saleor", "bad_signature"))
		require.Equal(t, 1.0, rejected("saleor", "unknown_key"))
		require.Zero(t, h.inboxCount(), "a rejected delivery stores nothing")

		// The legacy Saleor HMAC is accepted with the configured secret.
		mac := hmac.New(sha256.New, []byte(testSaleorSecret))
		mac.Write(order)
		hd.Set("Saleor-Signature", hex.EncodeToString(mac.Sum(nil)))
		require.Equal(t, http.StatusOK, h.post(event.SourceSaleor, hd, order).Code)
		require.Equal(t, 1, h.inboxCount())

		// WooCommerce's activation ping is answered even before it is configured;
		// its deliveries are not.
		ping := http.Header{}
		ping.Set("Content-Type", "application/x-www-form-urlencoded")
		resp := h.post(event.SourceWooCommerce, ping, []byte("webhook_id=12"))
		require.Equal(t, http.StatusOK, resp.Code)
		resp = h.deliver(event.SourceWooCommerce, "order.created", readWebhookFixture(t, "woocommerce_order_created.json"))
		require.Equal(t, http.StatusServiceUnavailable, resp.Code)
		require.Contains(t, resp.Error, "REFRAIN_WOOCOMMERCE_SECRET")

		// Larger than REFRAIN_WEBHOOK_MAX_BODY.
		big := readWebhookFixture(t, "shopify_orders_create.json")
		require.Equal(t, http.StatusRequestEntityTooLarge, h.deliver(event.SourceShopify, "orders/create", big).Code)
		require.Equal(t, 1, h.inboxCount())
	})
}

// patchJSON sets top-level fields of a JSON object, keeping big numbers exact.
func patchJSON(t *testing.T, body []byte, set map[string]any) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	require.NoError(t, dec.Decode(&m))
	for k, v := range set {
		m[k] = v
	}
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}

func TestOutOfOrderDeliveriesNeverMoveStateBackwards(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		h := newHooks(t, db, nil)
		cust := readWebhookFixture(t, "shopify_customers_create.json")
		newer := patchJSON(t, cust, map[string]any{"first_name": "Robert", "updated_at": "2022-01-05T00:00:00Z"})
		older := patchJSON(t, cust, map[string]any{"first_name": "Bobby", "updated_at": "2022-01-03T00:00:00Z"})
		require.Equal(t, http.StatusOK, h.deliver(event.SourceShopify, "customers/update", newer).Code)
		require.Equal(t, http.StatusOK, h.deliver(event.SourceShopify, "customers/update", older).Code)
		require.Equal(t, 2, h.process())
		require.Equal(t, "Robert", *h.customer("gid://shopify/Customer/706405506930370084").FirstName)

		co := readWebhookFixture(t, "shopify_checkouts_update.json")
		newerCo := patchJSON(t, co, map[string]any{"email": "new@example.com", "updated_at": "2022-01-02T00:00:00Z"})
		require.Equal(t, http.StatusOK, h.deliver(event.SourceShopify, "checkouts/update", newerCo).Code)
		require.Equal(t, http.StatusOK, h.deliver(event.SourceShopify, "checkouts/update", co).Code)
		require.Equal(t, 2, h.process())
		ct := h.cart("shopify", "123123123")
		require.Equal(t, "new@example.com", *ct.Email)
		require.Equal(t, time.Date(2022, 1, 2, 0, 0, 0, 0, time.UTC), ct.LastActivityAt.UTC())

		paid := []byte(`{"type":"order.paid","timestamp":"2024-05-03T12:05:00Z","data":{"id":"o-1","status":"paid",
			"total":{"amount":"10.00","currency":"EUR"},"customer":{"id":"cus_1","email":"c1@example.com"},
			"placedAt":"2024-05-03T12:00:00Z","paidAt":"2024-05-03T12:05:00Z","updatedAt":"2024-05-03T12:05:00Z"}}`)
		created := []byte(`{"type":"order.created","timestamp":"2024-05-03T12:00:00Z","data":{"id":"o-1","status":"pending",
			"total":{"amount":"10.00","currency":"EUR"},"customer":{"id":"cus_1","email":"c1@example.com"},
			"placedAt":"2024-05-03T12:00:00Z","updatedAt":"2024-05-03T12:00:00Z"}}`)
		require.Equal(t, http.StatusOK, h.deliver(event.SourceStandard, "", paid).Code)
		require.Equal(t, http.StatusOK, h.deliver(event.SourceStandard, "", created).Code)
		require.Equal(t, 2, h.process())
		o := h.order("standard", "o-1")
		require.Equal(t, "paid", o.Status, "the older payload does not win")
		require.NotNil(t, o.PaidAt)
		c := h.customer("cus_1")
		require.Equal(t, 1, c.OrdersCount)
		require.Equal(t, 1, h.events(c.PK, "order.created"))
		require.Equal(t, 1, h.events(c.PK, "order.paid"))
	})
}

func TestIdentityByStoreIDThenGuestEmail(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		h := newHooks(t, db, nil)
		ctx := context.Background()
		// Imported customers, known by email only.
		jon, _, err := customer.Upsert(ctx, db, t0, customer.Profile{Email: ptr("jon@example.com"), Source: customer.SourceImport})
		require.NoError(t, err)
		john, _, err := customer.Upsert(ctx, db, t0, customer.Profile{Email: ptr("john@example.com"), Source: customer.SourceImport})
		require.NoError(t, err)
		guest, _, err := customer.Upsert(ctx, db, t0, customer.Profile{Email: ptr("John.Doe@Example.com"), Source: customer.SourceImport})
		require.NoError(t, err)

		// Shopify's sample order: contact email jon@, customer john@ with a store id.
		require.Equal(t, http.StatusOK, h.deliver(event.SourceShopify, "orders/create", readWebhookFixture(t, "shopify_orders_create.json")).Code)
		require.Equal(t, http.StatusOK, h.deliver(event.SourceWooCommerce, "order.created", readWebhookFixture(t, "woocommerce_order_created.json")).Code)
		require.Equal(t, 2, h.process())

		o := h.order("shopify", "gid://shopify/Order/820982911946154508")
		require.Equal(t, john.PK, *o.CustomerPK, "matched by the store's id, then learned on john's record")
		require.Zero(t, h.events(jon.PK, "order.created"), "the contact email does not re-match another customer")
		byGID := h.customer("gid://shopify/Customer/115310627314723954")
		require.Equal(t, john.PK, byGID.PK)
		require.Equal(t, john.PK, h.customer(john.PublicID).PK, "Refrain's own id still resolves")

		w := h.order("woocommerce", "727")
		require.Equal(t, guest.PK, *w.CustomerPK, "a guest order matches by normalised email")
		require.Equal(t, 1, h.customer(guest.PublicID).OrdersCount)
	})
}

const standardCart = `{"type":"cart.updated","timestamp":%q,"data":{"token":"cart_v1","email":"vera@example.com",
	"lines":[{"productId":"p1","title":"Tee","quantity":2,"unitPrice":{"amount":"12.50","currency":"EUR"}}],
	"recoveryUrl":"https://shop.example.com/cart/cart_v1","updatedAt":%q}}`

const standardOrder = `{"type":"order.created","timestamp":%q,"data":{"id":"ord_v1","number":"1001",
	"total":{"amount":"25.00","currency":"EUR"},"cartToken":"cart_v1","email":"vera@example.com",
	"placedAt":%q,"updatedAt":%q}}`

func TestCartAbandonmentOnAVirtualClock(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		h := newHooks(t, db, nil)
		ctx := context.Background()
		now := h.clock.Now().Format(time.RFC3339)
		require.Equal(t, http.StatusOK, h.deliver(event.SourceStandard, "", []byte(fmt.Sprintf(standardCart, now, now))).Code)
		require.Equal(t, 1, h.process())
		vera := h.byEmail("vera@example.com")
		require.Equal(t, 1, h.events(vera.PK, "cart.updated"))

		h.clock.Advance(59 * time.Minute)
		n, err := h.p.SweepAbandonedCarts(ctx)
		require.NoError(t, err)
		require.Zero(t, n, "idle for 59 minutes only")

		h.clock.Advance(2 * time.Minute)
		// A second replica on its own connection pool sweeps as well.
		other, err := plugin.New(ctx, h.p.Config(), plugin.WithDB(db.Reopen(t)), plugin.WithClock(h.clock), plugin.WithLogger(quietLogger()))
		require.NoError(t, err)
		total := 0
		for _, p := range []*plugin.Plugin{h.p, other, h.p, other} {
			n, err := p.SweepAbandonedCarts(ctx)
			require.NoError(t, err)
			total += n
		}
		require.Equal(t, 1, total)
		require.Equal(t, 1, h.events(vera.PK, "cart.abandoned"), "exactly once")
		require.Equal(t, commerce.CartAbandoned, h.cart("standard", "cart_v1").Status)

		h.clock.Advance(3 * time.Hour)
		now = h.clock.Now().Format(time.RFC3339)
		require.Equal(t, http.StatusOK, h.deliver(event.SourceStandard, "", []byte(fmt.Sprintf(standardOrder, now, now, now))).Code)
		require.Equal(t, 1, h.process())
		require.Equal(t, commerce.CartConverted, h.cart("standard", "cart_v1").Status)
		require.Equal(t, 1, h.events(vera.PK, "cart.converted"))

		// Through GraphQL: the lifecycle, the order and the converted cart.
		var out struct {
			Refrain struct {
				Customer struct {
					Lifecycle struct {
						Stage       string
						OrdersCount int
						TotalSpent  struct {
							Amount   int
							Currency string
						}
					}
					Orders struct {
						Nodes []struct {
							ID, Number string
							Total      struct{ Amount int }
							Items      []struct {
								Title     string
								Quantity  int
								UnitPrice struct{ Amount int }
							}
						}
					}
					Carts []struct {
						Token, Status string
						OrderID       string
						RecoveryURL   string `json:"recoveryUrl"`
					}
				}
			}
		}
		h.do(testBootstrapKey, `query($id: ID) { refrain { customer(id: $id) {
			lifecycle { stage ordersCount totalSpent { amount currency } }
			orders(first: 5) { nodes { id number total { amount } items { title quantity unitPrice { amount } } } }
			carts(status: CONVERTED) { token status orderId recoveryUrl } } } }`,
			map[string]any{"id": vera.PublicID}).decode(t, &out)
		c := out.Refrain.Customer
		require.Equal(t, "NEW_CUSTOMER", c.Lifecycle.Stage)
		require.Equal(t, 1, c.Lifecycle.OrdersCount)
		require.Equal(t, 2500, c.Lifecycle.TotalSpent.Amount)
		require.Equal(t, "EUR", c.Lifecycle.TotalSpent.Currency)
		require.Len(t, c.Orders.Nodes, 1)
		require.Equal(t, "ord_v1", c.Orders.Nodes[0].ID)
		require.Equal(t, 2500, c.Orders.Nodes[0].Total.Amount)
		require.Len(t, c.Carts, 1)
		require.Equal(t, "CONVERTED", c.Carts[0].Status)
		require.Equal(t, "ord_v1", c.Carts[0].OrderID)
		require.Equal(t, "https://shop.example.com/cart/cart_v1", c.Carts[0].RecoveryURL)

		changes, err := customer.ListEvents(ctx, db, vera.PK, customer.EventStageChanged, 10, "")
		require.NoError(t, err)
		require.Equal(t, map[string]any{"from": "SUBSCRIBER", "to": "NEW_CUSTOMER"}, changes.Events[0].Properties)
	})
}

func TestInboundEventsAndReplayThroughGraphQL(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		h := newHooks(t, db, nil)
		// Authentic but unusable: a Shopify order with a malformed price fails at once.
		bad := []byte(`{"id": 1, "admin_graphql_api_id": "gid://shopify/Order/1", "currency": "USD", "total_price": "abc"}`)
		resp := h.deliver(event.SourceShopify, "orders/create", bad)
		require.Equal(t, http.StatusOK, resp.Code)
		require.Equal(t, http.StatusOK, h.deliver(event.SourceShopify, "orders/create", readWebhookFixture(t, "shopify_orders_create.json")).Code)
		require.Equal(t, 2, h.process())

		type node struct {
			ID, Source, Topic, Status, DedupeKey string
			Attempts                             int
			LastError                            *string
			Body                                 string
		}
		var out struct {
			Refrain struct {
				InboundEvents struct {
					Nodes    []node
					PageInfo struct {
						HasNextPage bool
						EndCursor   string
					}
				}
			}
		}
		q := `query($status: InboundEventStatus, $after: String) { refrain { inboundEvents(status: $status, source: "shopify", first: 1, after: $after) {
			nodes { id source topic status dedupeKey attempts lastError body } pageInfo { hasNextPage endCursor } } } }`
		h.do(testBootstrapKey, q, map[string]any{"status": "FAILED"}).decode(t, &out)
		require.Len(t, out.Refrain.InboundEvents.Nodes, 1)
		failed := out.Refrain.InboundEvents.Nodes[0]
		require.Equal(t, resp.ID, failed.ID)
		require.Equal(t, "orders/create", failed.Topic)
		require.Equal(t, 1, failed.Attempts)
		require.Contains(t, *failed.LastError, "total_price")
		require.Equal(t, string(bad), failed.Body)
		require.False(t, out.Refrain.InboundEvents.PageInfo.HasNextPage)

		h.do(testBootstrapKey, q, nil).decode(t, &out)
		require.Len(t, out.Refrain.InboundEvents.Nodes, 1)
		require.Equal(t, "DONE", out.Refrain.InboundEvents.Nodes[0].Status, "newest first")
		require.True(t, out.Refrain.InboundEvents.PageInfo.HasNextPage)
		h.do(testBootstrapKey, q, map[string]any{"after": out.Refrain.InboundEvents.PageInfo.EndCursor}).decode(t, &out)
		require.Equal(t, "FAILED", out.Refrain.InboundEvents.Nodes[0].Status)

		replay := `mutation($id: ID!) { refrain { replayInboundEvent(id: $id) { event { status attempts lastError } userErrors { code } } } }`
		readKey, _ := h.apiKey("read")
		require.Equal(t, []string{"FORBIDDEN"}, h.do(readKey, replay, map[string]any{"id": failed.ID}).codes())
		require.Equal(t, []string{"UNAUTHENTICATED"}, h.do("", q, nil).codes())
		var rep struct {
			Refrain struct {
				ReplayInboundEvent struct {
					Event      *node
					UserErrors []struct{ Code string }
				}
			}
		}
		h.do(testBootstrapKey, replay, map[string]any{"id": failed.ID}).decode(t, &rep)
		require.Equal(t, "PENDING", rep.Refrain.ReplayInboundEvent.Event.Status)
		require.Zero(t, rep.Refrain.ReplayInboundEvent.Event.Attempts)
		require.Nil(t, rep.Refrain.ReplayInboundEvent.Event.LastError)
		h.do(testBootstrapKey, replay, map[string]any{"id": "99999"}).decode(t, &rep)
		require.Equal(t, "NOT_FOUND", rep.Refrain.ReplayInboundEvent.UserErrors[0].Code)

		// The customer's own token reads their orders; another customer's does not.
		own := h.customerToken("gid://shopify/Customer/115310627314723954", time.Hour, testJWTSecret)
		var mine struct {
			Refrain struct {
				Me struct {
					Orders struct{ Nodes []struct{ ID string } }
				}
			}
		}
		h.do(own, `{ refrain { me { orders { nodes { id } } } } }`, nil).decode(t, &mine)
		require.Equal(t, "gid://shopify/Order/820982911946154508", mine.Refrain.Me.Orders.Nodes[0].ID)
		stranger := h.customerToken("gid://shopify/Customer/1", time.Hour, testJWTSecret)
		res := h.do(stranger, `query { refrain { customer(id: "gid://shopify/Customer/115310627314723954") { orders { nodes { id } } } } }`, nil)
		require.Equal(t, []string{"FORBIDDEN"}, res.codes())
	})
}

func TestStorefrontSettingsNameTheSetting(t *testing.T) {
	c, err := plugin.LoadConfig("", nil)
	require.NoError(t, err)
	require.Equal(t, int64(1<<20), c.WebhookMaxBody)
	require.Equal(t, time.Hour, c.CartAbandonAfter)
	require.Equal(t, []int{90, 180, 365}, []int{c.StageNewCustomerDays, c.StageActiveDays, c.StageAtRiskDays})
	require.Equal(t, time.Hour, c.StageSweepInterval)
	require.Equal(t, "https://api.bigcommerce.com", c.BigCommerceAPIBase)
	for env, want := range map[string]string{
		"REFRAIN_STANDARD_WEBHOOK_SECRET=whsec_not*base64": "setting REFRAIN_STANDARD_WEBHOOK_SECRET",
		"REFRAIN_SALEOR_JWKS_URL=file:///keys":             "setting REFRAIN_SALEOR_JWKS_URL",
		"REFRAIN_WEBHOOK_MAX_BODY=10":                      "setting REFRAIN_WEBHOOK_MAX_BODY",
		"REFRAIN_CART_ABANDON_AFTER=1s":                    "setting REFRAIN_CART_ABANDON_AFTER",
		"REFRAIN_STAGE_AT_RISK_DAYS=100":                   "setting REFRAIN_STAGE_AT_RISK_DAYS",
		"REFRAIN_STAGE_SWEEP_INTERVAL=24h":                 "setting REFRAIN_STAGE_SWEEP_INTERVAL",
		"REFRAIN_INBOX_BATCH=0":                            "setting REFRAIN_INBOX_BATCH",
		"REFRAIN_BIGCOMMERCE_STORE_HASH=abc":               "setting REFRAIN_BIGCOMMERCE_ACCESS_TOKEN",
	} {
		_, err := plugin.LoadConfig("", []string{env})
		require.ErrorContains(t, err, want, env)
	}
	secret := map[string]bool{}
	for _, s := range plugin.Settings() {
		secret[s.Env] = s.Secret
	}
	for _, env := range []string{"REFRAIN_SHOPIFY_SECRET", "REFRAIN_SALEOR_SECRET", "REFRAIN_BIGCOMMERCE_SECRET",
		"REFRAIN_BIGCOMMERCE_ACCESS_TOKEN", "REFRAIN_WOOCOMMERCE_SECRET", "REFRAIN_STANDARD_WEBHOOK_SECRET"} {
		require.True(t, secret[env], env)
	}
}
