package bigcommerce

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/storefront"
)

const testSecret = "bc-client-secret-9f8e7d6c5b4a"

func fixtures() string {
	return filepath.Join("..", "..", "..", "testdata", "webhooks")
}

func readFixture(t testing.TB, file string) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(fixtures(), file))
	require.NoError(t, err)
	return body
}

// sign signs like BigCommerce: Standard Webhooks with the raw client secret
// bytes as the HMAC key. It does not use the package's helpers.
func sign(secret, id string, ts time.Time, body []byte) http.Header {
	stamp := strconv.FormatInt(ts.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(id + "." + stamp + "."))
	m.Write(body)
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", stamp)
	h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	return h
}

type testCase struct {
	file  string
	kinds []event.Kind
	ref   event.ResourceRef
	at    int64
	key   string
}

func cases() []testCase {
	return []testCase{
		{file: "bigcommerce_store_cart_abandoned.json", kinds: []event.Kind{event.KindCartAbandoned},
			ref: event.ResourceRef{Type: event.ResourceCart, ID: "09346904-4175-44fd-be53-f7e598531b6c", StoreID: "1025646", Token: "1eed6d2d979776ff18e695ceeb10ea61"},
			at:  1561482670, key: "store/cart/abandoned:352e4afc6dd3fc85ea26bfdf3f91852604d57528"},
		{file: "bigcommerce_store_cart_updated.json", kinds: []event.Kind{event.KindCartUpdated},
			ref: event.ResourceRef{Type: event.ResourceCart, ID: "09346904-4175-44fd-be53-f7e598531b6c", StoreID: "1025646"},
			at:  1561482670, key: "store/cart/updated:352e4afc6dd3fc85ea26bfdf3f91852604d57528"},
		{file: "bigcommerce_store_customer_created.json", kinds: []event.Kind{event.KindCustomerCreated},
			ref: event.ResourceRef{Type: event.ResourceCustomer, ID: "32", StoreID: "1025646"},
			at:  1561481571, key: "store/customer/created:8768ab15aa86c6d73c7e4c3efbaee072110ad1d2"},
		{file: "bigcommerce_store_order_created.json", kinds: []event.Kind{event.KindOrderCreated},
			ref: event.ResourceRef{Type: event.ResourceOrder, ID: "250", StoreID: "1025646"},
			at:  1561479335, key: "store/order/created:dd70c0976e06b67aaf671e73f49dcb79230ebf9d"},
		{file: "bigcommerce_store_order_refund_created.json", kinds: []event.Kind{event.KindOrderRefunded},
			ref: event.ResourceRef{Type: event.ResourceOrder, ID: "250", StoreID: "1025646", RefundID: "3"},
			at:  1561479923, key: "store/order/refund/created:cb07cdbdda8b1965e812693d5988154807eeed02"},
		{file: "bigcommerce_store_order_statusUpdated.json", kinds: []event.Kind{event.KindOrderPaid},
			ref: event.ResourceRef{Type: event.ResourceOrder, ID: "250", StoreID: "1025646", Status: "11", PreviousStatus: "0"},
			at:  1561479335, key: "store/order/statusUpdated:7ee67cd1cf2ca60bc1aa9e5fe957d2de373be4ca"},
		{file: "bigcommerce_store_subscriber_created.json", kinds: []event.Kind{event.KindNewsletterSubscribed},
			ref: event.ResourceRef{Type: event.ResourceSubscriber, ID: "5", StoreID: "1025646"},
			at:  1561482953, key: "store/subscriber/created:bdb6c9c2d17ca7036538e483db0bdd7debc4beb4"},
	}
}

