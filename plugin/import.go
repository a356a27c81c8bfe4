package plugin

import (
	"context"
	"fmt"
	"io"
)

// ImportOptions configures ImportCustomers.
type ImportOptions struct {
	DryRun         bool
	Stdout, Stderr io.Writer
}

// ImportCustomers imports a customer CSV (see `refrain import customers`).
func ImportCustomers(ctx context.Context, cfg Config, r io.Reader, opts ImportOptions) error {
	return fmt.Errorf("import: not wired yet")
}
