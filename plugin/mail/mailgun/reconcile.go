package mailgun

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	mg "github.com/mailgun/mailgun-go/v4"
	"github.com/mailgun/mailgun-go/v4/events"

	refmail "github.com/refrain-dev/refrain/plugin/mail"
)

// reconcilePageLimit and reconcileMaxPages bound one FindSent search: the
// filter should return at most one event per recipient, so a longer search
// means the filter was ignored and scanning on would only cost API calls.
const (
	reconcilePageLimit = 300
	reconcileMaxPages  = 10
)

// FindSent searches Mailgun's events API, on the marketing domain and then
// on the transactional domain when there is one, for an "accepted" event
// whose user variable message_id is messageID, from since onwards. The
// search asks Mailgun to filter on event and user-variables and checks the
// variable again on each event. Mailgun keeps events for a few days (plan
// dependent): a message older than that is reported as not found.
func (s *Sender) FindSent(ctx context.Context, messageID string, since time.Time) (string, bool, error) {
	if messageID == "" {
		return "", false, fmt.Errorf("find sent message: %w", &refmail.FieldError{Field: "messageID", Problem: "is required"})
	}
	domains := []string{s.cfg.Domain}
	if d := s.cfg.TransactionalDomain; d != "" && d != s.cfg.Domain {
		domains = append(domains, d)
	}
	for _, domain := range domains {
		id, found, err := s.findSentOn(ctx, domain, messageID, since)
		if err != nil {
			return "", false, fmt.Errorf("find sent message %s on %s: %w", messageID, domain, err)
		}
		if found {
			return id, true, nil
		}
	}
	return "", false, nil
}

func (s *Sender) findSentOn(ctx context.Context, domain, messageID string, since time.Time) (string, bool, error) {
	userVars, err := json.Marshal(map[string]string{refmail.VarMessageID: messageID})
	if err != nil {
		return "", false, fmt.Errorf("encode filter: %w", err)
	}
	it := s.client.ListEventsWithDomain(&mg.ListEventOptions{
		Begin:          since,
		ForceAscending: true,
		Limit:          reconcilePageLimit,
		Filter: map[string]string{
			"event":          string(events.EventAccepted),
			"user-variables": string(userVars),
		},
	}, domain)

	var page []mg.Event
	for range reconcileMaxPages {
		more, err := s.nextPage(ctx, it, &page)
		if err != nil {
			return "", false, err
		}
		for _, ev := range page {
			accepted, ok := ev.(*events.Accepted)
			if !ok {
				continue
			}
			if userVariable(accepted.UserVariables, refmail.VarMessageID) == messageID {
				return trimAngles(accepted.Message.Headers.MessageID), true, nil
			}
		}
		if !more {
			return "", false, nil
		}
	}
	s.logger.WarnContext(ctx, "mailgun event search stopped before its end",
		slog.String("message_id", messageID), slog.String("domain", domain), slog.Int("pages", reconcileMaxPages))
	return "", false, nil
}

// nextPage fetches one page within the configured timeout.
func (s *Sender) nextPage(ctx context.Context, it *mg.EventIterator, page *[]mg.Event) (bool, error) {
	callCtx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	meta := &responseMeta{}
	callCtx = context.WithValue(callCtx, responseMetaKey{}, meta)
	*page = nil
	more := it.Next(callCtx, page)
	if err := it.Err(); err != nil {
		return false, s.classify(ctx, err, meta)
	}
	return more, nil
}

// userVariable reads one user variable from Mailgun's decoded
// user-variables object, whose values may be strings or other JSON.
func userVariable(vars any, name string) string {
	m, ok := vars.(map[string]any)
	if !ok {
		return ""
	}
	switch v := m[name].(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}
