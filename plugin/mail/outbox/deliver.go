package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/mail"
	"github.com/refrain-dev/refrain/plugin/ptr"
	"github.com/refrain-dev/refrain/plugin/store"
)

// Run delivers due messages until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		n, err := s.ProcessDue(ctx)
		if err != nil && ctx.Err() == nil {
			s.logger.ErrorContext(ctx, "mail delivery pass failed", "err", err, "worker", s.cfg.WorkerID)
		}
		if n > 0 && err == nil {
			continue
		}
		t.Reset(s.cfg.Poll)
		select {
		case <-ctx.Done():
			return nil
		case <-s.Wake:
		case <-t.C:
		}
	}
}

// ProcessDue claims one batch of due messages and delivers them. It returns
// how many it claimed.
func (s *Service) ProcessDue(ctx context.Context) (int, error) {
	claimed, err := s.claim(ctx, s.clock.Now())
	if err != nil {
		return 0, err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, s.cfg.Concurrency)
	)
	for _, m := range claimed {
		wg.Add(1)
		sem <- struct{}{}
		go func(m *Message) {
			defer func() { <-sem; wg.Done() }()
			if err := s.deliver(ctx, m); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}(m)
	}
	wg.Wait()
	return len(claimed), errors.Join(errs...)
}

// claim takes up to Batch due messages: queued ones whose next attempt is
// due, and sending ones whose lease ran out (their worker died, perhaps
// after the provider accepted them: those are marked MaybeSent so that
// delivery asks the provider before sending again). On PostgreSQL
// concurrent claimers skip each other's rows (FOR UPDATE SKIP LOCKED).
func (s *Service) claim(ctx context.Context, now time.Time) ([]*Message, error) {
	var out []*Message
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := s.takeBack(ctx, tx, now); err != nil {
			return err
		}
		var due []struct {
			ID    int64 `bun:"id"`
			State State `bun:"state"`
		}
		q := tx.NewSelect().Model((*Message)(nil)).Column("id", "state").
			WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
				return q.Where("state = ? AND next_attempt_at <= ?", StateQueued, now).
					WhereOr("state = ? AND locked_until < ?", StateSending, now)
			}).
			Order("next_attempt_at ASC", "id ASC").Limit(int64(s.cfg.Batch))
		q = store.SkipLocked(q)
		if err := q.Scan(ctx, &due); err != nil {
			return fmt.Errorf("select due messages: %w", err)
		}
		if len(due) == 0 {
			return nil
		}
		var ids, stale []int64
		for _, d := range due {
			ids = append(ids, d.ID)
			if d.State == StateSending {
				stale = append(stale, d.ID)
			}
		}
		if _, err := tx.NewUpdate().Model((*Message)(nil)).
			Set("state = ?", StateSending).Set("locked_by = ?", s.cfg.WorkerID).
			Set("locked_until = ?", now.Add(s.cfg.Lease)).Set("attempts = attempts + 1").Set("updated_at = ?", now).
			Where("id IN (?)", bun.List(ids)).Exec(ctx); err != nil {
			return fmt.Errorf("claim messages: %w", err)
		}
		if len(stale) > 0 {
			if _, err := tx.NewUpdate().Model((*Message)(nil)).Set("maybe_sent = ?", true).
				Where("id IN (?)", bun.List(stale)).Exec(ctx); err != nil {
				return fmt.Errorf("mark stale messages: %w", err)
			}
		}
		if err := tx.NewSelect().Model(&out).Where("id IN (?)", bun.List(ids)).Order("id ASC").Scan(ctx); err != nil {
			return err
		}
		return fillBodies(ctx, tx, out...)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// takeBack hands the rows of batch calls whose lease ran out (their
