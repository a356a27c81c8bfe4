package engine

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/store"
	"github.com/refrain-dev/refrain/scenarios"
)

// ErrNotFound is returned for an unknown scenario or enrollment.
var ErrNotFound = store.ErrNotFound

// Message is one mail a send step asks for.
type Message struct {
	CustomerPK int64
	Template   string
	Kind       scenarios.MessageKind
	Values     map[string]string
	// Program is the scenario id; Step and Variant say where in it.
	Program, Step, Variant string
	// Context is the enrollment's context (cart_token and source of the
	// abandoned cart, ...), for templates that show a cart or an order.
	Context map[string]any
	// IdempotencyKey is unique per enrollment and step.
	IdempotencyKey string
	// Priority is the scenario's priority, for the pressure policy.
	Priority int
}

// Mailer writes a message inside the caller's transaction db and returns
// its public id. The mail outbox satisfies it through an adapter; the
// simulator counts instead.
type Mailer interface {
	Send(ctx context.Context, db bun.IDB, m Message) (string, error)
}

// Action is what the pressure policy decides for a marketing send.
type Action string

// Gate actions.
const (
	Allow Action = "allow"
	Defer Action = "defer"
	Skip  Action = "skip"
)

// Decision is a Gate's answer.
type Decision struct {
	Action Action
	// Until is when to try again, for Defer.
	Until  time.Time
	Reason string
}

// Gate is the marketing pressure policy hook, asked before every send.
// The assembly passes the pressure policy; AllowAll is the default.
type Gate interface {
	Admit(ctx context.Context, db bun.IDB, now time.Time, m Message) (Decision, error)
}

// AllowAll is the Gate that lets every message through.
type AllowAll struct{}

// Admit allows m.
func (AllowAll) Admit(context.Context, bun.IDB, time.Time, Message) (Decision, error) {
	return Decision{Action: Allow}, nil
}

// Eraser erases a customer's personal data (commerce.Erase).
type Eraser func(ctx context.Context, db bun.IDB, now time.Time, customerPK int64, reason string) error

// Membership says whether a customer is a current member of a segment,
// given by name or id; known is false for a segment it does not hold. The
// assembly passes the segment store.
type Membership interface {
	IsMember(ctx context.Context, db bun.IDB, segment string, customerPK int64) (member, known bool, err error)
}

// Links gives the per-customer links that step values reference as
// ${survey_url} and ${keep_url}.
type Links interface {
	SurveyURL(c *customer.Customer) string
	// KeepURL is the signed link that keeps c subscribed (and out of sunset).
	KeepURL(c *customer.Customer) string
}

// Options are an Engine's dependencies and settings.
type Options struct {
	DB     *bun.DB
	Clock  clock.Clock
	Logger *slog.Logger
	Mailer Mailer
	// Gate defaults to AllowAll.
	Gate Gate
	// Rules evaluates rules; defaults to scenarios.BasicRules.
	Rules scenarios.Rules
	// Templates checks templates when a scenario is saved; nil skips it.
	Templates scenarios.Templates
	// Erase is the delete_profile step. Required when a scenario uses it.
	Erase Eraser
	// Membership re-checks the trigger segment of segment-triggered
	// scenarios when an enrollment is created and before every step, so
	// that a customer who left the segment (even before the enrollment was
	// written) is not kept in the program. Nil skips the check.
	Membership Membership
	// Links and StoreURL fill ${survey_url} and ${store_url} in values.
	Links    Links
	StoreURL string
	// StoreAnniversary is the store's anniversary as MM-DD, for
	// yearly: store_anniversary.
	StoreAnniversary string
	// TimeZone is used for customers without one. Default UTC.
	TimeZone *time.Location
	// WorkerID names this replica in locks. Default random.
	WorkerID string
	// Batch is how many due enrollments or events one pass takes. Default 100.
	Batch int
	// Lease is how long a claim holds. Default 1 minute.
	Lease time.Duration
	// Poll is how long an idle worker sleeps. Default 1 second.
	Poll time.Duration
}

