package shopify

import "github.com/refrain-dev/refrain/plugin/storefront"

// The JSON shapes of the Shopify REST webhook payloads, reduced to the fields
// Refrain reads. Strings that Shopify may send as null decode to "".

type moneySet struct {
	ShopMoney struct {
		Amount       storefront.Text `json:"amount"`
		CurrencyCode string          `json:"currency_code"`
	} `json:"shop_money"`
}

type consent struct {
	State            string `json:"state"`
	OptInLevel       string `json:"opt_in_level"`
	ConsentUpdatedAt string `json:"consent_updated_at"`
}

type customer struct {
	ID                    storefront.Text `json:"id"`
	AdminGraphQLAPIID     string          `json:"admin_graphql_api_id"`
	Email                 string          `json:"email"`
	Phone                 string          `json:"phone"`
	FirstName             string          `json:"first_name"`
	LastName              string          `json:"last_name"`
	Locale                string          `json:"locale"`
	CreatedAt             string          `json:"created_at"`
	UpdatedAt             string          `json:"updated_at"`
	EmailMarketingConsent *consent        `json:"email_marketing_consent"`
}

type lineItem struct {
	ProductID storefront.Text `json:"product_id"`
	VariantID storefront.Text `json:"variant_id"`
	SKU       string          `json:"sku"`
	Title     string          `json:"title"`
	Name      string          `json:"name"`
	Quantity  storefront.Text `json:"quantity"`
	Price     storefront.Text `json:"price"`
	PriceSet  *moneySet       `json:"price_set"`
	LinePrice storefront.Text `json:"line_price"`
	LineSet   *moneySet       `json:"line_price_set"`
}

type transaction struct {
	Kind     string          `json:"kind"`
	Status   string          `json:"status"`
	Amount   storefront.Text `json:"amount"`
	Currency string          `json:"currency"`
}

type refund struct {
	ID                storefront.Text `json:"id"`
	OrderID           storefront.Text `json:"order_id"`
	AdminGraphQLAPIID string          `json:"admin_graphql_api_id"`
	CreatedAt         string          `json:"created_at"`
	ProcessedAt       string          `json:"processed_at"`
	Transactions      []transaction   `json:"transactions"`
	RefundLineItems   []struct {
		Quantity    storefront.Text `json:"quantity"`
		Subtotal    storefront.Text `json:"subtotal"`
		SubtotalSet *moneySet       `json:"subtotal_set"`
		LineItem    *lineItem       `json:"line_item"`
	} `json:"refund_line_items"`
}

type order struct {
	ID                   storefront.Text `json:"id"`
	AdminGraphQLAPIID    string          `json:"admin_graphql_api_id"`
	Name                 string          `json:"name"`
	OrderNumber          storefront.Text `json:"order_number"`
	Email                string          `json:"email"`
	ContactEmail         string          `json:"contact_email"`
	FinancialStatus      string          `json:"financial_status"`
	Currency             string          `json:"currency"`
	TotalPrice           storefront.Text `json:"total_price"`
	TotalPriceSet        *moneySet       `json:"total_price_set"`
	CurrentTotalPrice    storefront.Text `json:"current_total_price"`
	CurrentTotalPriceSet *moneySet       `json:"current_total_price_set"`
	CartToken            string          `json:"cart_token"`
	CheckoutToken        string          `json:"checkout_token"`
	CustomerLocale       string          `json:"customer_locale"`
	CreatedAt            string          `json:"created_at"`
	ProcessedAt          string          `json:"processed_at"`
	UpdatedAt            string          `json:"updated_at"`
	CancelledAt          string          `json:"cancelled_at"`
	Customer             *customer       `json:"customer"`
	LineItems            []lineItem      `json:"line_items"`
	Fulfillments         []struct {
		CreatedAt string `json:"created_at"`
		UpdatedAt string `json:"updated_at"`
	} `json:"fulfillments"`
	Refunds        []refund         `json:"refunds"`
	NoteAttributes storefront.Attrs `json:"note_attributes"`
}

// checkout is both a checkouts/* and a carts/* payload: carts have id, token,
// line_items and times; checkouts add the contact, totals and recovery URL.
type checkout struct {
	ID                   storefront.Text `json:"id"`
	Token                string          `json:"token"`
	CartToken            string          `json:"cart_token"`
	Email                string          `json:"email"`
	Currency             string          `json:"currency"`
	TotalPrice           storefront.Text `json:"total_price"`
	AbandonedCheckoutURL string          `json:"abandoned_checkout_url"`
	CustomerLocale       string          `json:"customer_locale"`
	CreatedAt            string          `json:"created_at"`
	UpdatedAt            string          `json:"updated_at"`
	CompletedAt          string          `json:"completed_at"`
	OrderID              storefront.Text `json:"order_id"`
	Customer             *customer       `json:"customer"`
	LineItems            []lineItem      `json:"line_items"`
}

type marketingConsentUpdate struct {
	CustomerID            storefront.Text `json:"customer_id"`
	EmailAddress          string          `json:"email_address"`
	EmailMarketingConsent *consent        `json:"email_marketing_consent"`
}

type privacyRequest struct {
	ShopID     storefront.Text `json:"shop_id"`
	ShopDomain string          `json:"shop_domain"`
	Customer   *struct {
		ID    storefront.Text `json:"id"`
		Email string          `json:"email"`
		Phone string          `json:"phone"`
	} `json:"customer"`
	OrdersToRedact  []storefront.Text `json:"orders_to_redact"`
	OrdersRequested []storefront.Text `json:"orders_requested"`
	DataRequest     *struct {
		ID storefront.Text `json:"id"`
	} `json:"data_request"`
}
