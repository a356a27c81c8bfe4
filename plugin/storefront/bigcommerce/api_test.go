package bigcommerce

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/storefront"
)

// Responses shaped like the BigCommerce API reference examples.
const (
	apiOrder = `{
  "id": 250, "customer_id": 32, "date_created": "Tue, 25 Jun 2019 16:15:35 +0000",
  "date_modified": "Tue, 25 Jun 2019 16:18:47 +0000", "date_shipped": "",
  "status_id": 11, "status": "Awaiting Fulfillment", "subtotal_ex_tax": "225.0000",
  "total_ex_tax": "225.0000", "total_inc_tax": "245.2500", "refunded_amount": "20.0000",
  "currency_code": "USD", "payment_method": "Cash", "cart_id": "09346904-4175-44fd-be53-f7e598531b6c",
  "billing_address": {"first_name": "Jane", "last_name": "Doe", "email": "jane.billing@example.com", "phone": "555-0100"},
  "products": {"url": "https://api.bigcommerce.com/stores/abc123/v2/orders/250/products", "resource": "/orders/250/products"}
}`
	apiOrderProducts = `[
  {"id": 1, "order_id": 250, "product_id": 77, "variant_id": 1, "name": "Fog Linen Chambray Towel", "sku": "SLCTBS",
   "quantity": 2, "base_price": "100.0000", "price_ex_tax": "100.0000", "price_inc_tax": "109.0000"},
  {"id": 2, "order_id": 250, "product_id": 0, "variant_id": 0, "name": "Gift wrap", "sku": "",
   "quantity": 1, "base_price": "25.0000", "price_ex_tax": "25.0000", "price_inc_tax": "27.2500"}
]`
	apiGuestOrder = `{"id": 251, "customer_id": 0, "date_created": "Tue, 25 Jun 2019 16:15:35 +0000",
  "date_modified": "Tue, 25 Jun 2019 16:15:35 +0000", "status_id": 1, "status": "Pending",
  "total_inc_tax": "10.0000", "refunded_amount": "0.0000", "currency_code": "EUR", "cart_id": "",
  "billing_address": {"first_name": "Gus", "last_name": "Guest", "email": "gus@example.com"}}`
	apiCart = `{"data": {
  "id": "09346904-4175-44fd-be53-f7e598531b6c", "customer_id": 32, "email": "jane@example.com",
  "currency": {"code": "USD"}, "tax_included": false, "base_amount": 225, "discount_amount": 0, "cart_amount": 225.5,
  "line_items": {
    "physical_items": [{"id": "6e193ce6-f327-4dcc-b75e-72cf6738525e", "parent_id": null, "variant_id": 1, "product_id": 77,
      "sku": "SLCTBS", "name": "Fog Linen Chambray Towel", "quantity": 2, "list_price": 100, "sale_price": 100.25}],
    "digital_items": [{"id": "d1", "variant_id": 9, "product_id": 80, "sku": "EBOOK", "name": "Cookbook", "quantity": 1,
      "list_price": 25, "sale_price": 25}],
    "gift_certificates": [], "custom_items": []},
  "created_time": "2019-06-25T16:15:12+00:00", "updated_time": "2019-06-25T16:20:00+00:00",
  "redirect_urls": {"cart_url": "https://store.example.com/cart.php?action=load&id=0934&token=1eed",
    "checkout_url": "https://store.example.com/cart.php?action=loadInCheckout&id=0934&token=1eed"}},
  "meta": {}}`
	apiCustomers = `{"data": [{"id": 32, "authentication": {"force_password_reset": false}, "company": "",
  "customer_group_id": 0, "email": "jane@example.com", "first_name": "Jane", "last_name": "Doe", "notes": "",
  "phone": "555-0100", "registration_ip_address": "", "tax_exempt_category": "",
  "date_created": "2019-06-25T16:12:51Z", "date_modified": "2019-06-25T16:13:05Z",
  "accepts_product_review_abandoned_cart_emails": true, "channel_ids": [1]}],
  "meta": {"pagination": {"total": 1, "count": 1, "per_page": 50, "current_page": 1, "total_pages": 1}}}`
)

