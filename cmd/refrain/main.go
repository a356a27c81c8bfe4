// Command refrain runs Refrain, the customer-lifecycle engine for headless
// commerce: `refrain serve` starts the service; the other commands migrate,
// import, manage API keys and run scenarios. See `refrain help`.
package main

//go:generate go run . config --readme ../../README.md

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	// CA roots compiled in, used when the system has none: the container
	// image is FROM scratch, with no /etc/ssl, and still calls Mailgun,
	// the stores' APIs and JWKS endpoints over TLS.
	_ "golang.org/x/crypto/x509roots/fallback"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