// sender died between writing them and recording the provider's answer)
// to the per-message path: sending under the call's expired lease, so
// that the claim in the same transaction takes them as stale and delivery
// asks the provider before sending any of them again.
func (s *Service) takeBack(ctx context.Context, tx bun.Tx, now time.Time) error {
	var calls []*MessageBody
	q := tx.NewSelect().Model(&calls).Column("id", "locked_by", "locked_until", "message_ids").
		Where("state = ? AND locked_until < ?", BodySending, now).Order("locked_until ASC").Limit(16)
	q = store.SkipLocked(q)
	if err := q.Scan(ctx); err != nil {
		return fmt.Errorf("select unconfirmed batch calls: %w", err)
	}
	for _, c := range calls {
		if len(c.MessageIDs) > 0 {
			if _, err := tx.NewUpdate().Model((*Message)(nil)).Set("state = ?", StateSending).Set("sent_at = NULL").
				Set("locked_by = ?", c.LockedBy).Set("locked_until = ?", c.LockedUntil).Set("updated_at = ?", now).
				Where(store.In(tx, "id", c.MessageIDs)).Where("body_id = ? AND state = ?", c.ID, StateSent).Exec(ctx); err != nil {
				return fmt.Errorf("take back the rows of batch call %d: %w", c.ID, err)
			}
		}
		if _, err := tx.NewUpdate().Model((*MessageBody)(nil)).Set("state = ?", BodySettled).Set("locked_by = NULL").
			Set("locked_until = NULL").Where("id = ?", c.ID).Exec(ctx); err != nil {
			return fmt.Errorf("take back batch call %d: %w", c.ID, err)
		}
		s.logger.WarnContext(ctx, "batch call unconfirmed, its rows go back to the delivery worker",
			"body", c.ID, "messages", len(c.MessageIDs), "worker", ptr.Deref(c.LockedBy))
	}
	return nil
}

// deliver takes one claimed message to its end state or its next attempt.
func (s *Service) deliver(ctx context.Context, m *Message) error {
	log := s.logger.With(slog.String("message_id", m.ID), slog.Int("attempt", m.Attempts))
	if reason, blocked, err := s.blocked(ctx, m); err != nil {
		return s.retry(ctx, m, err)
	} else if blocked {
		log.InfoContext(ctx, "message suppressed", "reason", reason)
		return s.finish(ctx, m, StateSuppressed, reason)
	}
	if m.MaybeSent {
		// The provider may hold this message already: ask before sending.
		since := m.CreatedAt.Add(-time.Minute)
		id, found, err := s.reconciler.FindSent(ctx, m.ID, since)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.WarnContext(ctx, "reconcile message failed; will retry", "err", err)
			return s.retry(ctx, m, err)
		}
		if found {
			log.InfoContext(ctx, "message found at the provider; not sent again", "provider_id", id)
			return s.markSent(ctx, m, id)
		}
	}
	id, err := s.sender.Send(ctx, s.toMail(m))
	if err == nil {
		return s.markSent(ctx, m, id)
	}
	if ctx.Err() != nil {
		// Shutting down mid-call: the row stays "sending" and is reconciled
		// once its lease runs out.
		return nil
	}
	var fe *mail.FieldError
	var pe *mail.ProviderError
	switch {
	case errors.As(err, &fe):
		log.WarnContext(ctx, "message cannot be sent", "err", err)
		return s.finish(ctx, m, StateFailed, err.Error())
	case errors.As(err, &pe) && !pe.Temporary:
		log.WarnContext(ctx, "provider refused message", "status", pe.Status, "reason", pe.Reason)
		return s.finish(ctx, m, StateFailed, pe.Reason)
	default:
		log.WarnContext(ctx, "send failed; will retry", "err", err)
		return s.retry(ctx, m, err)
	}
}