func apiServer(t *testing.T) (*Client, *[]string) {
	t.Helper()
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.URL.RequestURI())
		if r.Header.Get("X-Auth-Token") != "tok" || r.Header.Get("Accept") != "application/json" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.RequestURI() {
		case "/stores/abc123/v2/orders/250":
			_, _ = w.Write([]byte(apiOrder))
		case "/stores/abc123/v2/orders/250/products":
			_, _ = w.Write([]byte(apiOrderProducts))
		case "/stores/abc123/v2/orders/251":
			_, _ = w.Write([]byte(apiGuestOrder))
		case "/stores/abc123/v2/orders/251/products":
			w.WriteHeader(http.StatusNoContent)
		case "/stores/abc123/v3/carts/09346904-4175-44fd-be53-f7e598531b6c?include=redirect_urls":
			_, _ = w.Write([]byte(apiCart))
		case "/stores/abc123/v3/customers?id:in=32":
			_, _ = w.Write([]byte(apiCustomers))
		case "/stores/abc123/v3/customers?id:in=33":
			_, _ = w.Write([]byte(`{"data": [], "meta": {}}`))
		case "/stores/abc123/v2/orders/500":
			w.WriteHeader(http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"status": 404, "title": "The requested resource was not found."}`))
		}
	}))
	t.Cleanup(srv.Close)
	return &Client{StoreHash: "abc123", AccessToken: "tok", BaseURL: srv.URL, HTTP: srv.Client()}, &seen
}

func TestClientFetchesOrdersCartsCustomers(t *testing.T) {
	ctx := context.Background()
	c, _ := apiServer(t)

	o, err := c.FetchOrder(ctx, "250")
	require.NoError(t, err)
	require.Equal(t, "250", o.ID)
	require.Equal(t, "Awaiting Fulfillment", o.Status)
	require.Equal(t, event.Money{Minor: 24525, Currency: "USD"}, o.Total)
	require.Equal(t, event.Money{Minor: 2000, Currency: "USD"}, o.Refunded)
	require.False(t, o.RefundIncrement, "refunded_amount is the running total")
	require.Equal(t, "09346904-4175-44fd-be53-f7e598531b6c", o.CartToken)
	require.Equal(t, time.Date(2019, 6, 25, 16, 15, 35, 0, time.UTC), o.PlacedAt)
	require.Equal(t, time.Date(2019, 6, 25, 16, 18, 47, 0, time.UTC), o.UpdatedAt)
	require.Equal(t, &event.Customer{ID: "32"}, o.Customer, "a registered buyer is matched by id, not billing email")
	require.Equal(t, "jane.billing@example.com", o.Email)
	require.Equal(t, []event.LineItem{
		{ProductID: "77", VariantID: "1", SKU: "SLCTBS", Title: "Fog Linen Chambray Towel", Quantity: 2, UnitPrice: event.Money{Minor: 10900, Currency: "USD"}},
		{Title: "Gift wrap", Quantity: 1, UnitPrice: event.Money{Minor: 2725, Currency: "USD"}},
	}, o.Items)

	guest, err := c.FetchOrder(ctx, "251")
	require.NoError(t, err)
	require.Equal(t, &event.Customer{Email: "gus@example.com", FirstName: "Gus", LastName: "Guest"}, guest.Customer)
	require.Empty(t, guest.Items)

	cart, err := c.FetchCart(ctx, "09346904-4175-44fd-be53-f7e598531b6c")
	require.NoError(t, err)
	require.Equal(t, "09346904-4175-44fd-be53-f7e598531b6c", cart.Token)
	require.Equal(t, event.Money{Minor: 22550, Currency: "USD"}, cart.Total)
	require.Equal(t, "jane@example.com", cart.Email)
	require.Equal(t, &event.Customer{ID: "32"}, cart.Customer)
	require.Len(t, cart.Items, 2)
	require.Equal(t, event.Money{Minor: 10025, Currency: "USD"}, cart.Items[0].UnitPrice)
	require.Equal(t, "Cookbook", cart.Items[1].Title)
	require.Equal(t, "https://store.example.com/cart.php?action=load&id=0934&token=1eed", cart.RecoveryURL)
	require.Equal(t, time.Date(2019, 6, 25, 16, 20, 0, 0, time.UTC), cart.UpdatedAt)

	cust, err := c.FetchCustomer(ctx, "32")
	require.NoError(t, err)
	require.Equal(t, &event.Customer{ID: "32", Email: "jane@example.com", FirstName: "Jane", LastName: "Doe", Phone: "555-0100",
		CreatedAt: time.Date(2019, 6, 25, 16, 12, 51, 0, time.UTC), UpdatedAt: time.Date(2019, 6, 25, 16, 13, 5, 0, time.UTC)}, cust)

	_, err = c.FetchCustomer(ctx, "33")
	require.ErrorIs(t, err, storefront.ErrNotFound)
	_, err = c.FetchCart(ctx, "gone")
	require.ErrorIs(t, err, storefront.ErrNotFound)
	_, err = c.FetchOrder(ctx, "500")
	require.Error(t, err)
	require.NotErrorIs(t, err, storefront.ErrNotFound, "a server error is retried, not treated as gone")
	bad := *c
	bad.AccessToken = "wrong"
	_, err = bad.FetchOrder(ctx, "250")
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusUnauthorized, apiErr.Status)
}

func TestHydrateWithClient(t *testing.T) {
	ctx := context.Background()
	c, _ := apiServer(t)
	for _, tc := range []struct {
		file string
		want func(t *testing.T, e event.Event)
	}{
		{"bigcommerce_store_order_statusUpdated.json", func(t *testing.T, e event.Event) {
			require.False(t, e.Thin)
			require.Equal(t, event.KindOrderPaid, e.Kind)
			require.Equal(t, int64(24525), e.Order.Total.Minor)
			require.Equal(t, time.Unix(1561479335, 0).UTC(), e.Order.PaidAt, "stamped with the event time")
			require.Equal(t, "32", e.Customer.ID)
		}},
		{"bigcommerce_store_cart_abandoned.json", func(t *testing.T, e event.Event) {
			require.False(t, e.Thin)
			require.Equal(t, event.CartAbandoned, e.Cart.Status)
			require.Equal(t, "jane@example.com", e.Cart.Email)
		}},
		{"bigcommerce_store_customer_created.json", func(t *testing.T, e event.Event) {
			require.False(t, e.Thin)
			require.Equal(t, "jane@example.com", e.Customer.Email)
		}},
		{"bigcommerce_store_subscriber_created.json", func(t *testing.T, e event.Event) {
			require.True(t, e.Thin, "subscribers are not fetched")
		}},
	} {
		body := readFixture(t, tc.file)
		d, err := Delivery(http.Header{}, body)
		require.NoError(t, err)
		events, err := Parse(d.Topic, body)
		require.NoError(t, err)
		events, err = Hydrate(ctx, c, events)
		require.NoError(t, err, tc.file)
		require.Len(t, events, 1)
		tc.want(t, events[0])
	}
	// A cart deleted since (BigCommerce deletes converted carts) stays thin.
	events, err := Hydrate(ctx, c, []event.Event{{Kind: event.KindCartConverted, Thin: true,
		Ref: &event.ResourceRef{Type: event.ResourceCart, ID: "gone"}}})
	require.NoError(t, err)
	require.True(t, events[0].Thin)
}
