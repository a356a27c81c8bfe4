package saleor

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
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

// signJWS makes a detached RS256 JWS over body the way Saleor does
// (RFC 7797 unencoded payload).
func signJWS(t testing.TB, key *rsa.PrivateKey, kid string, body []byte) string {
	t.Helper()
	header := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"alg":"RS256","kid":%q,"b64":false,"crit":["b64"]}`, kid)))
	digest := sha256.Sum256(append([]byte(header+"."), body...))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	require.NoError(t, err)
	return header + ".." + base64.RawURLEncoding.EncodeToString(sig)
}

type testKeys struct {
	main, other *rsa.PrivateKey
}

func newKeys(t *testing.T) testKeys {
	t.Helper()
	main, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	return testKeys{main: main, other: other}
}

// keyFunc resolves "main" and "rotated-out" (which points at another key),
// and fails like a JWKS cache for anything else.
func (k testKeys) keyFunc(ctx context.Context, kid string) (crypto.PublicKey, error) {
	switch kid {
	case "main":
		return &k.main.PublicKey, nil
	case "rotated-out":
		return &k.other.PublicKey, nil
	case "jwks-down":
		return nil, errors.New("fetch jwks: connection refused")
	}
	return nil, fmt.Errorf("no key %q: %w", kid, storefront.ErrBadSignature)
}

type testCase struct {
	file  string
	event string
	check func(t *testing.T, events []event.Event)
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func cases() []testCase {
	return []testCase{
		{file: "saleor_order_created.json", event: "order_created", check: func(t *testing.T, ev []event.Event) {
			require.Len(t, ev, 1)
			e := ev[0]
			require.Equal(t, event.KindOrderCreated, e.Kind)
			require.Equal(t, "T3JkZXI6YzhmY2FjMTgtMWQ5Yy00NWRkLTgxMGYtMGIzMTJiYTNjZDYz", e.Order.ID)
			require.Len(t, e.Order.Items, 1)
			require.Equal(t, event.Money{}, e.Order.Total)
			require.Nil(t, e.Customer)
			require.True(t, e.OccurredAt.IsZero())
		}},
		{file: "saleor_order_created_event_root.json", event: "order_created", check: func(t *testing.T, ev []event.Event) {
			require.Len(t, ev, 1)
			e := ev[0]
			require.Equal(t, "T3JkZXI6MWFkNzZjOTctZDkxNy00NjRmLWIwNzUtOTljNzcwY2IzOWI4", e.Order.ID)
			require.Equal(t, at("2022-12-12T00:37:17.405467Z"), e.OccurredAt)
			require.Empty(t, e.Order.Items)
		}},
		{file: "saleor_checkout_updated.json", event: "checkout_updated", check: func(t *testing.T, ev []event.Event) {
			require.Len(t, ev, 1)
			e := ev[0]
			require.Equal(t, event.KindCartUpdated, e.Kind)
			c := e.Cart
			require.Equal(t, "3b2b8b6a-2a43-4b7b-9a5f-0c1f3c2d9e11", c.Token)
			require.Equal(t, "Q2hlY2tvdXQ6M2IyYjhiNmEtMmE0My00YjdiLTlhNWYtMGMxZjNjMmQ5ZTEx", c.ID)
			require.Len(t, c.Items, 1)
			require.Equal(t, "UHJvZHVjdFZhcmlhbnQ6NDI=", c.Items[0].VariantID)
			require.Equal(t, event.CartOpen, c.Status)
		}},
		{file: "testdata/order_created_full.json", event: "order_created", check: func(t *testing.T, ev []event.Event) {
			require.Len(t, ev, 1)
			e := ev[0]
			o := e.Order
			require.Equal(t, "1187", o.Number)
			require.Equal(t, "UNFULFILLED", o.Status)
			require.Equal(t, event.Money{Minor: 10790, Currency: "EUR"}, o.Total)
			require.Equal(t, "marie.curie@example.fr", o.Email)
			require.Equal(t, "3b2b8b6a-2a43-4b7b-9a5f-0c1f3c2d9e11", o.CheckoutToken, "decoded from the checkout global ID")
			require.Equal(t, at("2024-06-03T14:05:10.120031Z"), o.PlacedAt)
			require.Equal(t, at("2024-06-03T14:05:11.912345Z"), e.OccurredAt, "issuedAt is later than updatedAt here")
			require.Equal(t, []event.LineItem{
				{ProductID: "UHJvZHVjdDo4OA==", VariantID: "UHJvZHVjdFZhcmlhbnQ6MzE3", SKU: "BLOUSE-LIN-M-ECRU", Title: "Blouse en lin", Quantity: 2, UnitPrice: event.Money{Minor: 4495, Currency: "EUR"}},
				{Title: "Livraison Colissimo", Quantity: 1, UnitPrice: event.Money{Minor: 1800, Currency: "EUR"}},
			}, o.Items)
			require.Equal(t, &event.Customer{ID: "VXNlcjoxMDI0", Email: "m.curie@example.fr", FirstName: "Marie", LastName: "Curie", Locale: "fr-FR"}, o.Customer)
			require.Same(t, o.Customer, e.Customer)
		}},
		{file: "testdata/order_fully_paid_guest.json", event: "order_fully_paid", check: func(t *testing.T, ev []event.Event) {
			require.Len(t, ev, 1)
			e := ev[0]
			require.Equal(t, event.KindOrderPaid, e.Kind)
			require.Equal(t, event.Money{Minor: 12980, Currency: "JPY"}, e.Order.Total)
			require.Equal(t, &event.Customer{Email: "guest@example.jp"}, e.Order.Customer, "a guest has no id")
			require.Equal(t, at("2024-06-04T08:00:02Z"), e.Order.PaidAt)
		}},
		{file: "testdata/order_refunded.json", event: "order_refunded", check: func(t *testing.T, ev []event.Event) {
			require.Len(t, ev, 1)
			e := ev[0]
			require.Equal(t, event.KindOrderRefunded, e.Kind)
			require.Equal(t, event.Money{Minor: 4495, Currency: "EUR"}, e.Order.Refunded)
			require.Equal(t, at("2024-06-10T12:00:00Z"), e.Order.RefundedAt)
		}},
		{file: "testdata/customer_created.json", event: "customer_created", check: func(t *testing.T, ev []event.Event) {
			require.Len(t, ev, 1)
			e := ev[0]
			require.Equal(t, event.KindCustomerCreated, e.Kind)
			require.Equal(t, "VXNlcjoxMDI0", e.Customer.ID)
			require.Equal(t, "fr-FR", e.Customer.Locale)
			require.Equal(t, at("2024-06-01T08:59:59.101Z"), e.Customer.CreatedAt)
			require.Equal(t, at("2024-06-01T09:00:00Z"), e.OccurredAt)
		}},
		{file: "testdata/checkout_updated_full.json", event: "checkout_updated", check: func(t *testing.T, ev []event.Event) {
			require.Len(t, ev, 1)
			c := ev[0].Cart
			require.Equal(t, event.Money{Minor: 8990, Currency: "EUR"}, c.Total)
			require.Equal(t, "m.curie@example.fr", c.Email)
			require.Equal(t, "VXNlcjoxMDI0", c.Customer.ID)
			require.Equal(t, event.LineItem{ProductID: "UHJvZHVjdDo4OA==", VariantID: "UHJvZHVjdFZhcmlhbnQ6MzE3", SKU: "BLOUSE-LIN-M-ECRU", Title: "Blouse en lin", Quantity: 2, UnitPrice: event.Money{Minor: 4495, Currency: "EUR"}}, c.Items[0])
			require.Equal(t, at("2024-06-03T13:58:40.000001Z"), c.UpdatedAt)
			require.Equal(t, at("2024-06-03T13:58:40.000001Z"), ev[0].OccurredAt)
		}},
	}
}

func TestEverySaleorFixtureHasACase(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(fixtures(), "saleor_*.json"))
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
	keys := newKeys(t)
	ctx := context.Background()
	for _, tc := range cases() {
		t.Run(tc.file, func(t *testing.T) {
			body := readCase(t, tc.file)
			h := http.Header{}
			h.Set("Saleor-Event", tc.event)
			h.Set("Saleor-Domain", "shop.example.com")
			h.Set("Saleor-Signature", signJWS(t, keys.main, "main", body))

			require.NoError(t, Verify(ctx, h, body, VerifyOpts{Keys: keys.keyFunc}))

			d, err := Delivery(h, body)
			require.NoError(t, err)
			require.Equal(t, event.SourceSaleor, d.Source)
			require.Equal(t, tc.event, d.Topic)
			require.Equal(t, body, d.Body)
			require.Equal(t, "shop.example.com", d.Headers["Saleor-Domain"])

			events, err := Parse(d.Topic, d.Body)
			require.NoError(t, err)
			for _, e := range events {
				require.Equal(t, event.SourceSaleor, e.Source)
				require.Equal(t, tc.event, e.Topic)
			}
			tc.check(t, events)
		})
	}
}

func TestDeliveryDedupeKey(t *testing.T) {
	h := http.Header{}
	h.Set("Saleor-Event", "ORDER_CREATED")

	body := readCase(t, "saleor_order_created_event_root.json")
	d, err := Delivery(h, body)
	require.NoError(t, err)
	require.Equal(t, "order_created", d.Topic)
	require.Equal(t, "order_created:T3JkZXI6MWFkNzZjOTctZDkxNy00NjRmLWIwNzUtOTljNzcwY2IzOWI4:2022-12-12T00:37:17.405467+00:00", d.DedupeKey)

	// No issuedAt and no updatedAt: the body hash.
	body = readCase(t, "saleor_order_created.json")
	d, err = Delivery(h, body)
	require.NoError(t, err)
	require.Equal(t, storefront.BodyKey(body), d.DedupeKey)

	// No issuedAt but an updatedAt.
	body = readCase(t, "testdata/checkout_updated_full.json")
	h.Set("Saleor-Event", "checkout_updated")
	d, err = Delivery(h, body)
	require.NoError(t, err)
	require.Equal(t, "checkout_updated:Q2hlY2tvdXQ6M2IyYjhiNmEtMmE0My00YjdiLTlhNWYtMGMxZjNjMmQ5ZTEx:2024-06-03T13:58:40.000001+00:00", d.DedupeKey)

	h.Del("Saleor-Event")
	_, err = Delivery(h, body)
	var pe *storefront.ParseError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "Saleor-Event", pe.Field)
}

func TestVerifyRejects(t *testing.T) {
	keys := newKeys(t)
	ctx := context.Background()
	body := readCase(t, "testdata/order_created_full.json")
	opts := VerifyOpts{Keys: keys.keyFunc}
	h := http.Header{}

	require.ErrorIs(t, Verify(ctx, h, body, opts), storefront.ErrBadSignature, "missing signature")

	h.Set("Saleor-Signature", signJWS(t, keys.main, "main", body))
	tampered := []byte(strings.Replace(string(body), "107.9", "1.9", 1))
	require.ErrorIs(t, Verify(ctx, h, tampered, opts), storefront.ErrBadSignature, "tampered body")

	h.Set("Saleor-Signature", signJWS(t, keys.main, "rotated-out", body))
	require.ErrorIs(t, Verify(ctx, h, body, opts), storefront.ErrBadSignature, "kid resolves to another key")

	h.Set("Saleor-Signature", signJWS(t, keys.main, "unknown", body))
	require.ErrorIs(t, Verify(ctx, h, body, opts), storefront.ErrBadSignature, "unknown kid")

	h.Set("Saleor-Signature", signJWS(t, keys.main, "jwks-down", body))
	err := Verify(ctx, h, body, opts)
	require.Error(t, err)
	require.NotErrorIs(t, err, storefront.ErrBadSignature, "a JWKS outage is not the sender's fault")

	// Another algorithm in the header, even with a valid RSA signature, is refused.
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"main","b64":false,"crit":["b64"]}`))
	mac := hmac.New(sha256.New, []byte("main"))
	mac.Write([]byte(header + "."))
	mac.Write(body)
	h.Set("Saleor-Signature", header+".."+base64.RawURLEncoding.EncodeToString(mac.Sum(nil)))
	require.ErrorIs(t, Verify(ctx, h, body, opts), storefront.ErrBadSignature, "alg HS256")

	// b64:false must be declared critical.
	header = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"main","b64":false}`))
	digest := sha256.Sum256(append([]byte(header+"."), body...))
	sig, err := rsa.SignPKCS1v15(rand.Reader, keys.main, crypto.SHA256, digest[:])
	require.NoError(t, err)
	h.Set("Saleor-Signature", header+".."+base64.RawURLEncoding.EncodeToString(sig))
	require.ErrorIs(t, Verify(ctx, h, body, opts), storefront.ErrBadSignature, "b64 not critical")

	// A key of another type.
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	h.Set("Saleor-Signature", signJWS(t, keys.main, "main", body))
	ecKeys := func(context.Context, string) (crypto.PublicKey, error) { return &ec.PublicKey, nil }
	require.ErrorIs(t, Verify(ctx, h, body, VerifyOpts{Keys: ecKeys}), storefront.ErrBadSignature, "not an RSA key")

	// A JWS with only a legacy secret configured.
	require.ErrorIs(t, Verify(ctx, h, body, VerifyOpts{Secret: "s"}), storefront.ErrNoKey)
	require.ErrorIs(t, Verify(ctx, h, body, VerifyOpts{}), storefront.ErrNoKey)
}

func TestVerifyLegacyHMAC(t *testing.T) {
	ctx := context.Background()
	body := readCase(t, "saleor_order_created.json")
	mac := hmac.New(sha256.New, []byte("legacy-secret"))
	mac.Write(body)
	h := http.Header{}
	h.Set("Saleor-Signature", hex.EncodeToString(mac.Sum(nil)))

	require.NoError(t, Verify(ctx, h, body, VerifyOpts{Secret: "legacy-secret"}))
	require.ErrorIs(t, Verify(ctx, h, body, VerifyOpts{Secret: "other"}), storefront.ErrBadSignature)
	require.ErrorIs(t, Verify(ctx, h, append(body, ' '), VerifyOpts{Secret: "legacy-secret"}), storefront.ErrBadSignature)
	keys := func(context.Context, string) (crypto.PublicKey, error) { return nil, errors.New("unused") }
	require.ErrorIs(t, Verify(ctx, h, body, VerifyOpts{Keys: keys}), storefront.ErrBadSignature, "legacy signature without a secret")
}

func TestParseErrors(t *testing.T) {
	_, err := Parse("product_updated", []byte(`{}`))
	require.ErrorIs(t, err, storefront.ErrUnknownTopic)

	var pe *storefront.ParseError
	_, err = Parse("ORDER_CREATED", []byte(`{"order":{"id":"x","total":{"gross":{"amount":"abc","currency":"EUR"}}}}`))
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "order.total.gross.amount", pe.Field)

	_, err = Parse("order_created", []byte(`{"checkout":{"id":"x"}}`))
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "order.id", pe.Field)

	_, err = Parse("order_created", []byte(`{"data":{"orderCreated":null}}`))
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "data", pe.Field)
}

func FuzzParse(f *testing.F) {
	for _, tc := range cases() {
		f.Add(tc.event, readCase(f, tc.file))
	}
	f.Fuzz(func(t *testing.T, topic string, body []byte) {
		events, err := Parse(topic, body)
		if err != nil {
			require.Nil(t, events)
			return
		}
		require.Len(t, events, 1)
		h := http.Header{}
		h.Set("Saleor-Event", "x")
		_, err = Delivery(h, body)
		require.NoError(t, err)
	})
}
