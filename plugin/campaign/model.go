// Package campaign runs one-off sends to an audience: a campaign is
// DRAFT, then SCHEDULED, SENDING and SENT, and may be PAUSED or CANCELLED.
// When sending starts its audience is fixed into campaign_recipients (in
// chunks of INSERT ... SELECT, resumable); workers on every replica then
// claim batches of up to 1,000 due recipients under a lease, decide the
// pressure policy for the whole batch and write its message rows in one
// transaction, and make one provider call per batch, many batches in
// flight. A crash loses nothing and sends nothing twice: a recipient is
// either still pending (its lease runs out and another worker takes it) or
// has its message row (unique per campaign and customer), which the
// outbox delivers or reconciles. The forecast of the load campaigns make
// lives in plugin/forecast; this package must not import it, nor the
// scenario language.
package campaign

import (
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/pressure"
)

// Status is where a campaign is.
type Status string

// Campaign statuses.
const (
	StatusDraft     Status = "DRAFT"
	StatusScheduled Status = "SCHEDULED"
	StatusSending   Status = "SENDING"
	StatusSent      Status = "SENT"
	StatusPaused    Status = "PAUSED"
	StatusCancelled Status = "CANCELLED"
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	switch s {
	case StatusDraft, StatusScheduled, StatusSending, StatusSent, StatusPaused, StatusCancelled:
		return true
	}
	return false
}

// Variant is one arm of an A/B test.
type Variant struct {
	Name     string            `json:"name"`
	Template string            `json:"template"`
	Values   map[string]string `json:"values,omitempty"`
}

// Winner metrics.
const (
	MetricOpenRate  = "OPEN_RATE"
	MetricClickRate = "CLICK_RATE"
)

// ABTest sends Variants to TestShare of the audience, then the winner on
// WinnerMetric to the rest once DecideAfter has passed since the start.
type ABTest struct {
	Variants     []Variant     `json:"variants"`
	TestShare    float64       `json:"testShare"`
	WinnerMetric string        `json:"winnerMetric"`
	DecideAfter  time.Duration `json:"decideAfter"`
}

// Campaign is a stored campaign.
type Campaign struct {
	bun.BaseModel `bun:"table:campaigns"`
	ID            string `bun:"id,pk"`
	Name          string `bun:"name,notnull"`
	Objective     string `bun:"objective,notnull"`
	// Program is the program the campaign belongs to (its id when none).
	Program  string            `bun:"program,notnull"`
	Audience string            `bun:"audience,notnull"`
	Template string            `bun:"template,notnull"`
	Values   map[string]string `bun:"template_values,notnull,type:jsonb"`
	Priority int               `bun:"priority,notnull"`
	// Pressure overrides the policy for this campaign.
	Pressure    pressure.Override `bun:"pressure,notnull,type:jsonb"`
	ScheduledAt *time.Time        `bun:"scheduled_at"`
	// RecipientTZ sends at ScheduledAt's wall-clock time (in the default
	// time zone) in each recipient's own zone.
	RecipientTZ    bool    `bun:"recipient_tz,notnull"`
	ABTest         *ABTest `bun:"ab_test,type:jsonb"`
	Status         Status  `bun:"status,notnull"`
	PausedFrom     *Status `bun:"paused_from"`
	AudienceFixed  bool    `bun:"audience_fixed,notnull"`
	AudienceCursor int64   `bun:"audience_cursor,notnull"`
	AudienceCount  int     `bun:"audience_count,notnull"`
	// WrittenCount counts the recipients whose message is written: they
	// leave campaign_recipients as it is (see Recipient).
	WrittenCount int        `bun:"written_count,notnull"`
	Winner       *string    `bun:"winner"`
	StartedAt    *time.Time `bun:"started_at"`
	FinishedAt   *time.Time `bun:"finished_at"`
	LockedBy     *string    `bun:"locked_by"`
	LockedUntil  *time.Time `bun:"locked_until"`
	CreatedAt    time.Time  `bun:"created_at,notnull"`
	UpdatedAt    time.Time  `bun:"updated_at,notnull"`
}

// Recipient states.
const (
	RecipientPending = "pending"
	RecipientHeld    = "held"
	RecipientWritten = "written"
	RecipientSkipped = "skipped"
)

// Recipient is one customer of a fixed audience still to send, held for
// an A/B winner, or skipped (with its reason). A recipient whose message
// is written is deleted in the transaction that writes it, and counted in
// Campaign.WrittenCount: a delete costs the server far less than a new
// row version with its index entries, a thousand times a batch. Rows in
// state written are those of campaigns sent before that change.
type Recipient struct {
	bun.BaseModel `bun:"table:campaign_recipients"`
	CampaignID    string     `bun:"campaign_id,pk"`
	CustomerPK    int64      `bun:"customer_id,pk"`
	Variant       *string    `bun:"variant"`
	State         string     `bun:"state,notnull"`
	DueAt         time.Time  `bun:"due_at,notnull"`
	LockedBy      *string    `bun:"locked_by"`
	LockedUntil   *time.Time `bun:"locked_until"`
	Reason        *string    `bun:"reason"`
}

// Counts are a campaign's recipients by state.
type Counts struct {
	Pending, Held, Written, Skipped int
}

// ErrTransition is wrapped by the error of an illegal status change.
var ErrTransition = errors.New("illegal campaign transition")

// TransitionError says why a campaign cannot change status.
type TransitionError struct {
	ID     string
	From   Status
	Action string
	Allow  []Status
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("campaign %s is %s: cannot %s it (only %v campaigns can be)", e.ID, e.From, e.Action, e.Allow)
}

// Unwrap makes errors.Is(err, ErrTransition) true.
func (e *TransitionError) Unwrap() error { return ErrTransition }

// InputError names the field of a campaign input that is wrong.
type InputError struct{ Field, Problem string }

func (e *InputError) Error() string { return e.Field + ": " + e.Problem }

func bad(field, format string, args ...any) error {
	return &InputError{Field: field, Problem: fmt.Sprintf(format, args...)}
}
