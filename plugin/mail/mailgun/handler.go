package mailgun

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
	"github.com/refrain-dev/refrain/plugin/mail/tracking"
)

// MaxWebhookBody is the largest webhook body read (Mailgun's are a few
// kilobytes).
const MaxWebhookBody = 1 << 20

// WebhookHandler serves POST /webhooks/mailgun, Mailgun's event webhooks:
// it checks the signature, its freshness and that its token was not seen
// before, then hands the parsed event to package tracking, and answers so
// that Mailgun knows whether to retry: 200 recorded (or already recorded),
// 406 for a payload that can never be accepted, 401 for a bad, stale or
// replayed signature, 500 when recording failed and a retry may succeed.
type WebhookHandler struct {
	DB *bun.DB
	// SigningKey is Mailgun's webhook signing key.
	SigningKey string
	// Window is how old a signature may be. Default
	// DefaultSignatureWindow.
	Window time.Duration
	// Events counts each recorded event (the engagement rollups). Nil
	// counts nothing.
	Events tracking.EventRecorder
	Clock  clock.Clock
	Logger *slog.Logger
}

// ServeHTTP verifies, records and answers.
func (h *WebhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWebhookBody))
	if err != nil {
		answerWebhook(w, http.StatusRequestEntityTooLarge, "body too large or unreadable")
		return
	}
	sig, err := ParseSignature(body)
	if err != nil {
		answerWebhook(w, http.StatusNotAcceptable, "not a Mailgun webhook payload")
		return
	}
	window := h.Window
	if window <= 0 {
		window = DefaultSignatureWindow
	}
	now := h.Clock.Now()
	if err := sig.Verify(h.SigningKey, now, window); err != nil {
		var stale *StaleSignatureError
		if errors.As(err, &stale) {
			h.Logger.WarnContext(ctx, "mailgun webhook refused: stale timestamp", "err", err)
			answerWebhook(w, http.StatusUnauthorized, "stale signature timestamp")
			return
		}
		h.Logger.WarnContext(ctx, "mailgun webhook refused: bad signature", "err", err)
		answerWebhook(w, http.StatusUnauthorized, "bad signature")
		return
	}
	ev, err := ParseEvent(body)
	if err != nil {
		h.Logger.InfoContext(ctx, "mailgun webhook not acceptable", "err", err)
		answerWebhook(w, http.StatusNotAcceptable, "event not acceptable")
		return
	}
	var replay, recorded bool
	err = h.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		fresh, err := tracking.SeeToken(ctx, tx, now, sig.Token, 2*window)
		if err != nil || !fresh {
			replay = !fresh
			return err
		}
		recorded, err = tracking.RecordTx(ctx, tx, now, ev, h.Events)
		return err
	})
	switch {
	case errors.Is(err, mail.ErrUnacceptable):
		answerWebhook(w, http.StatusNotAcceptable, "event not acceptable")
	case err != nil:
		h.Logger.ErrorContext(ctx, "record mailgun event failed", "err", err, "event_id", ev.ID, "event", ev.Kind)
		answerWebhook(w, http.StatusInternalServerError, "not recorded; retry")
	case replay:
		h.Logger.WarnContext(ctx, "mailgun webhook refused: token replayed", "event_id", ev.ID)
		answerWebhook(w, http.StatusUnauthorized, "signature token already used")
	case !recorded:
		answerWebhook(w, http.StatusOK, "already recorded")
	default:
		answerWebhook(w, http.StatusOK, "recorded")
	}
}

func answerWebhook(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}
