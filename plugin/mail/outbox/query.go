package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/store"
)

// ErrNotFound is returned when no message matches.
var ErrNotFound = store.ErrNotFound

// Filter narrows a message listing. Empty fields do not filter.
type Filter struct {
	// CustomerPK keeps one customer's messages.
	CustomerPK int64
	// To keeps messages to this address (compared case-insensitively).
	To string
	// State keeps messages in this state.
	State State
}

// Page is one page of messages, newest first.
type Page struct {
	Messages    []*Message
	HasNextPage bool
	EndCursor   string
}

// List returns up to first messages after the cursor, newest first.
func List(ctx context.Context, db bun.IDB, f Filter, first int, after string) (Page, error) {
	q := db.NewSelect().Model((*Message)(nil))
	if after != "" {
		id, err := DecodeCursor(after)
		if err != nil {
			return Page{}, err
		}
		q = q.Where("id < ?", id)
	}
	if f.CustomerPK != 0 {
		q = q.Where("customer_id = ?", f.CustomerPK)
	}
	if f.To != "" {
		q = q.Where("lower(recipient) = ?", strings.ToLower(strings.TrimSpace(f.To)))
	}
	if f.State != "" {
		q = q.Where("state = ?", f.State)
	}
	var ms []*Message
	if err := q.Order("id DESC").Limit(int64(first)+1).Scan(ctx, &ms); err != nil {
		return Page{}, fmt.Errorf("list messages: %w", err)
	}
	p := Page{Messages: ms}
	if len(ms) > first {
		p.Messages, p.HasNextPage = ms[:first], true
	}
	if err := fillBodies(ctx, db, p.Messages...); err != nil {
		return Page{}, err
	}
	if n := len(p.Messages); n > 0 {
		p.EndCursor = EncodeCursor(p.Messages[n-1].PK)
	}
	return p, nil
}

// Get loads a message by its public id.
func Get(ctx context.Context, db bun.IDB, id string) (*Message, error) {
	m := new(Message)
	err := db.NewSelect().Model(m).Where("public_id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("message %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load message %q: %w", id, err)
	}
	if err := fillBodies(ctx, db, m); err != nil {
		return nil, err
	}
	return m, nil
}

// GetByProviderID loads the message a provider id and recipient name. A
// batch shares one provider id among its recipients, hence the recipient.
func GetByProviderID(ctx context.Context, db bun.IDB, providerID, recipient string) (*Message, error) {
	m := new(Message)
	q := db.NewSelect().Model(m).Where("provider_message_id = ?", providerID)
	if recipient != "" {
		q = q.Where("lower(recipient) = ?", strings.ToLower(strings.TrimSpace(recipient)))
	}
	err := q.Order("id ASC").Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		m, err = getByCallID(ctx, db, providerID, recipient)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("message with provider id %q: %w", providerID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load message by provider id: %w", err)
	}
	if err := fillBodies(ctx, db, m); err != nil {
		return nil, err
	}
	return m, nil
}

// getByCallID finds the row of a batch call (whose provider id is recorded
// once, on its body) sent to recipient: among the rows the call lists.
func getByCallID(ctx context.Context, db bun.IDB, providerID, recipient string) (*Message, error) {
	var bodies []*MessageBody
	if err := db.NewSelect().Model(&bodies).Column("id", "message_ids").Where("provider_message_id = ?", providerID).
		Order("id ASC").Scan(ctx); err != nil {
		return nil, err
	}
	for _, b := range bodies {
		if len(b.MessageIDs) == 0 {
			continue
		}
		m := new(Message)
		q := db.NewSelect().Model(m).Where(store.In(db, "id", b.MessageIDs)).Where("body_id = ?", b.ID)
		if recipient != "" {
			q = q.Where("lower(recipient) = ?", strings.ToLower(strings.TrimSpace(recipient)))
		}
		err := q.Order("id ASC").Limit(1).Scan(ctx)
		if err == nil || !errors.Is(err, sql.ErrNoRows) {
			return m, err
		}
	}
	return nil, sql.ErrNoRows
}
