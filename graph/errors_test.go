package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/campaign"
	"github.com/refrain-dev/refrain/plugin/forecast"
	"github.com/refrain-dev/refrain/plugin/mail"
	"github.com/refrain-dev/refrain/plugin/mail/consent"
	"github.com/refrain-dev/refrain/plugin/survey"
	"github.com/refrain-dev/refrain/scenarios/engine"
)

// TestErrorPresenterMapsDomainErrors checks that every domain field error
// reaches the caller as BAD_USER_INPUT with its message and field, however
// deeply it was wrapped, and that a storage error is only an id.
func TestErrorPresenterMapsDomainErrors(t *testing.T) {
	var logs bytes.Buffer
	present := ErrorPresenter(slog.New(slog.NewTextHandler(&logs, nil)))
	ctx := withRequestID(context.Background(), "req-1")
	wrap := func(err error) error { return fmt.Errorf("do it: %w", err) }
	for _, tc := range []struct {
		name    string
		err     error
		code    string
		message string
		field   []string
	}{
		{"survey", &survey.FieldError{Field: "answers.diet", Message: "too long"}, CodeBadUserInput, "too long", []string{"answers", "diet"}},
		{"consent", &consent.InputError{Field: "email", Message: "not an address"}, CodeBadUserInput, "not an address", []string{"email"}},
		{"mail", &mail.FieldError{Field: "To", Problem: "empty"}, CodeBadUserInput, "invalid message: To: empty", nil},
		{"campaign", &campaign.InputError{Field: "pressure.cap", Problem: "negative"}, CodeBadUserInput, "pressure.cap: negative", []string{"pressure", "cap"}},
		{"forecast", &forecast.RangeError{Problem: "to before from"}, CodeBadUserInput, "to before from", nil},
		{"scenario not found", fmt.Errorf("scenario %q: %w", "x", engine.ErrNotFound), CodeNotFound, "not found", nil},
		{"not eligible", engine.ErrNotEligible, CodeBadUserInput, "do it: customer is not eligible", nil},
		{"storage", errors.New(`ERROR: relation "customers" does not exist`), CodeInternal, "internal error", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := present(ctx, wrap(tc.err))
			require.Equal(t, tc.code, out.Extensions["code"])
			require.Equal(t, tc.message, out.Message)
			if tc.code == CodeInternal {
				require.Equal(t, "req-1", out.Extensions["requestId"])
				require.Contains(t, logs.String(), "customers")
			}
			if tc.field == nil {
				require.NotContains(t, out.Extensions, "field")
			} else {
				require.Equal(t, tc.field, out.Extensions["field"])
			}
		})
	}
}
