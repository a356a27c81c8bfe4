package plugin

import (
	"context"
	"net/http"
)

// setupStorefront wires storefront webhooks, the inbox workers and commerce
// processing: it registers routes with route and background workers with
// p.addWorker.
func (p *Plugin) setupStorefront(_ context.Context, route func(pattern, name string, h http.Handler)) error {
	return nil
}
