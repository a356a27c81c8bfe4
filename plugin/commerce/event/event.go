// Package event owns the normalised commerce event: the Event every
// storefront adapter produces and the domain packages (commerce, privacy,
// segments, hygiene, loyalty) consume, its value types (Order, Cart, Customer, Consent,
// LineItem, Money, PrivacyRequest, ResourceRef), its kinds, the Source names
// of the platforms, and the exact arithmetic on Money.
//
// It is pure data and value operations. It must not import plugin/storefront
// or a storefront provider package, graph, net/http, a database or any other
// Refrain package: the edges depend on it, never the other way round.
package event

import "time"

// Kind is the normalised type of a commerce event, the same for every
// platform. Its values are also the Standard Webhooks event types Refrain
// documents (see plugin/storefront/standard).
type Kind string

// The normalised commerce event kinds.
const (
	// KindOrderCreated: an order was placed.
	KindOrderCreated Kind = "order.created"
	// KindOrderPaid: an order is paid in full.
	KindOrderPaid Kind = "order.paid"
	// KindOrderFulfilled: an order is fulfilled (shipped, completed).
	KindOrderFulfilled Kind = "order.fulfilled"
	// KindOrderRefunded: a refund was made on an order (possibly partial).
	KindOrderRefunded Kind = "order.refunded"
	// KindOrderCancelled: an order was cancelled or declined.
	KindOrderCancelled Kind = "order.cancelled"
	// KindCartUpdated: a cart or checkout was created or changed.
	KindCartUpdated Kind = "cart.updated"
	// KindCartAbandoned: the platform itself declared a cart abandoned.
	KindCartAbandoned Kind = "cart.abandoned"
	// KindCartConverted: a cart or checkout became an order.
	KindCartConverted Kind = "cart.converted"
	// KindCustomerCreated: a customer account was created.
	KindCustomerCreated Kind = "customer.created"
	// KindCustomerUpdated: a customer account changed.
	KindCustomerUpdated Kind = "customer.updated"
	// KindCustomerDeleted: a customer account was deleted in the store.
	KindCustomerDeleted Kind = "customer.deleted"
	// KindCustomerRedacted: the store asks for the customer's personal data to
	// be erased (Shopify's GDPR customers/redact).
	KindCustomerRedacted Kind = "customer.redacted"
	// KindCustomerDataRequest: the customer asked for their data (Shopify's
	// GDPR customers/data_request).
	KindCustomerDataRequest Kind = "customer.data_request"
	// KindConsentUpdated: the customer's email marketing consent changed;
	// Customer.EmailConsent carries the new state.
	KindConsentUpdated Kind = "consent.updated"
	// KindNewsletterSubscribed: an email joined the store's newsletter.
	KindNewsletterSubscribed Kind = "newsletter.subscribed"
	// KindNewsletterUnsubscribed: an email left the store's newsletter.
	KindNewsletterUnsubscribed Kind = "newsletter.unsubscribed"
)

// Kinds lists every Kind, in a stable order.
func Kinds() []Kind {
	return []Kind{
		KindOrderCreated, KindOrderPaid, KindOrderFulfilled, KindOrderRefunded, KindOrderCancelled,
		KindCartUpdated, KindCartAbandoned, KindCartConverted,
		KindCustomerCreated, KindCustomerUpdated, KindCustomerDeleted, KindCustomerRedacted, KindCustomerDataRequest,
		KindConsentUpdated, KindNewsletterSubscribed, KindNewsletterUnsubscribed,
	}
}

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool {
	for _, v := range Kinds() {
		if k == v {
			return true
		}
	}
	return false
}

