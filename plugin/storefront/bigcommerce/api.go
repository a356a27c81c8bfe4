package bigcommerce

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/storefront"
)

// DefaultAPIBase is the address of the BigCommerce REST API.
const DefaultAPIBase = "https://api.bigcommerce.com"

// Client fetches orders (v2), carts (v3) and customers (v3) from a store's
// REST API with an API account token. It implements storefront.Fetcher, so
// Hydrate can complete thin webhook events with it.
type Client struct {
	// StoreHash is the store's hash, as in /stores/{hash}/.
	StoreHash string
	// AccessToken is the API account's X-Auth-Token.
	AccessToken string
	// BaseURL is the API address; empty means DefaultAPIBase.
	BaseURL string
	// HTTP makes the requests; nil means a client with a 15 second timeout.
	HTTP *http.Client
}

var _ storefront.Fetcher = (*Client)(nil)

// maxResponse bounds an API response body.
const maxResponse = 4 << 20

// APIError is a non-2xx answer of the BigCommerce API.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Path is the API path that was requested.
	Path string
	// Body is the start of the response body, for the log.
	Body string
}

// Error names the path and the status.
func (e *APIError) Error() string {
	return fmt.Sprintf("bigcommerce api %s: status %d: %s", e.Path, e.Status, e.Body)
}

// Unwrap makes a 404 match storefront.ErrNotFound.
func (e *APIError) Unwrap() error {
	if e.Status == http.StatusNotFound {
		return storefront.ErrNotFound
	}
	return nil
}

// get fetches path (under /stores/{hash}/) into v. A 204 or 404 is
// storefront.ErrNotFound.
func (c *Client) get(ctx context.Context, path string, v any) error {
	base := c.BaseURL
	if base == "" {
		base = DefaultAPIBase
	}
	u := strings.TrimRight(base, "/") + "/stores/" + url.PathEscape(c.StoreHash) + "/" + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("build bigcommerce request: %w", err)
	}
	req.Header.Set("X-Auth-Token", c.AccessToken)
	req.Header.Set("Accept", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("call bigcommerce api %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("read bigcommerce api %s: %w", path, err)
	}
	if resp.StatusCode == http.StatusNoContent {
		return &APIError{Status: http.StatusNotFound, Path: path, Body: "no content"}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		snippet := string(body)
		if len(snippet) > 200 {
			snippet = snippet[:200]
		}
		return &APIError{Status: resp.StatusCode, Path: path, Body: snippet}
	}
	if err := storefront.DecodeJSON(body, v); err != nil {
		return fmt.Errorf("decode bigcommerce api %s: %w", path, err)
	}
	return nil
}

// v2Order is the part of a v2 order Refrain reads.
type v2Order struct {
	ID             storefront.Text `json:"id"`
	CustomerID     storefront.Text `json:"customer_id"`
	DateCreated    string          `json:"date_created"`
	DateModified   string          `json:"date_modified"`
	DateShipped    string          `json:"date_shipped"`
	StatusID       storefront.Text `json:"status_id"`
	Status         string          `json:"status"`
	TotalIncTax    storefront.Text `json:"total_inc_tax"`
	RefundedAmount storefront.Text `json:"refunded_amount"`
	CurrencyCode   string          `json:"currency_code"`
	CartID         string          `json:"cart_id"`
	Billing        struct {
		FirstName string `json:"first_name"`
		LastName  string `json:"last_name"`
		Email     string `json:"email"`
		Phone     string `json:"phone"`
	} `json:"billing_address"`
}

// v2OrderProduct is one line of GET /v2/orders/{id}/products.
type v2OrderProduct struct {
	ProductID   storefront.Text `json:"product_id"`
	VariantID   storefront.Text `json:"variant_id"`
	Name        string          `json:"name"`
	SKU         string          `json:"sku"`
	Quantity    storefront.Text `json:"quantity"`
	PriceIncTax storefront.Text `json:"price_inc_tax"`
}

// rfc1123 parses the v2 API's dates ("Tue, 25 Jun 2019 16:15:35 +0000");
// empty is the zero time.
func rfc1123(field, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC1123Z, s)
	if err != nil {
		return time.Time{}, &storefront.ParseError{Field: field, Err: err}
	}
	return t.UTC(), nil
}