func TestEveryBigCommerceFixtureHasACase(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(fixtures(), "bigcommerce_*.json"))
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
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range cases() {
		t.Run(tc.file, func(t *testing.T) {
			body := readFixture(t, tc.file)
			h := sign(testSecret, "msg_2Lh9Kp3", now.Add(-30*time.Second), body)
			require.NoError(t, Verify(h, body, testSecret, now))

			d, err := Delivery(h, body)
			require.NoError(t, err)
			require.Equal(t, event.SourceBigCommerce, d.Source)
			require.Equal(t, tc.key, d.DedupeKey)
			require.Equal(t, "msg_2Lh9Kp3", d.Headers["Webhook-Id"])

			events, err := Parse(d.Topic, d.Body)
			require.NoError(t, err)
			require.Len(t, events, len(tc.kinds))
			for i, e := range events {
				require.Equal(t, tc.kinds[i], e.Kind)
				require.Equal(t, event.SourceBigCommerce, e.Source)
				require.Equal(t, d.Topic, e.Topic)
				require.True(t, e.Thin)
				require.Equal(t, tc.ref, *e.Ref)
				require.Equal(t, time.Unix(tc.at, 0).UTC(), e.OccurredAt)
				require.Nil(t, e.Order)
				require.Nil(t, e.Cart)
				require.Nil(t, e.Customer)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	body := readFixture(t, "bigcommerce_store_order_created.json")

	h := sign(testSecret, "msg_1", now, body)
	require.ErrorIs(t, Verify(h, []byte(strings.Replace(string(body), "250", "251", 1)), testSecret, now), storefront.ErrBadSignature, "tampered")
	require.ErrorIs(t, Verify(h, body, "other-secret", now), storefront.ErrBadSignature, "wrong secret")
	require.ErrorIs(t, Verify(h, body, "", now), storefront.ErrNoKey)

	// The key is the raw secret: a base64-decoded key must not verify.
	raw, err := base64.StdEncoding.DecodeString("YmMtY2xpZW50LXNlY3JldA==")
	require.NoError(t, err)
	require.ErrorIs(t, Verify(sign(string(raw), "msg_1", now, body), body, "YmMtY2xpZW50LXNlY3JldA==", now), storefront.ErrBadSignature)

	stale := sign(testSecret, "msg_1", now.Add(-5*time.Minute-time.Second), body)
	require.ErrorIs(t, Verify(stale, body, testSecret, now), storefront.ErrBadSignature, "stale")
	future := sign(testSecret, "msg_1", now.Add(5*time.Minute+time.Second), body)
	require.ErrorIs(t, Verify(future, body, testSecret, now), storefront.ErrBadSignature, "from the future")
	edge := sign(testSecret, "msg_1", now.Add(-5*time.Minute), body)
	require.NoError(t, Verify(edge, body, testSecret, now), "exactly 5 minutes old is still fresh")

	h.Del("webhook-signature")
	require.ErrorIs(t, Verify(h, body, testSecret, now), storefront.ErrBadSignature, "missing signature")
}

func TestParseScopes(t *testing.T) {
	body := func(scope, data string) []byte {
		return []byte(`{"scope":"` + scope + `","store_id":"1","data":` + data + `,"hash":"h","created_at":1561479335}`)
	}
	for _, tc := range []struct {
		scope, data string
		kinds       []event.Kind
	}{
		{"store/order/statusUpdated", `{"type":"order","id":7,"status":{"previous_status_id":11,"new_status_id":10}}`, []event.Kind{event.KindOrderPaid, event.KindOrderFulfilled}},
		{"store/order/statusUpdated", `{"type":"order","id":7,"status":{"previous_status_id":11,"new_status_id":5}}`, []event.Kind{event.KindOrderCancelled}},
		{"store/order/statusUpdated", `{"type":"order","id":7,"status":{"previous_status_id":1,"new_status_id":7}}`, nil},
		{"store/order/statusUpdated", `{"type":"order","id":7,"status":{"previous_status_id":10,"new_status_id":4}}`, nil},
		{"store/order/updated", `{"type":"order","id":7}`, nil},
		{"store/order/archived", `{"type":"order","id":7}`, nil},
		{"store/cart/created", `{"type":"cart","id":"c1"}`, []event.Kind{event.KindCartUpdated}},
		{"store/cart/lineItem/created", `{"type":"cart_line_item","id":"l1","cartId":"c1"}`, []event.Kind{event.KindCartUpdated}},
		{"store/cart/converted", `{"type":"cart","id":"c1","orderId":252}`, []event.Kind{event.KindCartConverted}},
		{"store/cart/deleted", `{"type":"cart","id":"c1"}`, nil},
		{"store/customer/updated", `{"type":"customer","id":32}`, []event.Kind{event.KindCustomerUpdated}},
		{"store/customer/deleted", `{"type":"customer","id":32}`, []event.Kind{event.KindCustomerDeleted}},
		{"store/customer/address/created", `{"type":"customer","id":60,"address":{"customer_id":32}}`, nil},
		{"store/subscriber/deleted", `{"type":"subscriber","id":5}`, []event.Kind{event.KindNewsletterUnsubscribed}},
	} {
		t.Run(tc.scope+tc.data, func(t *testing.T) {
			events, err := Parse(tc.scope, body(tc.scope, tc.data))
			require.NoError(t, err)
			var kinds []event.Kind
			for _, e := range events {
				kinds = append(kinds, e.Kind)
			}
			require.Equal(t, tc.kinds, kinds)
		})
	}

	events, err := Parse("store/cart/lineItem/created", body("store/cart/lineItem/created", `{"type":"cart_line_item","id":"l1","cartId":"c1"}`))
	require.NoError(t, err)
	require.Equal(t, "c1", events[0].Ref.ID)

	events, err = Parse("store/cart/converted", body("store/cart/converted", `{"type":"cart","id":"c1","orderId":252}`))
	require.NoError(t, err)
	require.Equal(t, "252", events[0].Ref.OrderID)

	_, err = Parse("store/product/updated", body("store/product/updated", `{"type":"product","id":1}`))
	require.ErrorIs(t, err, storefront.ErrUnknownTopic)

	var pe *storefront.ParseError
	_, err = Parse("store/order/created", body("store/order/created", `{"type":"order"}`))
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "data.id", pe.Field)
}

func TestDeliveryErrors(t *testing.T) {
	_, err := Delivery(http.Header{}, []byte(`{"data":{}}`))
	var pe *storefront.ParseError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "scope", pe.Field)

	h := http.Header{}
	h.Set("webhook-id", "msg_9")
	d, err := Delivery(h, []byte(`{"scope":"store/order/created","data":{"id":1}}`))
	require.NoError(t, err)
	require.Equal(t, "webhook-id:msg_9", d.DedupeKey, "no hash: the Standard Webhooks id")
}

// fakeStore answers like a Fetcher over the BigCommerce API would.
type fakeStore struct{ calls []string }

func (f *fakeStore) FetchOrder(_ context.Context, id string) (*event.Order, error) {
	f.calls = append(f.calls, "order "+id)
	return &event.Order{ID: id, Status: "Awaiting Fulfillment", Total: event.Money{Minor: 22500, Currency: "USD"},
		Customer: &event.Customer{ID: "32", Email: "jane@example.com"}}, nil
}

func (f *fakeStore) FetchCart(_ context.Context, id string) (*event.Cart, error) {
	f.calls = append(f.calls, "cart "+id)
	return &event.Cart{Token: id, Status: event.CartOpen}, nil
}

func (f *fakeStore) FetchCustomer(_ context.Context, id string) (*event.Customer, error) {
	f.calls = append(f.calls, "customer "+id)
	if id == "404" {
		return nil, errors.New("customer not found")
	}
	return &event.Customer{ID: id, Email: "jane@example.com"}, nil
}

func TestHydrate(t *testing.T) {
	ctx := context.Background()
	store := &fakeStore{}
	var all []event.Event
	for _, f := range []string{"bigcommerce_store_order_statusUpdated.json", "bigcommerce_store_cart_abandoned.json", "bigcommerce_store_customer_created.json", "bigcommerce_store_subscriber_created.json"} {
		body := readFixture(t, f)
		d, err := Delivery(http.Header{}, body)
		require.NoError(t, err)
		events, err := Parse(d.Topic, d.Body)
		require.NoError(t, err)
		all = append(all, events...)
	}
	out, err := Hydrate(ctx, store, all)
	require.NoError(t, err)
	require.Equal(t, []string{"order 250", "cart 09346904-4175-44fd-be53-f7e598531b6c", "customer 32"}, store.calls)
	require.False(t, out[0].Thin)
	require.Equal(t, int64(22500), out[0].Order.Total.Minor)
	require.Equal(t, time.Unix(1561479335, 0).UTC(), out[0].Order.PaidAt)
	require.Equal(t, "32", out[0].Customer.ID)
	require.Equal(t, event.CartAbandoned, out[1].Cart.Status)
	require.Equal(t, "jane@example.com", out[2].Customer.Email)
	require.True(t, out[3].Thin, "subscribers have no fetch")
	require.True(t, all[0].Thin, "the input is not modified")

	_, err = Hydrate(ctx, store, []event.Event{{Kind: event.KindCustomerUpdated, Thin: true, Ref: &event.ResourceRef{Type: event.ResourceCustomer, ID: "404"}}})
	require.ErrorContains(t, err, "customer not found")

	same, err := Hydrate(ctx, nil, all)
	require.NoError(t, err)
	require.Equal(t, all, same)
}

func FuzzParse(f *testing.F) {
	for _, tc := range cases() {
		body := readFixture(f, tc.file)
		d, err := Delivery(http.Header{}, body)
		require.NoError(f, err)
		f.Add(d.Topic, body)
	}
	f.Fuzz(func(t *testing.T, topic string, body []byte) {
		events, err := Parse(topic, body)
		if err != nil {
			require.Nil(t, events)
		}
		for _, e := range events {
			require.True(t, e.Thin)
			require.NotNil(t, e.Ref)
		}
		_, _ = Delivery(http.Header{}, body)
	})
}