// Event is one normalised commerce event. Which of Customer, Order, Cart,
// Privacy and Ref are set depends on Kind and on what the payload carried:
//
//   - order.*: Order, and Customer when the order names a buyer.
//   - cart.*: Cart, and Customer when the cart names one.
//   - customer.*, consent.updated, newsletter.*: Customer.
//   - customer.redacted, customer.data_request: Customer and Privacy.
//   - thin events (Thin true): Ref only; the storefront edge fetches the rest
//     from the store API (plugin/storefront.Fetcher).
//
// Consumers must treat events as idempotent facts about a resource, not as
// commands: a platform may deliver the same transition twice (retries, or an
// "updated" topic that fires on every save), out of order, or late. Compare
// OccurredAt with the stored state and never move state backwards.
type Event struct {
	// Kind is the normalised event type.
	Kind Kind `json:"kind"`
	// Source is the platform the event came from.
	Source Source `json:"source"`
	// Topic is the platform topic the event was derived from, as given.
	Topic string `json:"topic"`
	// OccurredAt is the platform's own time for this state of the resource:
	// its updated_at when the payload has one, else the event's issue time.
	// It is zero when the payload carries no time at all; the consumer then
	// uses the time the delivery was received.
	OccurredAt time.Time `json:"occurredAt,omitzero"`
	// Customer is the customer the event is about, when known.
	Customer *Customer `json:"customer,omitempty"`
	// Order is set for order events.
	Order *Order `json:"order,omitempty"`
	// Cart is set for cart events.
	Cart *Cart `json:"cart,omitempty"`
	// Privacy is set for customer.redacted and customer.data_request.
	Privacy *PrivacyRequest `json:"privacy,omitempty"`
	// Thin is true when the payload carried only a resource reference (Ref)
	// and the resource itself must be fetched from the store's API.
	Thin bool `json:"thin,omitempty"`
	// Ref names the resource the event is about, as the platform gave it. It
	// is always set for thin events and may be set for others.
	Ref *ResourceRef `json:"ref,omitempty"`
}

// ResourceType is the kind of store resource a ResourceRef points at.
type ResourceType string

// The resource types a thin event may reference.
const (
	// ResourceOrder is an order.
	ResourceOrder ResourceType = "order"
	// ResourceCart is a cart or checkout.
	ResourceCart ResourceType = "cart"
	// ResourceCustomer is a customer account.
	ResourceCustomer ResourceType = "customer"
	// ResourceSubscriber is a newsletter subscriber (BigCommerce), distinct
	// from a customer account.
	ResourceSubscriber ResourceType = "subscriber"
)

// ResourceRef points at a store resource by platform id, with the few extra
// facts a thin payload carries.
type ResourceRef struct {
	// Type is the resource type.
	Type ResourceType `json:"type"`
	// ID is the platform id as a string (numbers are written in decimal).
	ID string `json:"id,omitempty"`
	// StoreID is the platform's store id, when the payload gives it.
	StoreID string `json:"storeId,omitempty"`
	// Token is a cart token given beside the id (BigCommerce gives the
	// abandoned cart recovery token).
	Token string `json:"token,omitempty"`
	// Status is the new platform status for a status change, as given
	// (BigCommerce: the new status id, e.g. "11").
	Status string `json:"status,omitempty"`
	// PreviousStatus is the platform status before a status change.
	PreviousStatus string `json:"previousStatus,omitempty"`
	// RefundID is the refund's platform id for refund events.
	RefundID string `json:"refundId,omitempty"`
	// OrderID is the order a cart became, for cart.converted.
	OrderID string `json:"orderId,omitempty"`
}

// ConsentState is the customer's email marketing consent.
type ConsentState string

// The consent states. Platform states are mapped onto these; a state the
// adapter does not know is ConsentUnknown.
const (
	// ConsentUnknown: the payload said nothing usable about consent.
	ConsentUnknown ConsentState = ""
	// ConsentSubscribed: the customer agreed to marketing email.
	ConsentSubscribed ConsentState = "subscribed"
	// ConsentPending: a double opt-in confirmation is awaited.
	ConsentPending ConsentState = "pending"
	// ConsentNotSubscribed: the customer never agreed (or their data was
	// redacted or the address is invalid).
	ConsentNotSubscribed ConsentState = "not_subscribed"
	// ConsentUnsubscribed: the customer agreed once and withdrew.
	ConsentUnsubscribed ConsentState = "unsubscribed"
)