// FetchOrder loads an order (GET /v2/orders/{id}) and its lines
// (GET /v2/orders/{id}/products). A registered buyer is known by
// customer_id, a guest (customer_id 0) by the billing email.
func (c *Client) FetchOrder(ctx context.Context, id string) (*event.Order, error) {
	var p v2Order
	if err := c.get(ctx, "v2/orders/"+url.PathEscape(id), &p); err != nil {
		return nil, err
	}
	var lines []v2OrderProduct
	if err := c.get(ctx, "v2/orders/"+url.PathEscape(id)+"/products", &lines); err != nil && !errors.Is(err, storefront.ErrNotFound) {
		return nil, err
	}
	cur := strings.ToUpper(p.CurrencyCode)
	o := &event.Order{ID: string(p.ID), Number: string(p.ID), Status: p.Status, CartToken: p.CartID, Email: p.Billing.Email}
	if o.ID == "" {
		o.ID = id
	}
	var err error
	if o.Total, err = event.ParseMoney(string(p.TotalIncTax), cur); err != nil {
		return nil, storefront.FieldError("total_inc_tax", err)
	}
	if p.RefundedAmount != "" {
		if o.Refunded, err = event.ParseMoney(string(p.RefundedAmount), cur); err != nil {
			return nil, storefront.FieldError("refunded_amount", err)
		}
	}
	if o.PlacedAt, err = rfc1123("date_created", p.DateCreated); err != nil {
		return nil, err
	}
	if o.UpdatedAt, err = rfc1123("date_modified", p.DateModified); err != nil {
		return nil, err
	}
	if o.FulfilledAt, err = rfc1123("date_shipped", p.DateShipped); err != nil {
		return nil, err
	}
	for i, l := range lines {
		price, err := event.ParseMoney(string(l.PriceIncTax), cur)
		if err != nil {
			return nil, storefront.FieldError(fmt.Sprintf("products.%d.price_inc_tax", i), err)
		}
		var qty int64
		if _, err := fmt.Sscan(string(l.Quantity), &qty); err != nil {
			return nil, storefront.FieldError(fmt.Sprintf("products.%d.quantity", i), err)
		}
		o.Items = append(o.Items, event.LineItem{ProductID: nonZero(l.ProductID), VariantID: nonZero(l.VariantID),
			SKU: l.SKU, Title: l.Name, Quantity: qty, UnitPrice: price})
	}
	buyer := &event.Customer{ID: nonZero(p.CustomerID), Email: p.Billing.Email, FirstName: p.Billing.FirstName,
		LastName: p.Billing.LastName, Phone: p.Billing.Phone}
	if buyer.ID != "" {
		// A registered buyer is matched by id; the billing address is the
		// order's contact, not necessarily the account's.
		buyer = &event.Customer{ID: buyer.ID}
	}
	if buyer.ID != "" || buyer.Email != "" {
		o.Customer = buyer
	}
	return o, nil
}

// v3Cart is the part of a v3 cart Refrain reads.
type v3Cart struct {
	Data *struct {
		ID         string          `json:"id"`
		CustomerID storefront.Text `json:"customer_id"`
		Email      string          `json:"email"`
		Currency   struct {
			Code string `json:"code"`
		} `json:"currency"`
		CartAmount storefront.Text `json:"cart_amount"`
		LineItems  struct {
			Physical []v3CartLine `json:"physical_items"`
			Digital  []v3CartLine `json:"digital_items"`
		} `json:"line_items"`
		CreatedTime  string `json:"created_time"`
		UpdatedTime  string `json:"updated_time"`
		RedirectURLs *struct {
			CartURL     string `json:"cart_url"`
			CheckoutURL string `json:"checkout_url"`
		} `json:"redirect_urls"`
	} `json:"data"`
}

type v3CartLine struct {
	ProductID storefront.Text `json:"product_id"`
	VariantID storefront.Text `json:"variant_id"`
	SKU       string          `json:"sku"`
	Name      string          `json:"name"`
	Quantity  storefront.Text `json:"quantity"`
	SalePrice storefront.Text `json:"sale_price"`
}

