package woocommerce

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/storefront"
)

const testSecret = "wc-webhook-secret-(]x*L4"

func fixtures() string {
	return filepath.Join("..", "..", "..", "testdata", "webhooks")
}

func readCase(t testing.TB, file string) []byte {
	t.Helper()
	path := file
	if !strings.HasPrefix(file, "testdata/") {
		path = filepath.Join(fixtures(), file)
	}
	body, err := os.ReadFile(path)
	require.NoError(t, err)
	return body
}

// sign signs body exactly as WooCommerce does.
func sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func headersFor(topic string, body []byte) http.Header {
	h := http.Header{}
	h.Set("X-WC-Webhook-Source", "https://example.com/")
	h.Set("X-WC-Webhook-Topic", topic)
	resource, event, _ := strings.Cut(topic, ".")
	h.Set("X-WC-Webhook-Resource", resource)
	h.Set("X-WC-Webhook-Event", event)
	h.Set("X-WC-Webhook-Signature", sign(testSecret, body))
	h.Set("X-WC-Webhook-ID", "12")
	h.Set("X-WC-Webhook-Delivery-ID", "f3b2c1d0a9e8")
	return h
}

func gmt(s string) time.Time {
	t, err := time.Parse("2006-01-02T15:04:05", s)
	if err != nil {
		panic(err)
	}
	return t
}

type testCase struct {
	file  string
	topic string
	key   string
	check func(t *testing.T, events []event.Event)
}

func kinds(events []event.Event) []event.Kind {
	var out []event.Kind
	for _, e := range events {
		out = append(out, e.Kind)
	}
	return out
}

func cases() []testCase {
	return []testCase{
		{file: "woocommerce_order_created.json", topic: "order.created", key: "order.created:727:2017-03-22T19:28:08", check: func(t *testing.T, ev []event.Event) {
			require.Equal(t, []event.Kind{event.KindOrderCreated, event.KindOrderPaid}, kinds(ev), "processing means paid")
			o := ev[0].Order
			require.Same(t, o, ev[1].Order)
			require.Equal(t, "727", o.ID)
			require.Equal(t, "727", o.Number)
			require.Equal(t, "processing", o.Status)
			require.Equal(t, event.Money{Minor: 2935, Currency: "USD"}, o.Total)
			require.Equal(t, []event.LineItem{
				{ProductID: "93", Title: "Woo Single #1", Quantity: 2, UnitPrice: event.Money{Minor: 300, Currency: "USD"}},
				{ProductID: "22", VariantID: "23", SKU: "Bar3", Title: "Ship Your Idea &ndash; Color: Black, Size: M Test", Quantity: 1, UnitPrice: event.Money{Minor: 1200, Currency: "USD"}},
			}, o.Items)
			require.Equal(t, gmt("2017-03-22T19:28:02"), o.PlacedAt)
			require.Equal(t, gmt("2017-03-22T19:28:08"), o.PaidAt)
			require.Equal(t, gmt("2017-03-22T19:28:08"), o.UpdatedAt)
			require.True(t, o.FulfilledAt.IsZero())
			require.Equal(t, gmt("2017-03-22T19:28:08"), ev[0].OccurredAt)
			require.Equal(t, "john.doe@example.com", o.Email)
			require.Equal(t, &event.Customer{Email: "john.doe@example.com", FirstName: "John", LastName: "Doe", Phone: "(555) 555-5555"}, o.Customer, "a guest is known by billing email only")
			require.Same(t, o.Customer, ev[0].Customer)
		}},
		{file: "testdata/order_updated_completed.json", topic: "order.updated", key: "order.updated:727:2017-03-25T10:00:00", check: func(t *testing.T, ev []event.Event) {
			require.Equal(t, []event.Kind{event.KindOrderPaid, event.KindOrderFulfilled}, kinds(ev))
			o := ev[0].Order
			require.Equal(t, event.Money{Minor: 29350, Currency: "KWD"}, o.Total, "three decimals")
			require.Equal(t, event.Money{Minor: 3125, Currency: "KWD"}, o.Items[0].UnitPrice)
			require.Equal(t, event.Money{Minor: 6000, Currency: "KWD"}, o.Refunded)
			require.Equal(t, gmt("2017-03-25T10:00:00"), o.FulfilledAt)
			require.Equal(t, &event.Customer{ID: "25"}, o.Customer, "a registered customer is known by id")
			require.Equal(t, "billing@doe-family.example", o.Email)
		}},
		{file: "testdata/customer_created.json", topic: "customer.created", key: "customer.created:25:2017-03-21T19:09:30", check: func(t *testing.T, ev []event.Event) {
			require.Equal(t, []event.Kind{event.KindCustomerCreated}, kinds(ev))
			require.Equal(t, &event.Customer{
				ID: "25", Email: "john.doe@example.com", FirstName: "John", LastName: "Doe", Phone: "(555) 555-5555",
				CreatedAt: gmt("2017-03-21T19:09:28"), UpdatedAt: gmt("2017-03-21T19:09:30"),
			}, ev[0].Customer)
			require.Equal(t, gmt("2017-03-21T19:09:30"), ev[0].OccurredAt)
		}},
		{file: "testdata/customer_deleted.json", topic: "customer.deleted", key: "customer.deleted:25", check: func(t *testing.T, ev []event.Event) {
			require.Equal(t, []event.Kind{event.KindCustomerDeleted}, kinds(ev))
			require.Equal(t, "25", ev[0].Customer.ID)
		}},
		{file: "woocommerce_action_woocommerce_add_to_cart_shape.json", topic: "action.woocommerce_add_to_cart", key: "action.woocommerce_add_to_cart:delivery:f3b2c1d0a9e8", check: func(t *testing.T, ev []event.Event) {
			require.Equal(t, []event.Kind{event.KindCartUpdated}, kinds(ev))
			require.True(t, ev[0].Thin)
			require.Equal(t, &event.ResourceRef{Type: event.ResourceCart, Token: "c4ca4238a0b923820dcc509a6f75849b"}, ev[0].Ref)
		}},
	}
}