// Consent is a marketing consent state with the time it was set.
type Consent struct {
	// State is the normalised consent state.
	State ConsentState `json:"state"`
	// PlatformState is the state exactly as the platform wrote it.
	PlatformState string `json:"platformState,omitempty"`
	// OptInLevel is the platform's opt-in level as given (Shopify:
	// "single_opt_in", "confirmed_opt_in", "unknown"), when known.
	OptInLevel string `json:"optInLevel,omitempty"`
	// UpdatedAt is when the consent was last changed; zero when unknown.
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
}

// Customer is a store customer as a webhook describes it. Only ID and Email
// identify; the other fields are facts to merge when newer.
type Customer struct {
	// ID is the customer id as the store's own GraphQL API gives it, so that
	// it matches the federated Customer @key: Shopify a
	// "gid://shopify/Customer/<n>" gid, Saleor its global ID, other platforms
	// their id as a decimal string. Empty for a guest known by email only.
	ID string `json:"id,omitempty"`
	// Email is the customer's email, as given (not lowercased).
	Email string `json:"email,omitempty"`
	// Phone is the customer's phone number, as given.
	Phone string `json:"phone,omitempty"`
	// FirstName is the customer's given name.
	FirstName string `json:"firstName,omitempty"`
	// LastName is the customer's family name.
	LastName string `json:"lastName,omitempty"`
	// Locale is the customer's language as a BCP 47 tag ("en", "fr-CA"), when known.
	Locale string `json:"locale,omitempty"`
	// EmailConsent is the email marketing consent, when the payload has it.
	EmailConsent *Consent `json:"emailConsent,omitempty"`
	// CreatedAt is when the account was created; zero when unknown.
	CreatedAt time.Time `json:"createdAt,omitzero"`
	// UpdatedAt is when the account last changed; zero when unknown.
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
}

// Money is an exact amount in the currency's minor units (cents for USD, yen
// for JPY, fils for KWD), with its ISO 4217 code. Amounts are never floats.
type Money struct {
	// Minor is the amount in minor units, see CurrencyExponent.
	Minor int64 `json:"minor"`
	// Currency is the upper-case ISO 4217 code; empty when the payload had none.
	Currency string `json:"currency,omitempty"`
}

// LineItem is one product line of an order or cart.
type LineItem struct {
	// ProductID is the product's platform id (Shopify a gid); empty for
	// custom lines that have no product.
	ProductID string `json:"productId,omitempty"`
	// VariantID is the product variant's platform id, when given.
	VariantID string `json:"variantId,omitempty"`
	// SKU is the stock keeping unit, when given.
	SKU string `json:"sku,omitempty"`
	// Title is the product title shown to the customer.
	Title string `json:"title,omitempty"`
	// Quantity is the number of units.
	Quantity int64 `json:"quantity"`
	// UnitPrice is the price of one unit, before order-level discounts.
	UnitPrice Money `json:"unitPrice"`
}

