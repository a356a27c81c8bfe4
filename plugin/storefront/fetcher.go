package storefront

import (
	"context"

	"github.com/refrain-dev/refrain/plugin/commerce/event"
)

// Fetcher loads a resource from the store's own API by its platform id. It is
// how thin events (see Event.Thin) are completed: BigCommerce webhooks carry
// only a resource type and id. Implementations do network I/O and live with
// the HTTP client code; the adapters only consume the interface.
//
// Each method returns the resource normalised like Parse would, or an error.
// A resource that no longer exists is an error wrapping the implementation's
// not-found error, never a nil value with a nil error.
type Fetcher interface {
	// FetchOrder loads the order with the given platform id.
	FetchOrder(ctx context.Context, id string) (*event.Order, error)
	// FetchCart loads the cart or checkout with the given platform id.
	FetchCart(ctx context.Context, id string) (*event.Cart, error)
	// FetchCustomer loads the customer with the given platform id.
	FetchCustomer(ctx context.Context, id string) (*event.Customer, error)
}