// blocked reports whether m may not be sent: a suppressed address, or a
// marketing message to a customer who withdrew consent.
func (s *Service) blocked(ctx context.Context, m *Message) (string, bool, error) {
	reason, ok, err := Suppressed(ctx, s.db, m.Recipient, m.Kind)
	if err != nil || ok {
		return "suppressed: " + string(reason), ok, err
	}
	if m.Kind != mail.KindMarketing || m.CustomerPK == nil {
		return "", false, nil
	}
	c, err := customer.Get(ctx, s.db, *m.CustomerPK)
	if errors.Is(err, customer.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	if c.ConsentState == customer.ConsentUnsubscribed || c.ConsentState == customer.ConsentNotSubscribed {
		return "no marketing consent: " + string(c.ConsentState), true, nil
	}
	if s.hold != nil {
		holds, err := s.hold(ctx, s.db, []int64{c.PK})
		if err != nil || holds[c.PK] != "" {
			return holds[c.PK], err == nil, err
		}
	}
	return "", false, nil
}

func (s *Service) toMail(m *Message) mail.Message {
	out := mail.Message{ID: m.ID, To: m.Recipient, ToName: ptr.Deref(m.RecipientName), From: s.cfg.From,
		ReplyTo: s.cfg.ReplyTo, Subject: m.Subject, HTML: m.HTML, Text: m.Text, Kind: m.Kind,
		Tags: tagsOf(m), Variables: varsOf(m), ListUnsubscribeURL: ptr.Deref(m.UnsubscribeURL),
		Tracking: s.cfg.Tracking}
	if m.Kind == mail.KindMarketing {
		out.ListUnsubscribeMailto = s.cfg.ListUnsubscribeMailto
	}
	if m.ProviderTemplate != nil {
		out.TemplateName = *m.ProviderTemplate
		out.TemplateVariables = m.Values
	}
	return out
}

// held restricts an update to a message this worker still holds.
func (s *Service) held(q *bun.UpdateQuery, m *Message) *bun.UpdateQuery {
	return q.Where("id = ? AND state = ? AND locked_by = ?", m.PK, StateSending, s.cfg.WorkerID)
}

func (s *Service) markSent(ctx context.Context, m *Message, providerID string) error {
	now := s.clock.Now()
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		res, err := s.held(tx.NewUpdate().Model((*Message)(nil)).
			Set("state = ?", StateSent).Set("provider = ?", s.provider).Set("provider_message_id = ?", strp(providerID)).
			Set("sent_at = ?", now).Set("maybe_sent = ?", false).Set("locked_until = NULL").Set("last_error = NULL").
			Set("updated_at = ?", now), m).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return s.recordSent(ctx, tx, now, []*Message{m})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark message %s sent: %w", m.ID, err)
	}
	return nil
}

func (s *Service) finish(ctx context.Context, m *Message, state State, reason string) error {
	now := s.clock.Now()
	_, err := s.held(s.db.NewUpdate().Model((*Message)(nil)).
		Set("state = ?", state).Set("last_error = ?", truncate(reason, 2000)).Set("locked_until = NULL").
		Set("updated_at = ?", now), m).Exec(ctx)
	if err != nil {
		return fmt.Errorf("mark message %s %s: %w", m.ID, state, err)
	}
	return nil
}

// retry puts m back in the queue after mail.Backoff (a provider's
// Retry-After is a floor), or fails it after MaxAttempts. A failure after
// which the provider may hold the message keeps MaybeSent, so the next
// attempt reconciles first.
func (s *Service) retry(ctx context.Context, m *Message, cause error) error {
	if m.Attempts >= s.cfg.MaxAttempts {
		return s.finish(ctx, m, StateFailed, fmt.Sprintf("gave up after %d attempts: %v", m.Attempts, cause))
	}
	maybe := m.MaybeSent
	var retryAfter time.Duration
	var pe *mail.ProviderError
	if errors.As(cause, &pe) {
		retryAfter = pe.RetryAfter
		maybe = maybe || pe.MaybeSent
	} else if !errors.As(cause, new(*mail.FieldError)) {
		// Unclassified failures (our own storage, the network below the
		// client): the message may have left.
		maybe = true
	}
	now := s.clock.Now()
	next := now.Add(mail.Backoff(m.Attempts, retryAfter, s.cfg.Jitter))
	_, err := s.held(s.db.NewUpdate().Model((*Message)(nil)).
		Set("state = ?", StateQueued).Set("next_attempt_at = ?", next).Set("maybe_sent = ?", maybe).
		Set("last_error = ?", truncate(cause.Error(), 2000)).Set("locked_until = NULL").Set("updated_at = ?", now), m).Exec(ctx)
	if err != nil {
		return fmt.Errorf("requeue message %s: %w", m.ID, err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
