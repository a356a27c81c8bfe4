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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