// FetchCart loads a cart (GET /v3/carts/{id}?include=redirect_urls). The
// recovery URL is the cart's cart_url.
func (c *Client) FetchCart(ctx context.Context, id string) (*event.Cart, error) {
	var p v3Cart
	if err := c.get(ctx, "v3/carts/"+url.PathEscape(id)+"?include=redirect_urls", &p); err != nil {
		return nil, err
	}
	if p.Data == nil {
		return nil, &APIError{Status: http.StatusNotFound, Path: "v3/carts/" + id, Body: "no data"}
	}
	d := p.Data
	cur := strings.ToUpper(d.Currency.Code)
	ct := &event.Cart{Token: d.ID, Email: d.Email, Status: event.CartOpen}
	if ct.Token == "" {
		ct.Token = id
	}
	var err error
	if ct.Total, err = event.ParseMoney(string(d.CartAmount), cur); err != nil {
		return nil, storefront.FieldError("data.cart_amount", err)
	}
	for i, l := range append(append([]v3CartLine{}, d.LineItems.Physical...), d.LineItems.Digital...) {
		price, err := event.ParseMoney(string(l.SalePrice), cur)
		if err != nil {
			return nil, storefront.FieldError(fmt.Sprintf("data.line_items.%d.sale_price", i), err)
		}
		var qty int64
		if _, err := fmt.Sscan(string(l.Quantity), &qty); err != nil {
			return nil, storefront.FieldError(fmt.Sprintf("data.line_items.%d.quantity", i), err)
		}
		ct.Items = append(ct.Items, event.LineItem{ProductID: nonZero(l.ProductID), VariantID: nonZero(l.VariantID),
			SKU: l.SKU, Title: l.Name, Quantity: qty, UnitPrice: price})
	}
	if ct.CreatedAt, err = storefront.OptionalTime("data.created_time", d.CreatedTime); err != nil {
		return nil, err
	}
	if ct.UpdatedAt, err = storefront.OptionalTime("data.updated_time", d.UpdatedTime); err != nil {
		return nil, err
	}
	if d.RedirectURLs != nil {
		ct.RecoveryURL = d.RedirectURLs.CartURL
	}
	if cid := nonZero(d.CustomerID); cid != "" {
		ct.Customer = &event.Customer{ID: cid}
	}
	return ct, nil
}

// v3Customers is the answer of GET /v3/customers.
type v3Customers struct {
	Data []struct {
		ID           storefront.Text `json:"id"`
		Email        string          `json:"email"`
		FirstName    string          `json:"first_name"`
		LastName     string          `json:"last_name"`
		Phone        string          `json:"phone"`
		DateCreated  string          `json:"date_created"`
		DateModified string          `json:"date_modified"`
	} `json:"data"`
}

// FetchCustomer loads a customer (GET /v3/customers?id:in={id}).
func (c *Client) FetchCustomer(ctx context.Context, id string) (*event.Customer, error) {
	var p v3Customers
	if err := c.get(ctx, "v3/customers?id:in="+url.QueryEscape(id), &p); err != nil {
		return nil, err
	}
	if len(p.Data) == 0 {
		return nil, &APIError{Status: http.StatusNotFound, Path: "v3/customers?id:in=" + id, Body: "no such customer"}
	}
	d := p.Data[0]
	out := &event.Customer{ID: string(d.ID), Email: d.Email, FirstName: d.FirstName, LastName: d.LastName, Phone: d.Phone}
	var err error
	if out.CreatedAt, err = storefront.OptionalTime("data.0.date_created", d.DateCreated); err != nil {
		return nil, err
	}
	if out.UpdatedAt, err = storefront.OptionalTime("data.0.date_modified", d.DateModified); err != nil {
		return nil, err
	}
	return out, nil
}

// nonZero returns an id as text, or "" for a missing or zero id (the API
// writes 0 for "none").
func nonZero(t storefront.Text) string {
	s := strings.TrimSpace(string(t))
	if s == "" || s == "0" {
		return ""
	}
	return s
}