// Order is a store order as a webhook describes it.
type Order struct {
	// ID is the order's platform id (Shopify the admin_graphql_api_id gid,
	// Saleor the global ID, others the id as a decimal string).
	ID string `json:"id"`
	// Number is the order number shown to the customer, as given.
	Number string `json:"number,omitempty"`
	// Status is the platform's status, as given (Shopify the financial
	// status; Saleor, WooCommerce and BigCommerce their order status).
	Status string `json:"status,omitempty"`
	// Total is the order total the customer pays, tax and shipping included.
	Total Money `json:"total"`
	// Refunded is the amount refunded: by this one refund when
	// RefundIncrement is set, else the order's total refunded so far.
	Refunded Money `json:"refunded,omitzero"`
	// RefundIncrement is true when Refunded is the amount of this refund
	// alone (Shopify refunds/create, Standard order.refunded) rather than
	// the order's running total.
	RefundIncrement bool `json:"refundIncrement,omitempty"`
	// Items are the product lines.
	Items []LineItem `json:"items,omitempty"`
	// CartToken is the token of the cart the order came from, when given.
	CartToken string `json:"cartToken,omitempty"`
	// CheckoutToken is the token of the checkout the order came from, when
	// given; it matches Cart.Token of that checkout's cart.* events.
	CheckoutToken string `json:"checkoutToken,omitempty"`
	// Email is the order's contact email. It can differ from the customer's
	// account email; identify the buyer by Customer, not by this.
	Email string `json:"email,omitempty"`
	// Customer is the buyer: the order's customer account when it has one
	// (match on Customer.ID first), or a guest with an empty ID known by the
	// billing or contact email.
	Customer *Customer `json:"customer,omitempty"`
	// PlacedAt is when the order was placed.
	PlacedAt time.Time `json:"placedAt,omitzero"`
	// PaidAt is when the order was paid, when known.
	PaidAt time.Time `json:"paidAt,omitzero"`
	// FulfilledAt is when the order was fulfilled, when known.
	FulfilledAt time.Time `json:"fulfilledAt,omitzero"`
	// RefundedAt is when the (last) refund was made, when known.
	RefundedAt time.Time `json:"refundedAt,omitzero"`
	// CancelledAt is when the order was cancelled, when known.
	CancelledAt time.Time `json:"cancelledAt,omitzero"`
	// UpdatedAt is when the order last changed, when known.
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
	// Attributes are the order's custom attributes as text: Shopify
	// note_attributes, WooCommerce meta_data (private keys starting with
	// "_" left out), Saleor metadata, Standard Webhooks metadata. A
	// storefront passes a referral code as "ref" or "referral_code".
	Attributes map[string]string `json:"attributes,omitempty"`
}

// CartStatus hints at where a cart is in its life.
type CartStatus string

// The cart status hints.
const (
	// CartOpen: the cart is being filled or checked out.
	CartOpen CartStatus = "open"
	// CartAbandoned: the platform declared the cart abandoned.
	CartAbandoned CartStatus = "abandoned"
	// CartConverted: the cart became an order.
	CartConverted CartStatus = "converted"
)

// Cart is a cart or checkout as a webhook describes it. Abandonment programs
// key on Token and exit when an order with the same token is placed.
type Cart struct {
	// Token identifies the cart: Shopify the cart token for carts/* and the
	// checkout token for checkouts/* (matching Order.CheckoutToken), Saleor
	// the checkout token, BigCommerce the cart id, others their cart id.
	Token string `json:"token"`
	// ID is the platform id when it differs from Token (Saleor's global ID).
	ID string `json:"id,omitempty"`
	// CartToken is, for a checkout, the token of the cart it came from.
	CartToken string `json:"cartToken,omitempty"`
	// Email is the contact email typed at checkout, when given.
	Email string `json:"email,omitempty"`
	// Customer is the logged-in customer, when the cart names one.
	Customer *Customer `json:"customer,omitempty"`
	// Items are the product lines.
	Items []LineItem `json:"items,omitempty"`
	// Total is the cart value. When the payload has no total it is the sum of
	// the lines.
	Total Money `json:"total"`
	// RecoveryURL brings the customer back to this cart (Shopify's
	// abandoned_checkout_url), when given.
	RecoveryURL string `json:"recoveryUrl,omitempty"`
	// OrderID is the order the cart became, when converted and known.
	OrderID string `json:"orderId,omitempty"`
	// Status is a hint: open, abandoned or converted.
	Status CartStatus `json:"status"`
	// CreatedAt is when the cart was created, when known.
	CreatedAt time.Time `json:"createdAt,omitzero"`
	// UpdatedAt is the cart's last activity, when known.
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
}

// PrivacyRequest details a GDPR request from the store.
type PrivacyRequest struct {
	// RequestID is the platform's id for a data request, when given.
	RequestID string `json:"requestId,omitempty"`
	// ShopID is the platform's id of the shop the request is for.
	ShopID string `json:"shopId,omitempty"`
	// ShopDomain is the shop's domain, as given.
	ShopDomain string `json:"shopDomain,omitempty"`
	// OrderIDs are the orders to redact or report, as platform order ids.
	OrderIDs []string `json:"orderIds,omitempty"`
}