// Engine runs scenarios.
type Engine struct {
	o     Options
	mu    sync.Mutex
	cache map[string]*scenarios.Scenario // "id@version"
}

// New returns an Engine.
func New(o Options) (*Engine, error) {
	if o.DB == nil || o.Mailer == nil {
		return nil, errors.New("scenario engine: DB and Mailer are required")
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Gate == nil {
		o.Gate = AllowAll{}
	}
	if o.Rules == nil {
		o.Rules = scenarios.BasicRules{}
	}
	if o.TimeZone == nil {
		o.TimeZone = time.UTC
	}
	if o.WorkerID == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		o.WorkerID = "scn-" + hex.EncodeToString(b)
	}
	if o.Batch <= 0 {
		o.Batch = 100
	}
	if o.Lease <= 0 {
		o.Lease = time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	return &Engine{o: o, cache: map[string]*scenarios.Scenario{}}, nil
}

// StoreAnniversary is the store's anniversary as MM-DD ("" when unset).
func (e *Engine) StoreAnniversary() string { return e.o.StoreAnniversary }

// WorkerID names this engine in locks.
func (e *Engine) WorkerID() string { return e.o.WorkerID }

// ValidateOpts are the checks definitions go through.
func (e *Engine) ValidateOpts() scenarios.ValidateOpts {
	return scenarios.ValidateOpts{Templates: e.o.Templates, Rules: e.o.Rules}
}

// Upsert validates a definition and saves it as the scenario's next
// version (or its first, ACTIVE unless status says otherwise). Running
// enrollments finish on the version they started on. When the definition
// is the same as the current version nothing changes. Problems come back
// as scenarios.Problems.
func (e *Engine) Upsert(ctx context.Context, db bun.IDB, file string, definition []byte, origin string, status Status) (*Scenario, *scenarios.Scenario, error) {
	sc, err := scenarios.Load(file, definition, e.ValidateOpts())
	if err != nil {
		return nil, nil, err
	}
	if status == "" {
		status = StatusActive
	}
	now := e.o.Clock.Now()
	var out *Scenario
	err = inTx(ctx, db, func(ctx context.Context, tx bun.IDB) error {
		cur := new(Scenario)
		err := tx.NewSelect().Model(cur).Where("id = ?", sc.ID).Scan(ctx)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			cur = &Scenario{ID: sc.ID, Status: status, Version: 1, Origin: origin, CreatedAt: now, UpdatedAt: now}
			if _, err := tx.NewInsert().Model(cur).Exec(ctx); err != nil {
				return fmt.Errorf("insert scenario %q: %w", sc.ID, err)
			}
		case err != nil:
			return fmt.Errorf("load scenario %q: %w", sc.ID, err)
		default:
			v := new(Version)
			if err := tx.NewSelect().Model(v).Where("scenario_id = ? AND version = ?", cur.ID, cur.Version).Scan(ctx); err != nil {
				return fmt.Errorf("load scenario %q version %d: %w", cur.ID, cur.Version, err)
			}
			if v.Definition == string(definition) {
				out = cur
				return nil
			}
			cur.Version++
			cur.Origin, cur.UpdatedAt = origin, now
			if _, err := tx.NewUpdate().Model(cur).Column("version", "origin", "updated_at").WherePK().Exec(ctx); err != nil {
				return fmt.Errorf("update scenario %q: %w", sc.ID, err)
			}
		}
		out = cur
		_, err = tx.NewInsert().Model(&Version{ScenarioID: cur.ID, Version: cur.Version, Definition: string(definition), CreatedAt: now}).Exec(ctx)
		if err != nil {
			return fmt.Errorf("save scenario %q version %d: %w", cur.ID, cur.Version, err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, sc, nil
}

// SetStatus changes a scenario's status. Pausing stops enrolling and
// advancing; archiving also exits its running enrollments.
func (e *Engine) SetStatus(ctx context.Context, db bun.IDB, id string, status Status) (*Scenario, error) {
	if !status.Valid() {
		return nil, fmt.Errorf("status %q: want ACTIVE, PAUSED or ARCHIVED", status)
	}
	now := e.o.Clock.Now()
	var out *Scenario
	err := inTx(ctx, db, func(ctx context.Context, tx bun.IDB) error {
		res, err := tx.NewUpdate().Model((*Scenario)(nil)).Set("status = ?", status).Set("updated_at = ?", now).
			Where("id = ?", id).Exec(ctx)
		if err != nil {
			return fmt.Errorf("set scenario %q status: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("scenario %q: %w", id, ErrNotFound)
		}
		if status == StatusArchived {
			if _, err := tx.NewUpdate().Model((*Enrollment)(nil)).Set("state = ?", StateExited).
				Set("exit_reason = ?", "scenario archived").Set("finished_at = ?", now).Set("next_run_at = NULL").
				Set("updated_at = ?", now).Where("scenario_id = ? AND state = ?", id, StateActive).Exec(ctx); err != nil {
				return fmt.Errorf("exit enrollments of archived scenario %q: %w", id, err)
			}
		}
		out, err = GetScenario(ctx, tx, id)
		return err
	})
	return out, err
}

// Compiled returns the parsed, validated definition of a scenario version.
// Versions never change once saved, so they are cached.
func (e *Engine) Compiled(ctx context.Context, db bun.IDB, id string, version int) (*scenarios.Scenario, error) {
	key := fmt.Sprintf("%s@%d", id, version)
	e.mu.Lock()
	sc, ok := e.cache[key]
	e.mu.Unlock()
	if ok {
		return sc, nil
	}
	sc, err := CompileVersion(ctx, db, id, version)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.cache[key] = sc
	e.mu.Unlock()
	return sc, nil
}

// CompileVersion loads and parses a stored scenario version, without the
// engine's cache. Saved versions were validated; templates or rules may
// have changed since, so only the shape is checked again here.
func CompileVersion(ctx context.Context, db bun.IDB, id string, version int) (*scenarios.Scenario, error) {
	v := new(Version)
	if err := db.NewSelect().Model(v).Where("scenario_id = ? AND version = ?", id, version).Scan(ctx); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("scenario %q version %d: %w", id, version, ErrNotFound)
		}
		return nil, fmt.Errorf("load scenario %q version %d: %w", id, version, err)
	}
	sc, err := scenarios.Parse(id, []byte(v.Definition))
	if err == nil {
		err = scenarios.Validate(sc, scenarios.ValidateOpts{})
	}
	if err != nil {
		return nil, fmt.Errorf("compile scenario %q version %d: %w", id, version, err)
	}
	return sc, nil
}

// active returns the current definitions of the active scenarios.
func (e *Engine) active(ctx context.Context, db bun.IDB) ([]*scenarios.Scenario, error) {
	var rows []*Scenario
	if err := db.NewSelect().Model(&rows).Where("status = ?", StatusActive).Order("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list active scenarios: %w", err)
	}
	out := make([]*scenarios.Scenario, 0, len(rows))
	for _, r := range rows {
		sc, err := e.Compiled(ctx, db, r.ID, r.Version)
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, nil
}

// inTx runs fn in a transaction, or in the caller's when db already is one.
func inTx(ctx context.Context, db bun.IDB, fn func(ctx context.Context, tx bun.IDB) error) error {
	if tx, ok := db.(bun.Tx); ok {
		return fn(ctx, tx)
	}
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return fn(ctx, tx) })
}

// Rules is the rule evaluator the engine checks and runs scenarios with, so
// that a simulation or a validation reads rules as the engine does.
func (e *Engine) Rules() scenarios.Rules { return e.o.Rules }
