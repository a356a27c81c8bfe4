package shopify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
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

const testSecret = "shpss_test_0123456789abcdef"

// fixtures is the shared fixture folder, beside the repository.
func fixtures() string {
	return filepath.Join("..", "..", "..", "testdata", "webhooks")
}

// sign signs body exactly as Shopify does.
func sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func headersFor(topic string, body []byte) http.Header {
	h := http.Header{}
	h.Set("X-Shopify-Topic", topic)
	h.Set("X-Shopify-Hmac-Sha256", sign(testSecret, body))
	h.Set("X-Shopify-Event-Id", "98880550-7158-44d4-b7cd-2c97c8a091b5")
	h.Set("X-Shopify-Shop-Domain", "example.myshopify.com")
	h.Set("X-Shopify-Api-Version", "2026-07")
	return h
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

type testCase struct {
	file  string // under fixtures() or, with a "testdata/" prefix, local
	topic string
	check func(t *testing.T, events []event.Event)
}

func cases() []testCase {
	return []testCase{
		{file: "shopify_orders_create.json", topic: "orders/create", check: func(t *testing.T, ev []event.Event) {
			require.Len(t, ev, 1)
			e := ev[0]
			require.Equal(t, event.KindOrderCreated, e.Kind)
			require.Equal(t, at("2022-01-01T00:00:00Z"), e.OccurredAt)
			o := e.Order
			require.Equal(t, "gid://shopify/Order/820982911946154508", o.ID)
			require.Equal(t, "#9999", o.Number)
			require.Equal(t, "voided", o.Status)
			require.Equal(t, event.Money{Minor: 41495, Currency: "USD"}, o.Total)
			require.Equal(t, "jon@example.com", o.Email)
			require.Len(t, o.Items, 5)
			require.Equal(t, event.LineItem{
				ProductID: "gid://shopify/Product/788032119674292922", SKU: "SKU2006-001",
				Title: "Aviator sunglasses", Quantity: 1, UnitPrice: event.Money{Minor: 8999, Currency: "USD"},
			}, o.Items[0])
			require.Empty(t, o.Items[1].ProductID, "a line without a product has no product id")
			require.Equal(t, at("2022-01-01T00:00:00Z"), o.PlacedAt)
			require.Equal(t, at("2022-01-01T00:00:00Z"), o.CancelledAt)
			require.True(t, o.PaidAt.IsZero())
			require.Empty(t, o.CartToken)
			// The buyer is the customer object, not the contact email.
			require.NotNil(t, o.Customer)
			require.Equal(t, "gid://shopify/Customer/115310627314723954", o.Customer.ID)
			require.Equal(t, "john@example.com", o.Customer.Email)
			require.Equal(t, "John", o.Customer.FirstName)
			require.Equal(t, "Smith", o.Customer.LastName)
			require.Equal(t, "en", o.Customer.Locale)
			require.Same(t, o.Customer, e.Customer)
		}},
		{file: "testdata/orders_paid.json", topic: "orders/paid", check: func(t *testing.T, ev []event.Event) {
			require.Len(t, ev, 1)
			o := ev[0].Order
			require.Equal(t, event.KindOrderPaid, ev[0].Kind)
			require.Equal(t, "gid://shopify/Order/450789469", o.ID)
			require.Equal(t, event.Money{Minor: 12980, Currency: "JPY"}, o.Total, "yen have no minor unit")
			require.Equal(t, event.Money{Minor: 5900, Currency: "JPY"}, o.Items[0].UnitPrice)
			require.Equal(t, int64(2), o.Items[0].Quantity)
			require.Equal(t, "gid://shopify/ProductVariant/808950810", o.Items[0].VariantID)
			require.Equal(t, "bd5a8aa1ecd019dd3520ff791ee3a24c", o.CheckoutToken)
			require.Equal(t, "68778783ad298f1c80c3bafcddeea02f", o.CartToken)
			require.Equal(t, at("2024-05-01T00:31:12Z"), o.PaidAt)
			require.Equal(t, at("2024-05-01T00:31:12Z"), ev[0].OccurredAt)
			require.True(t, o.CancelledAt.IsZero())
			require.Equal(t, "gid://shopify/Customer/207119551", o.Customer.ID)
			require.Equal(t, "bob.norman@example.com", o.Customer.Email)
			require.Equal(t, "bob.norman@mail.example.com", o.Email)
			require.Equal(t, "ja", o.Customer.Locale)
		}},
		{file: "testdata/refunds_create.json", topic: "refunds/create", check: func(t *testing.T, ev []event.Event) {
			require.Len(t, ev, 1)
			e := ev[0]
			require.Equal(t, event.KindOrderRefunded, e.Kind)
			require.Equal(t, "gid://shopify/Order/820982911946154508", e.Order.ID)
			require.Equal(t, event.Money{Minor: 7999, Currency: "USD"}, e.Order.Refunded, "the refund transaction, not the line subtotal")
			require.Equal(t, at("2022-01-03T15:00:05Z"), e.Order.RefundedAt)
			require.Equal(t, at("2022-01-03T15:00:05Z"), e.OccurredAt)
			require.Equal(t, "gid://shopify/Refund/890088186047892319", e.Ref.RefundID)
			require.Nil(t, e.Customer)
		}},
		{file: "shopify_checkouts_update.json", topic: "checkouts/update", check: func(t *testing.T, ev []event.Event) {
			require.Len(t, ev, 1)
			e := ev[0]
			require.Equal(t, event.KindCartUpdated, e.Kind)
			c := e.Cart
			require.Equal(t, "123123123", c.Token)
			require.Equal(t, "eeafa272cebfd4b22385bc4b645e762c", c.CartToken)
			require.Equal(t, "example@email.com", c.Email)
			require.Equal(t, event.Money{Minor: 42188, Currency: "USD"}, c.Total)
			require.Len(t, c.Items, 2)
			require.Equal(t, event.LineItem{
				ProductID: "gid://shopify/Product/632910392", VariantID: "gid://shopify/ProductVariant/808950810",
				SKU: "IPOD2008PINK", Title: "IPod Nano - 8GB", Quantity: 1, UnitPrice: event.Money{Minor: 19900, Currency: "USD"},
			}, c.Items[0])
			require.Equal(t, "https://checkout.local/548380009/checkouts/123123123/recover?key=example-secret-token", c.RecoveryURL)
			require.Equal(t, event.CartOpen, c.Status)
			require.Equal(t, at("2022-01-01T00:00:00Z"), c.UpdatedAt)
			require.Equal(t, at("2022-01-01T00:00:00Z"), e.OccurredAt)
			require.Equal(t, "gid://shopify/Customer/603851970716743426", c.Customer.ID)
			require.Equal(t, "john@example.com", c.Customer.Email)
			require.Same(t, c.Customer, e.Customer)
		}},
		{file: "shopify_carts_update.json", topic: "carts/update", check: func(t *testing.T, ev []event.Event) {
			require.Len(t, ev, 1)
			c := ev[0].Cart
			require.Equal(t, event.KindCartUpdated, ev[0].Kind)
			require.Equal(t, "exampleCartId", c.Token)
			require.Empty(t, c.CartToken)
			require.Equal(t, event.Money{Minor: 5997, Currency: "USD"}, c.Total, "summed from line_price")
			require.Len(t, c.Items, 1)
			require.Equal(t, int64(3), c.Items[0].Quantity)
			require.Equal(t, event.Money{Minor: 1999, Currency: "USD"}, c.Items[0].UnitPrice)
			require.Equal(t, "gid://shopify/Product/788032119674292922", c.Items[0].ProductID)
			require.Nil(t, c.Customer)
			require.Equal(t, at("2022-01-01T00:00:00Z"), ev[0].OccurredAt)
		}},
		{file: "shopify_customers_create.json", topic: "customers/create", check: func(t *testing.T, ev []event.Event) {
			require.Len(t, ev, 1)
			c := ev[0].Customer
			require.Equal(t, event.KindCustomerCreated, ev[0].Kind)
			require.Equal(t, "gid://shopify/Customer/706405506930370084", c.ID)
			require.Equal(t, "bob@biller.com", c.Email)
			require.Equal(t, "Bob", c.FirstName)
			require.Equal(t, "Biller", c.LastName)
			require.Equal(t, at("2022-01-01T00:00:00Z"), c.CreatedAt)
			require.Equal(t, at("2022-01-01T00:00:00Z"), ev[0].OccurredAt)
			require.Nil(t, c.EmailConsent)
		}},
		{file: "testdata/customers_delete.json", topic: "customers/delete", check: func(t *testing.T, ev []event.Event) {
			require.Len(t, ev, 1)
			require.Equal(t, event.KindCustomerDeleted, ev[0].Kind)
			require.Equal(t, "gid://shopify/Customer/706405506930370084", ev[0].Customer.ID)
			require.True(t, ev[0].OccurredAt.IsZero())
		}},
		{file: "shopify_customers_email_marketing_consent_update.json", topic: "customers_email_marketing_consent/update", check: func(t *testing.T, ev []event.Event) {
			require.Len(t, ev, 1, "not_subscribed is a consent change, not an unsubscribe")
			e := ev[0]
			require.Equal(t, event.KindConsentUpdated, e.Kind)
			require.Equal(t, "gid://shopify/Customer/706405506930370084", e.Customer.ID)
			require.Equal(t, "bob@biller.com", e.Customer.Email)
			require.Equal(t, &event.Consent{State: event.ConsentNotSubscribed, PlatformState: "not_subscribed"}, e.Customer.EmailConsent)
		}},
		{file: "testdata/customers_email_marketing_consent_update_subscribed.json", topic: "customers_email_marketing_consent/update", check: func(t *testing.T, ev []event.Event) {
			require.Len(t, ev, 2)
			require.Equal(t, event.KindConsentUpdated, ev[0].Kind)
			require.Equal(t, event.KindNewsletterSubscribed, ev[1].Kind)
			require.Equal(t, event.ConsentSubscribed, ev[1].Customer.EmailConsent.State)
			require.Equal(t, "confirmed_opt_in", ev[1].Customer.EmailConsent.OptInLevel)
			require.Equal(t, at("2024-03-05T15:15:00Z"), ev[1].OccurredAt)
		}},
		{file: "testdata/customers_redact.json", topic: "customers/redact", check: func(t *testing.T, ev []event.Event) {
			require.Len(t, ev, 1)
			e := ev[0]
			require.Equal(t, event.KindCustomerRedacted, e.Kind)
			require.Equal(t, &event.Customer{ID: "gid://shopify/Customer/191167", Email: "john@example.com", Phone: "555-625-1199"}, e.Customer)
			require.Equal(t, &event.PrivacyRequest{ShopID: "954889", ShopDomain: "{shop}.myshopify.com", OrderIDs: []string{
				"gid://shopify/Order/299938", "gid://shopify/Order/280263", "gid://shopify/Order/220458",
			}}, e.Privacy)
		}},
		{file: "testdata/customers_data_request.json", topic: "customers/data_request", check: func(t *testing.T, ev []event.Event) {
			require.Len(t, ev, 1)
			e := ev[0]
			require.Equal(t, event.KindCustomerDataRequest, e.Kind)
			require.Equal(t, "gid://shopify/Customer/191167", e.Customer.ID)
			require.Equal(t, "9999", e.Privacy.RequestID)
			require.Len(t, e.Privacy.OrderIDs, 3)
		}},
	}
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

func TestEveryShopifyFixtureHasACase(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(fixtures(), "shopify_*.json"))
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

			require.NoError(t, Verify(h, body, testSecret))

			d, err := Delivery(h, body)
			require.NoError(t, err)
			require.Equal(t, event.SourceShopify, d.Source)
			require.Equal(t, tc.topic, d.Topic)
			require.Equal(t, tc.topic+":98880550-7158-44d4-b7cd-2c97c8a091b5", d.DedupeKey)
			require.Equal(t, body, d.Body)
			require.Equal(t, "example.myshopify.com", d.Headers["X-Shopify-Shop-Domain"])

			events, err := Parse(d.Topic, d.Body)
			require.NoError(t, err)
			for _, e := range events {
				require.Equal(t, event.SourceShopify, e.Source)
				require.Equal(t, tc.topic, e.Topic)
				require.True(t, e.Kind.Valid())
			}
			tc.check(t, events)
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	body := readCase(t, "shopify_orders_create.json")
	h := headersFor("orders/create", body)

	tampered := []byte(strings.Replace(string(body), "414.95", "0.01", 1))
	require.ErrorIs(t, Verify(h, tampered, testSecret), storefront.ErrBadSignature)
	require.ErrorIs(t, Verify(h, body, "another-secret"), storefront.ErrBadSignature)
	require.ErrorIs(t, Verify(h, body, ""), storefront.ErrNoKey)

	h.Del("X-Shopify-Hmac-Sha256")
	require.ErrorIs(t, Verify(h, body, testSecret), storefront.ErrBadSignature)
	h.Set("X-Shopify-Hmac-Sha256", "not base64!")
	require.ErrorIs(t, Verify(h, body, testSecret), storefront.ErrBadSignature)
}

func TestDeliveryFallbacks(t *testing.T) {
	body := []byte(`{"id":1}`)
	h := http.Header{}
	_, err := Delivery(h, body)
	var pe *storefront.ParseError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "X-Shopify-Topic", pe.Field)

	h.Set("X-Shopify-Topic", "customers/update")
	d, err := Delivery(h, body)
	require.NoError(t, err)
	require.Equal(t, storefront.BodyKey(body), d.DedupeKey)

	h.Set("X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
	d, err = Delivery(h, body)
	require.NoError(t, err)
	require.Equal(t, "customers/update:webhook:b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", d.DedupeKey)
}

func TestParseErrors(t *testing.T) {
	_, err := Parse("shop/redact", []byte(`{}`))
	require.ErrorIs(t, err, storefront.ErrUnknownTopic)

	_, err = Parse("orders/create", []byte(`{"id": 1, "total_price": "12.3.4"}`))
	var pe *storefront.ParseError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "total_price", pe.Field)

	_, err = Parse("orders/create", []byte(`{"id": 1, "line_items": [{"quantity": "lots"}]}`))
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "line_items.0.quantity", pe.Field)

	_, err = Parse("customers/update", []byte(`{"id": 1, "updated_at": "yesterday"}`))
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "updated_at", pe.Field)

	_, err = Parse("customers/update", []byte(`{"email": "a@b.c"}`))
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "id", pe.Field)

	_, err = Parse("orders/create", []byte(`[`))
	require.ErrorAs(t, err, &pe)
	require.False(t, errors.Is(err, storefront.ErrUnknownTopic))
}

func TestCompletedCheckoutConverts(t *testing.T) {
	body := []byte(`{"token":"abc","completed_at":"2024-01-02T03:04:05Z","updated_at":"2024-01-02T03:04:05Z","order_id":1234,"currency":"KWD","total_price":"12.345"}`)
	events, err := Parse("checkouts/update", body)
	require.NoError(t, err)
	require.Len(t, events, 1)
	require.Equal(t, event.KindCartConverted, events[0].Kind)
	require.Equal(t, event.CartConverted, events[0].Cart.Status)
	require.Equal(t, "gid://shopify/Order/1234", events[0].Cart.OrderID)
	require.Equal(t, event.Money{Minor: 12345, Currency: "KWD"}, events[0].Cart.Total)
}

func FuzzParse(f *testing.F) {
	for _, tc := range cases() {
		f.Add(tc.topic, readCase(f, tc.file))
	}
	f.Fuzz(func(t *testing.T, topic string, body []byte) {
		events, err := Parse(topic, body)
		if err != nil {
			require.Nil(t, events)
			return
		}
		for _, e := range events {
			require.True(t, e.Kind.Valid())
		}
	})
}