func TestEveryWooCommerceFixtureHasACase(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(fixtures(), "woocommerce_*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "fixtures not found at %s", fixtures())
	covered := map[string]bool{}
	for _, c := range cases() {
		covered[c.file] = true
	}
	for _, f := range files {
		require.True(t, covered[filepath.Base(f)], "fixture %s has no test case", filepath.Base(f))
	}
}

func TestFixtures(t *testing.T) {
	for _, tc := range cases() {
		t.Run(tc.file, func(t *testing.T) {
			body := readCase(t, tc.file)
			h := headersFor(tc.topic, body)
			require.False(t, IsPing(h, body))
			require.NoError(t, Verify(h, body, testSecret))

			d, err := Delivery(h, body)
			require.NoError(t, err)
			require.Equal(t, event.SourceWooCommerce, d.Source)
			require.Equal(t, tc.topic, d.Topic)
			require.Equal(t, tc.key, d.DedupeKey)
			require.Equal(t, "https://example.com/", d.Headers["X-Wc-Webhook-Source"])

			events, err := Parse(d.Topic, d.Body)
			require.NoError(t, err)
			for _, e := range events {
				require.Equal(t, event.SourceWooCommerce, e.Source)
				require.Equal(t, tc.topic, e.Topic)
			}
			tc.check(t, events)
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	body := readCase(t, "woocommerce_order_created.json")
	h := headersFor("order.created", body)
	require.ErrorIs(t, Verify(h, []byte(strings.Replace(string(body), "29.35", "0.35", 1)), testSecret), storefront.ErrBadSignature)
	require.ErrorIs(t, Verify(h, body, "other"), storefront.ErrBadSignature)
	require.ErrorIs(t, Verify(h, body, ""), storefront.ErrNoKey)
	h.Del("X-WC-Webhook-Signature")
	require.ErrorIs(t, Verify(h, body, testSecret), storefront.ErrBadSignature)
}

func TestIsPing(t *testing.T) {
	require.True(t, IsPing(http.Header{}, []byte("webhook_id=12")))
	require.False(t, IsPing(http.Header{}, []byte("webhook_id=12&x=1")))
	require.False(t, IsPing(http.Header{}, []byte("webhook_id=abc")))
	require.False(t, IsPing(http.Header{}, []byte(`{"webhook_id":12}`)))
	h := http.Header{}
	h.Set("X-WC-Webhook-Signature", "abc")
	require.False(t, IsPing(h, []byte("webhook_id=12")), "a signed request is a delivery")
}

func TestOrderStatuses(t *testing.T) {
	for status, want := range map[string][]event.Kind{
		"pending":    nil,
		"on-hold":    nil,
		"failed":     nil,
		"processing": {event.KindOrderPaid},
		"completed":  {event.KindOrderPaid, event.KindOrderFulfilled},
		"refunded":   {event.KindOrderRefunded},
		"cancelled":  {event.KindOrderCancelled},
	} {
		body := []byte(`{"id":9,"status":"` + status + `","currency":"EUR","total":"10.00","customer_id":3,"date_modified_gmt":"2024-01-02T03:04:05"}`)
		events, err := Parse("order.updated", body)
		require.NoError(t, err, status)
		require.Equal(t, want, kinds(events), status)
		if status == "cancelled" {
			require.Equal(t, gmt("2024-01-02T03:04:05"), events[0].Order.CancelledAt)
		}
	}
	events, err := Parse("order.deleted", []byte(`{"id":9}`))
	require.NoError(t, err)
	require.Empty(t, events)
}

func TestParseErrors(t *testing.T) {
	_, err := Parse("product.created", []byte(`{}`))
	require.ErrorIs(t, err, storefront.ErrUnknownTopic)
	_, err = Parse("action.woocommerce_login", []byte(`{"action":"woocommerce_login","arg":"x"}`))
	require.ErrorIs(t, err, storefront.ErrUnknownTopic)

	var pe *storefront.ParseError
	_, err = Parse("order.created", []byte(`{"id":1,"total":"1,5"}`))
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "total", pe.Field)
	_, err = Parse("order.created", []byte(`{"id":1,"date_modified_gmt":"tuesday"}`))
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "date_modified_gmt", pe.Field)
	_, err = Parse("customer.updated", []byte(`{"email":"x@y.z"}`))
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "id", pe.Field)

	events, err := Parse("action.woocommerce_checkout_order_processed", []byte(`{"action":"woocommerce_checkout_order_processed","arg":731}`))
	require.NoError(t, err)
	require.Equal(t, event.KindCartConverted, events[0].Kind)
	require.Equal(t, "731", events[0].Ref.OrderID)
}

func FuzzParse(f *testing.F) {
	for _, tc := range cases() {
		f.Add(tc.topic, readCase(f, tc.file))
	}
	f.Fuzz(func(t *testing.T, topic string, body []byte) {
		events, err := Parse(topic, body)
		if err != nil {
			require.Nil(t, events)
		}
		h := http.Header{}
		h.Set("X-WC-Webhook-Topic", "order.updated")
		_, err = Delivery(h, body)
		require.NoError(t, err)
		_ = IsPing(http.Header{}, body)
	})
}
