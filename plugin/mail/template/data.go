package template

// Data is everything a template can show. Templates reach it as dot:
// {{.Customer.FirstName}}, {{range .Cart.Items}}, {{.Values.discount_code}}.
// Money amounts are already formatted (see Money) so templates never do
// arithmetic.
type Data struct {
	// Customer is the recipient.
	Customer Customer
	// Lifecycle is the customer's lifecycle state.
	Lifecycle Lifecycle
	// Cart is the abandoned cart, for cart programs.
	Cart Cart
	// Order is the order that triggered the message, for order programs.
	Order Order
	// Values are the scenario step's values (discount_code, confirm_url,
	// survey_url, ...). A template that reads a value requires the step to
	// provide it: Engine.RequiredValues lists them so scenarios are checked
	// when loaded.
	Values map[string]string
	// Store is the sending store.
	Store Store
	// UnsubscribeURL is the recipient's one-click unsubscribe link; empty
	// for transactional mail.
	UnsubscribeURL string
	// PreferencesURL is the recipient's preference centre link.
	PreferencesURL string
}

// Customer is the recipient as templates see them.
type Customer struct {
	// ID is Refrain's customer id.
	ID string
	// Email is the customer's address.
	Email string
	// FirstName and LastName may be empty: write
	// {{with .Customer.FirstName}} {{.}}{{end}} around them.
	FirstName string
	LastName  string
	// Locale is the customer's locale ("fr-CA").
	Locale string
	// Attributes are the customer's free-form attributes and Preferences
	// their declared preferences. A key may be missing, so templates read
	// them with index: {{index .Customer.Preferences "diet"}}.
	Attributes  map[string]any
	Preferences map[string]any
}

// Lifecycle is the customer's lifecycle state.
type Lifecycle struct {
	// Stage is the lifecycle stage ("NEW_CUSTOMER").
	Stage string
	// OrdersCount is the number of orders placed.
	OrdersCount int
	// TotalSpent is the formatted lifetime spend ("€120.00").
	TotalSpent string
}

// Item is a cart or order line.
type Item struct {
	// Title is the product (and variant) title.
	Title string
	// Quantity is the number of units.
	Quantity int
	// Price is the formatted line price.
	Price string
}

// Cart is an abandoned cart.
type Cart struct {
	// Items are the cart lines.
	Items []Item
	// Total is the formatted cart total.
	Total string
	// RecoveryURL restores the cart in the storefront.
	RecoveryURL string
}

// Order is a placed order.
type Order struct {
	// Number is the store's order number, as the customer sees it.
	Number string
	// Total is the formatted order total.
	Total string
	// Items are the order lines.
	Items []Item
}

// Store is the sending store.
type Store struct {
	// Name is the store's public name.
	Name string
	// URL is the storefront's home page.
	URL string
}

// sampleData returns a Data in which every field is set and every list has
// an element, so that a check render walks every {{if}}, {{with}} and
// {{range}} a real message would; values holds the Values keys the
// templates read.
func sampleData(values []string) Data {
	item := Item{Title: "Sample item", Quantity: 1, Price: "€1.00"}
	d := Data{
		Customer: Customer{
			ID: "sample", Email: "sample@example.com", FirstName: "Sample", LastName: "Customer", Locale: "en",
			Attributes:  map[string]any{},
			Preferences: map[string]any{},
		},
		Lifecycle:      Lifecycle{Stage: "SUBSCRIBER", OrdersCount: 1, TotalSpent: "€1.00"},
		Cart:           Cart{Items: []Item{item}, Total: "€1.00", RecoveryURL: "https://store.example/cart"},
		Order:          Order{Number: "1001", Total: "€1.00", Items: []Item{item}},
		Values:         make(map[string]string, len(values)),
		Store:          Store{Name: "Sample Store", URL: "https://store.example"},
		UnsubscribeURL: "https://store.example/u/sample",
		PreferencesURL: "https://store.example/preferences/sample",
	}
	for _, v := range values {
		d.Values[v] = "https://store.example/sample-" + v
	}
	return d
}
