package campaign

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/cursor"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
	"github.com/refrain-dev/refrain/plugin/pressure"
	"github.com/refrain-dev/refrain/plugin/store"
)

// ErrNotFound is returned for an unknown campaign.
var ErrNotFound = store.ErrNotFound

// Audience selects customers. Campaigns add the conditions every
// marketing audience has (an address and marketing consent).
type Audience interface {
	// Where is a condition on the customers table aliased c.
	Where(db bun.IDB) (string, []any)
}

// AudienceParser turns a campaign's audience (a segment id or rule) into an Audience.
type AudienceParser func(ctx context.Context, db bun.IDB, spec string) (Audience, error)

// variantName is what an A/B variant may be called: it is written into
// message rows, tags and the audience statement.
var variantName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,40}$`)

// WinnerPicker chooses the winning variant of an A/B test. The service
// runs BayesPicker, which tests significance; RatePicker is the default.
type WinnerPicker interface {
	Pick(ctx context.Context, db bun.IDB, c *Campaign) (string, error)
}

// Templates says whether a template exists.
type Templates interface {
	Has(name string) bool
}

// Options are a Service's dependencies and settings.
type Options struct {
	DB     *bun.DB
	Clock  clock.Clock
	Logger *slog.Logger
	Outbox *outbox.Service
	Policy *pressure.Policy
	// Audience parses audiences. Required.
	Audience AudienceParser
	// Winner defaults to RatePicker.
	Winner WinnerPicker
	// Templates, when set, checks templates at create and update.
	Templates Templates
	// WorkerID names this replica in leases. Default random.
	WorkerID string
	// Batch is the recipients per batch, at most 1000. Default 1000.
	Batch int
	// Concurrency is the batches in flight. Default 8.
	Concurrency int
	// Lease is how long a claim holds. Default 2 minutes.
	Lease time.Duration
	// Poll is how long an idle worker waits. Default 1 second.
	Poll time.Duration
	// AudienceChunk is how many customers one INSERT ... SELECT fixes. Default 50,000.
	AudienceChunk int
}

// Service stores and sends campaigns.
type Service struct {
	o Options
	// Warn, when set, returns the warnings of scheduling c (days over the
	// cap, overlapping campaigns); the forecast fills it.
	Warn func(ctx context.Context, c *Campaign) ([]string, error)
}

// New returns a Service.
func New(o Options) (*Service, error) {
	if o.DB == nil || o.Outbox == nil || o.Policy == nil || o.Audience == nil {
		return nil, errors.New("campaigns: DB, Outbox, Policy and Audience are required")
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Winner == nil {
		o.Winner = RatePicker{}
	}
	if o.WorkerID == "" {
		o.WorkerID = "cmp-" + randomID(6)
	}
	if o.Batch <= 0 || o.Batch > 1000 {
		o.Batch = 1000
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Lease <= 0 {
		o.Lease = 2 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.AudienceChunk <= 0 {
		o.AudienceChunk = 50000
	}
	return &Service{o: o}, nil
}

// Policy returns the pressure policy the campaigns are sent under.
func (s *Service) Policy() *pressure.Policy { return s.o.Policy }

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return idEncoding.EncodeToString(b)
}

// Input is what a user sets on a campaign; nil fields are left as they are
// on update (and take their default on create).
type Input struct {
	Name, Objective, Program, Audience, Template *string
	Values                                       map[string]string
	Priority                                     *int
	Pressure                                     *pressure.Override
	ScheduledAt                                  *time.Time
	RecipientTZ                                  *bool
	ABTest                                       *ABTest
	// ClearABTest removes the A/B test on update.
	ClearABTest bool
}

func (s *Service) apply(ctx context.Context, c *Campaign, in Input) error {
	if in.Name != nil {
		c.Name = strings.TrimSpace(*in.Name)
	}
	if in.Objective != nil {
		c.Objective = *in.Objective
	}
	if in.Program != nil {
		c.Program = strings.TrimSpace(*in.Program)
	}
	if in.Audience != nil {
		c.Audience = strings.TrimSpace(*in.Audience)
	}
	if in.Template != nil {
		c.Template = strings.TrimSpace(*in.Template)
	}
	if in.Values != nil {
		c.Values = in.Values
	}
	if in.Priority != nil {
		c.Priority = *in.Priority
	}
	if in.Pressure != nil {
		c.Pressure = *in.Pressure
	}
	if in.ScheduledAt != nil {
		t := in.ScheduledAt.UTC()
		c.ScheduledAt = &t
	}
	if in.RecipientTZ != nil {
		c.RecipientTZ = *in.RecipientTZ
	}
	if in.ABTest != nil {
		c.ABTest = in.ABTest
	}
	if in.ClearABTest {
		c.ABTest = nil
	}
	if c.Program == "" {
		c.Program = c.ID
	}
	switch {
	case c.Name == "":
		return bad("name", "is required")
	case c.Template == "":
		return bad("template", "is required")
	case s.o.Templates != nil && !s.o.Templates.Has(c.Template):
		return bad("template", "no template named %q", c.Template)
	case c.Priority < 0 || c.Priority > 100:
		return bad("priority", "%d: want 0 to 100", c.Priority)
	case c.Audience == "":
		return bad("segment", "is required: a segment id or rule (all, tag:NAME)")
	}
	if _, err := s.o.Audience(ctx, s.o.DB, c.Audience); err != nil {
		return bad("segment", "%v", err)
	}
	rules := s.o.Policy.RulesFor(c.Program, &c.Pressure)
	if err := rules.Validate(); err != nil {
		return bad("pressure", "%v", err)
	}
	if ab := c.ABTest; ab != nil {
		switch {
		case len(ab.Variants) < 2:
			return bad("abTest.variants", "want at least 2 variants, got %d", len(ab.Variants))
		case ab.TestShare <= 0 || ab.TestShare >= 1:
			return bad("abTest.testShare", "%g: want a share between 0 and 1 (0.2 tests on 20%%)", ab.TestShare)
		case ab.DecideAfter <= 0:
			return bad("abTest.decideAfter", "want a positive duration, got %s", ab.DecideAfter)
		case ab.WinnerMetric != MetricOpenRate && ab.WinnerMetric != MetricClickRate:
			return bad("abTest.winnerMetric", "%q: want %s or %s", ab.WinnerMetric, MetricOpenRate, MetricClickRate)
		}
		seen := map[string]bool{}
		for i, v := range ab.Variants {
			field := fmt.Sprintf("abTest.variants[%d]", i)
			if !variantName.MatchString(v.Name) || seen[v.Name] {
				return bad(field+".name", "%q: want a unique name of 1 to 40 letters, digits, - or _", v.Name)
			}
			seen[v.Name] = true
			if v.Template == "" {
				ab.Variants[i].Template = c.Template
			} else if s.o.Templates != nil && !s.o.Templates.Has(v.Template) {
				return bad(field+".template", "no template named %q", v.Template)
			}
		}
	}
	if c.Values == nil {
		c.Values = map[string]string{}
	}
	// A template that reads a value the campaign does not give would fail
	// at every send: refuse it now.
	if c.ABTest == nil {
		if missing := s.missingValues(c.Template, c.Values); len(missing) > 0 {
			return bad("values", "template %q needs %s", c.Template, strings.Join(missing, ", "))
		}
	} else {
		for i, v := range c.ABTest.Variants {
			values := c.Values
			if v.Values != nil {
				values = v.Values
			}
			if missing := s.missingValues(v.Template, values); len(missing) > 0 {
				return bad(fmt.Sprintf("abTest.variants[%d].values", i), "template %q needs %s", v.Template, strings.Join(missing, ", "))
			}
		}
	}
	return nil
}

// valueLister is a template store that can say which values a template
// reads ({{.Values.key}}); the mail template engine is one.
type valueLister interface {
	RequiredValues(name string) []string
}

// missingValues lists the values tmpl reads that values lacks (none when
// the template store cannot tell).
func (s *Service) missingValues(tmpl string, values map[string]string) []string {
	vl, ok := s.o.Templates.(valueLister)
	if !ok {
		return nil
	}
	var missing []string
	for _, k := range vl.RequiredValues(tmpl) {
		if _, ok := values[k]; !ok {
			missing = append(missing, k)
		}
	}
	return missing
}

// Create stores a new DRAFT campaign.
func (s *Service) Create(ctx context.Context, in Input) (*Campaign, error) {
	now := s.o.Clock.Now()
	c := &Campaign{ID: "cmp_" + randomID(10), Status: StatusDraft, Priority: 50, Audience: "all", CreatedAt: now, UpdatedAt: now}
	if err := s.apply(ctx, c, in); err != nil {
		return nil, err
	}
	if _, err := s.o.DB.NewInsert().Model(c).Exec(ctx); err != nil {
		return nil, fmt.Errorf("create campaign: %w", err)
	}
	return c, nil
}

// Get loads a campaign.
func Get(ctx context.Context, db bun.IDB, id string) (*Campaign, error) {
	c := new(Campaign)
	if err := db.NewSelect().Model(c).Where("id = ?", id).Scan(ctx); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("campaign %q: %w", id, ErrNotFound)
		}
		return nil, fmt.Errorf("load campaign %q: %w", id, err)
	}
	return c, nil
}

// Update changes a campaign that has not started sending.
func (s *Service) Update(ctx context.Context, id string, in Input) (*Campaign, error) {
	var out *Campaign
	err := s.o.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		c, err := Get(ctx, tx, id)
		if err != nil {
			return err
		}
		if c.StartedAt != nil || (c.Status != StatusDraft && c.Status != StatusScheduled && c.Status != StatusPaused) {
			return &TransitionError{ID: id, From: c.Status, Action: "update", Allow: []Status{StatusDraft, StatusScheduled, StatusPaused + " (before sending)"}}
		}
		if err := s.apply(ctx, c, in); err != nil {
			return err
		}
		c.UpdatedAt = s.o.Clock.Now()
		if _, err := tx.NewUpdate().Model(c).WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("update campaign %s: %w", id, err)
		}
		out = c
		return nil
	})
	return out, err
}

// transition moves a campaign from one of from to the status next returns.
func (s *Service) transition(ctx context.Context, id, action string, from []Status, next func(c *Campaign) error) (*Campaign, error) {
	var out *Campaign
	err := s.o.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		q := tx.NewSelect().Model((*Campaign)(nil)).Where("id = ?", id)
		q = store.ForUpdate(q)
		c := new(Campaign)
		if err := q.Scan(ctx, c); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("campaign %q: %w", id, ErrNotFound)
			}
			return fmt.Errorf("load campaign %q: %w", id, err)
		}
		ok := false
		for _, f := range from {
			ok = ok || c.Status == f
		}
		if !ok {
			return &TransitionError{ID: id, From: c.Status, Action: action, Allow: from}
		}
		if err := next(c); err != nil {
			return err
		}
		c.UpdatedAt = s.o.Clock.Now()
		if _, err := tx.NewUpdate().Model(c).Column("status", "paused_from", "scheduled_at", "finished_at", "updated_at").
			WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("%s campaign %s: %w", action, id, err)
		}
		out = c
		return nil
	})
	return out, err
}

// Schedule makes a DRAFT campaign SCHEDULED at at (or its scheduledAt)
// and returns the forecast's warnings.
func (s *Service) Schedule(ctx context.Context, id string, at *time.Time) (*Campaign, []string, error) {
	c, err := s.transition(ctx, id, "schedule", []Status{StatusDraft}, func(c *Campaign) error {
		if at != nil {
			t := at.UTC()
			c.ScheduledAt = &t
		}
		if c.ScheduledAt == nil {
			return bad("scheduledAt", "is required to schedule a campaign")
		}
		c.Status = StatusScheduled
		return nil
	})
	if err != nil || s.Warn == nil {
		return c, nil, err
	}
	warnings, err := s.Warn(ctx, c)
	return c, warnings, err
}

// Pause holds a SCHEDULED or SENDING campaign; batches in flight finish.
func (s *Service) Pause(ctx context.Context, id string) (*Campaign, error) {
	return s.transition(ctx, id, "pause", []Status{StatusScheduled, StatusSending}, func(c *Campaign) error {
		from := c.Status
		c.PausedFrom, c.Status = &from, StatusPaused
		return nil
	})
}

// Resume takes a PAUSED campaign back to where it was.
func (s *Service) Resume(ctx context.Context, id string) (*Campaign, error) {
	return s.transition(ctx, id, "resume", []Status{StatusPaused}, func(c *Campaign) error {
		c.Status = StatusScheduled
		if c.PausedFrom != nil {
			c.Status = *c.PausedFrom
		}
		c.PausedFrom = nil
		return nil
	})
}

// Cancel stops a campaign for good; what was written is still delivered.
func (s *Service) Cancel(ctx context.Context, id string) (*Campaign, error) {
	return s.transition(ctx, id, "cancel", []Status{StatusDraft, StatusScheduled, StatusSending, StatusPaused}, func(c *Campaign) error {
		now := s.o.Clock.Now()
		c.Status, c.FinishedAt = StatusCancelled, &now
		return nil
	})
}

// Page is one page of campaigns.
type Page struct {
	Campaigns []*Campaign
	EndCursor string
	HasMore   bool
}

// List lists campaigns, newest first, optionally of one status.
func List(ctx context.Context, db bun.IDB, status *Status, first int, after string) (Page, error) {
	if first <= 0 || first > 500 {
		return Page{}, fmt.Errorf("first %d: want 1 to 500", first)
	}
	q := db.NewSelect().Model((*Campaign)(nil)).Order("created_at DESC", "id DESC").Limit(int64(first + 1))
	if status != nil {
		q = q.Where("status = ?", *status)
	}
	if after != "" {
		parts, err := cursor.Decode(after, "|", 2)
		if err != nil {
			return Page{}, fmt.Errorf("after: %w", err)
		}
		t, err := time.Parse(time.RFC3339Nano, parts[0])
		if err != nil {
			return Page{}, fmt.Errorf("after: %w %q", cursor.ErrInvalid, after)
		}
		q = q.Where("(created_at < ? OR (created_at = ? AND id < ?))", t, t, parts[1])
	}
	var cs []*Campaign
	if err := q.Scan(ctx, &cs); err != nil {
		return Page{}, fmt.Errorf("list campaigns: %w", err)
	}
	p := Page{Campaigns: cs}
	if len(cs) > first {
		p.Campaigns, p.HasMore = cs[:first], true
	}
	if n := len(p.Campaigns); n > 0 {
		p.EndCursor = Cursor(p.Campaigns[n-1])
	}
	return p, nil
}

// Cursor is the List cursor just after c.
func Cursor(c *Campaign) string {
	return cursor.Encode("|", c.CreatedAt.UTC().Format(time.RFC3339Nano), c.ID)
}

// CountsOf counts a campaign's recipients by state.
func CountsOf(ctx context.Context, db bun.IDB, id string) (Counts, error) {
	var rows []struct {
		State string `bun:"state"`
		N     int    `bun:"n"`
	}
	if err := db.NewSelect().Model((*Recipient)(nil)).ColumnExpr("state, count(*) AS n").Where("campaign_id = ?", id).
		Group("state").Scan(ctx, &rows); err != nil {
		return Counts{}, fmt.Errorf("count recipients of campaign %s: %w", id, err)
	}
	var c Counts
	// Written recipients have left the table and are counted on the campaign.
	if err := db.NewSelect().Model((*Campaign)(nil)).Column("written_count").Where("id = ?", id).Scan(ctx, &c.Written); err != nil &&
		!errors.Is(err, sql.ErrNoRows) {
		return Counts{}, fmt.Errorf("count recipients of campaign %s: %w", id, err)
	}
	for _, r := range rows {
		switch r.State {
		case RecipientPending:
			c.Pending = r.N
		case RecipientHeld:
			c.Held = r.N
		case RecipientWritten:
			c.Written += r.N
		case RecipientSkipped:
			c.Skipped = r.N
		}
	}
	return c, nil
}
