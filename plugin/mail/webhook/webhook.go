// Package webhook is the HTTP edge of Mailgun's event webhooks: it checks
// the signature, its freshness and that its token was not seen before, then
// hands the parsed event to package tracking, and answers so that Mailgun
// knows whether to retry: 200 recorded (or already recorded), 406 for a
// payload that can never be accepted, 401 for a bad, stale or replayed
// signature, 500 when recording failed and a retry may succeed.
package webhook

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/mail"
	"github.com/refrain-dev/refrain/plugin/mail/mailgun"
	"github.com/refrain-dev/refrain/plugin/mail/tracking"
)

// MaxBody is the largest webhook body read (Mailgun's are a few kilobytes).
const MaxBody = 1 << 20

// Mailgun serves POST /webhooks/mailgun.
type Mailgun struct {
	DB *bun.DB
	// SigningKey is Mailgun's webhook signing key.
	SigningKey string
	// Window is how old a signature may be. Default
	// mailgun.DefaultSignatureWindow.
	Window time.Duration
	Clock  clock.Clock
	Logger *slog.Logger
}

// ServeHTTP verifies, records and answers.
func (h *Mailgun) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		answer(w, http.StatusRequestEntityTooLarge, "body too large or unreadable")
		return
	}
	sig, err := mailgun.ParseSignature(body)
	if err != nil {
		answer(w, http.StatusNotAcceptable, "not a Mailgun webhook payload")
		return
	}
	window := h.Window
	if window <= 0 {
		window = mailgun.DefaultSignatureWindow
	}
	now := h.Clock.Now()
	if err := sig.Verify(h.SigningKey, now, window); err != nil {
		var stale *mailgun.StaleSignatureError
		if errors.As(err, &stale) {
			h.Logger.WarnContext(ctx, "mailgun webhook refused: stale timestamp", "err", err)
			answer(w, http.StatusUnauthorized, "stale signature timestamp")
			return
		}
		h.Logger.WarnContext(ctx, "mailgun webhook refused: bad signature", "err", err)
		answer(w, http.StatusUnauthorized, "bad signature")
		return
	}
	ev, err := mailgun.ParseEvent(body)
	if err != nil {
		h.Logger.InfoContext(ctx, "mailgun webhook not acceptable", "err", err)
		answer(w, http.StatusNotAcceptable, "event not acceptable")
		return
	}
	var replay, recorded bool
	err = h.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		fresh, err := tracking.SeeToken(ctx, tx, now, sig.Token, 2*window)
		if err != nil || !fresh {
			replay = !fresh
			return err
		}
		recorded, err = tracking.RecordTx(ctx, tx, now, ev)
		return err
	})
	switch {
	case errors.Is(err, mail.ErrUnacceptable):
		answer(w, http.StatusNotAcceptable, "event not acceptable")
	case err != nil:
		h.Logger.ErrorContext(ctx, "record mailgun event failed", "err", err, "event_id", ev.ID, "event", ev.Kind)
		answer(w, http.StatusInternalServerError, "not recorded; retry")
	case replay:
		h.Logger.WarnContext(ctx, "mailgun webhook refused: token replayed", "event_id", ev.ID)
		answer(w, http.StatusUnauthorized, "signature token already used")
	case !recorded:
		answer(w, http.StatusOK, "already recorded")
	default:
		answer(w, http.StatusOK, "recorded")
	}
}

func answer(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}
