// Package simulate runs a scenario on a virtual clock against generated
// customers in a throwaway SQLite database, sending nothing, and reports
// per day and per step what the engine would have done: entries, sends,
// exits, goals and deletions.
package simulate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/commerce"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/store"
	"github.com/refrain-dev/refrain/scenarios"
	"github.com/refrain-dev/refrain/scenarios/engine"
)

// Options shape a simulation. Zero values take the defaults on each field.
type Options struct {
	// Customers is how many customers are generated. Default 1000.
	Customers int
	// Days is how long the simulation runs. Default 30.
	Days int
	// Start is the first simulated day. Default the next 1 January, 00:00 UTC.
	Start time.Time
	// Seed makes the generated base and behaviour repeatable. Default 1.
	Seed uint64
	// Templates and Rules check the definition; nil skips template checks
	// and uses scenarios.BasicRules.
	Templates scenarios.Templates
	Rules     scenarios.Rules
	// StoreAnniversary is the MM-DD of yearly: store_anniversary.
	StoreAnniversary string
	// ReactionRate is the daily chance that an enrolled customer does each
	// event the scenario waits for, exits on or counts as its goal. Default 0.04.
	ReactionRate float64
}

// Counts are what happened in a day or at a step.
type Counts struct {
	Entries   int `json:"entries"`
	Holdouts  int `json:"holdouts"`
	Sends     int `json:"sends"`
	Exits     int `json:"exits"`
	Goals     int `json:"goals"`
	Deletions int `json:"deletions"`
}

// Day is one simulated day.
type Day struct {
	Day  int    `json:"day"`
	Date string `json:"date"`
	Counts
}

// Step is one step's totals.
type Step struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// Runs is how many enrollments passed the step.
	Runs int `json:"runs"`
	Counts
}

// Report is a simulation's result.
type Report struct {
	Scenario  string `json:"scenario"`
	Customers int    `json:"customers"`
	Days      []Day  `json:"days"`
	Steps     []Step `json:"steps"`
	Total     Counts `json:"total"`
	// Touched is how many distinct customers the program would send to or
	// delete: the number to read before enabling it.
	Touched int `json:"touched"`
}

// countingMailer sends nothing.
type countingMailer struct{ n int }

func (m *countingMailer) Send(_ context.Context, _ bun.IDB, msg engine.Message) (string, error) {
	m.n++
	return "sim-" + strconv.Itoa(m.n), nil
}

// Run simulates definition.
func Run(ctx context.Context, definition []byte, o Options) (*Report, error) {
	if o.Customers <= 0 {
		o.Customers = 1000
	}
	if o.Days <= 0 {
		o.Days = 30
	}
	if o.Start.IsZero() {
		o.Start = time.Date(time.Now().Year()+1, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.ReactionRate <= 0 {
		o.ReactionRate = 0.04
	}
	if o.Rules == nil {
		o.Rules = scenarios.BasicRules{}
	}
	sc, err := scenarios.Load("definition", definition, scenarios.ValidateOpts{Templates: o.Templates, Rules: o.Rules})
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "refrain-simulate-")
	if err != nil {
		return nil, fmt.Errorf("create simulation directory: %w", err)
	}
	defer os.RemoveAll(dir)
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "sim.db"), nil)
	if err != nil {
		return nil, fmt.Errorf("open simulation database: %w", err)
	}
	defer db.Close()
	m, err := store.NewMigrator(db)
	if err != nil {
		return nil, err
	}
	if _, err := m.Up(ctx); err != nil {
		return nil, fmt.Errorf("migrate simulation database: %w", err)
	}
	clk := clock.NewVirtual(o.Start.Add(-time.Hour))
	eng, err := engine.New(engine.Options{DB: db, Clock: clk, Mailer: &countingMailer{}, Rules: o.Rules,
		Erase: commerce.Erase, StoreURL: "https://store.example", StoreAnniversary: o.StoreAnniversary,
		Batch: 500, Lease: time.Minute})
	if err != nil {
		return nil, err
	}
	if _, _, err := eng.Upsert(ctx, db, "definition", definition, "simulation", engine.StatusActive); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x5eed))
	pks, err := generate(ctx, db, rng, o)
	if err != nil {
		return nil, err
	}
	if err := eng.Drain(ctx); err != nil { // the event cursor starts after the generated history
		return nil, err
	}
	g := &behaviour{db: db, eng: eng, clk: clk, rng: rng, sc: sc, o: o, pks: pks}
	for d := 0; d < o.Days; d++ {
		if err := g.day(ctx, d); err != nil {
			return nil, fmt.Errorf("simulate day %d: %w", d, err)
		}
	}
	return report(ctx, db, sc, o)
}

// generate writes o.Customers customers with a plausible spread of
// consent, orders and dates.
func generate(ctx context.Context, db *bun.DB, rng *rand.Rand, o Options) ([]int64, error) {
	zones := []string{"Europe/Paris", "Europe/Madrid", "America/New_York", "UTC"}
	var pks []int64
	for i := 0; i < o.Customers; i += 500 {
		var batch []*customer.Customer
		for j := i; j < o.Customers && j < i+500; j++ {
			email := fmt.Sprintf("customer%d@sim.example", j)
			created := o.Start.Add(-time.Duration(rng.IntN(3*365*24)) * time.Hour)
			c := &customer.Customer{PublicID: customer.NewPublicID(), Email: &email, EmailNormalized: &email,
				Source: customer.SourceOnline, ConsentState: customer.ConsentSubscribed, ConsentProof: map[string]any{},
				Attributes: map[string]any{}, Preferences: map[string]any{}, Tags: []string{}, Stage: "SUBSCRIBER",
				ObservedSince: &created, CreatedAt: created, UpdatedAt: created}
			if rng.Float64() < 0.15 {
				c.ConsentState = customer.ConsentUnsubscribed
			}
			tz := zones[rng.IntN(len(zones))]
			c.TimeZone = &tz
			if rng.Float64() < 0.6 {
				c.OrdersCount = 1 + rng.IntN(6)
				first := created.Add(time.Duration(rng.IntN(60*24)) * time.Hour)
				last := first.Add(time.Duration(rng.IntN(400*24)) * time.Hour)
				c.FirstOrderAt, c.LastOrderAt = &first, &last
				c.TotalSpentMinor = int64(c.OrdersCount) * int64(2000+rng.IntN(8000))
				c.Stage = "ACTIVE"
			}
			batch = append(batch, c)
		}
		if _, err := db.NewInsert().Model(&batch).Exec(ctx); err != nil {
			return nil, fmt.Errorf("generate customers: %w", err)
		}
		for _, c := range batch {
			pks = append(pks, c.PK)
		}
	}
	return pks, nil
}

// behaviour makes the generated customers act, day by day.
type behaviour struct {
	db  *bun.DB
	eng *engine.Engine
	clk *clock.Virtual
	rng *rand.Rand
	sc  *scenarios.Scenario
	o   Options
	pks []int64
}

func (b *behaviour) props(pk int64) map[string]any {
	return map[string]any{"cart_token": "cart-" + strconv.FormatInt(pk, 10), "value": 4200, "currency": "EUR",
		"recovery_url": "https://store.example/cart", "program": b.sc.ID, "machine": false,
		"segment_id": b.sc.Trigger.Segment, "to": "AT_RISK", "from": "ACTIVE"}
}

func (b *behaviour) event(ctx context.Context, pk int64, typ string) error {
	now := b.clk.Now()
	_, _, err := customer.AppendEvent(ctx, b.db, now, pk, customer.EventInput{Type: typ, OccurredAt: now, Source: "simulation", Properties: b.props(pk)})
	return err
}

func (b *behaviour) day(ctx context.Context, d int) error {
	dayStart := b.o.Start.Add(time.Duration(d) * 24 * time.Hour)
	if err := b.eng.RunUntil(ctx, b.clk.Set, dayStart.Add(9*time.Hour)); err != nil {
		return err
	}
	t := b.sc.Trigger
	switch t.Kind {
	case scenarios.TriggerManual:
		if d == 0 {
			for _, pk := range b.pks {
				if _, err := b.eng.Enroll(ctx, b.db, b.sc.ID, pk); err != nil && !isNotEligible(err) {
					return err
				}
			}
		}
	case scenarios.TriggerEvent, scenarios.TriggerSegment:
		typ := "segment.entered"
		if t.Kind == scenarios.TriggerEvent {
			typ = t.Events[0]
		}
		// About one customer in Days fires the trigger each day.
		for _, pk := range b.pks {
			if b.rng.Float64() < 1/float64(b.o.Days) {
				if err := b.event(ctx, pk, typ); err != nil {
					return err
				}
			}
		}
	}
	// Enrolled customers react: each event the scenario listens to, now and then.
	var listened []string
	for _, m := range b.sc.ExitOn {
		listened = append(listened, m.Event)
	}
	if b.sc.Goal != nil {
		listened = append(listened, b.sc.Goal.Event)
	}
	scenarios.Walk(b.sc.Steps, func(s *scenarios.Step) {
		if s.Kind == scenarios.StepWaitFor {
			listened = append(listened, s.WaitEvent.Event)
		}
	})
	// The world reacts to mail: only customers who were sent something
	// react (and the holdouts, the baseline they are measured against),
	// and only with events the world emits. A goal the world has no source
	// for (an event of the store's own) is never counted.
	var enrolled []int64
	if err := b.db.NewSelect().Model((*engine.Enrollment)(nil)).Column("customer_id").
		Where("state = ? OR (state <> ? AND goal_at IS NULL AND EXISTS (SELECT 1 FROM step_runs r WHERE r.enrollment_id = enrollment.id AND r.outcome = ?))",
			engine.StateHoldout, engine.StateHoldout, "sent").
		Scan(ctx, &enrolled); err != nil {
		return fmt.Errorf("list enrolled customers: %w", err)
	}
	b.clk.Set(dayStart.Add(14 * time.Hour))
	for _, pk := range enrolled {
		for _, typ := range listened {
			if !WorldEvents[typ] {
				continue
			}
			if b.rng.Float64() < b.o.ReactionRate {
				if err := b.event(ctx, pk, typ); err != nil {
					return err
				}
			}
		}
	}
	return b.eng.RunUntil(ctx, b.clk.Set, dayStart.Add(24*time.Hour-time.Second))
}

// WorldEvents are the customer events the simulated world emits in
// reaction to mail: the store (orders, carts, visits), the mailbox
// provider (opens, clicks, unsubscribes) and the survey page.
var WorldEvents = map[string]bool{
	"order.created": true, "cart.converted": true, "page.viewed": true, "session.started": true,
	"email.opened": true, "email.clicked": true, "email.unsubscribed": true, "survey.answered": true,
}

func isNotEligible(err error) bool {
	return err != nil && errors.Is(err, engine.ErrNotEligible)
}

// report sums the simulation's enrollments and step runs.
func report(ctx context.Context, db *bun.DB, sc *scenarios.Scenario, o Options) (*Report, error) {
	r := &Report{Scenario: sc.ID, Customers: o.Customers}
	for d := 0; d < o.Days; d++ {
		r.Days = append(r.Days, Day{Day: d, Date: o.Start.AddDate(0, 0, d).Format("2006-01-02")})
	}
	dayOf := func(t time.Time) int {
		d := int(t.Sub(o.Start) / (24 * time.Hour))
		if t.Before(o.Start) || d >= o.Days {
			return -1
		}
		return d
	}
	var ens []*engine.Enrollment
	if err := db.NewSelect().Model(&ens).Scan(ctx); err != nil {
		return nil, fmt.Errorf("read enrollments: %w", err)
	}
	steps := map[string]*Step{}
	var order []string
	scenarios.Walk(sc.Steps, func(s *scenarios.Step) {
		steps[s.ID] = &Step{ID: s.ID, Kind: string(s.Kind)}
		order = append(order, s.ID)
	})
	for _, en := range ens {
		if d := dayOf(en.EnteredAt); d >= 0 {
			if en.Holdout {
				r.Days[d].Holdouts++
			} else {
				r.Days[d].Entries++
			}
		}
		if en.State == engine.StateExited && en.FinishedAt != nil {
			if d := dayOf(*en.FinishedAt); d >= 0 {
				r.Days[d].Exits++
			}
			if st := steps[en.Step]; st != nil {
				st.Exits++
			}
		}
		if en.GoalAt != nil {
			if d := dayOf(*en.GoalAt); d >= 0 {
				r.Days[d].Goals++
			}
		}
	}
	var runs []*engine.StepRun
	if err := db.NewSelect().Model(&runs).Scan(ctx); err != nil {
		return nil, fmt.Errorf("read step runs: %w", err)
	}
	for _, sr := range runs {
		st := steps[sr.Step]
		if st == nil {
			continue
		}
		st.Runs++
		d := dayOf(sr.RanAt)
		switch {
		case sr.Outcome == "sent":
			st.Sends++
			if d >= 0 {
				r.Days[d].Sends++
			}
		case sr.Kind == string(scenarios.StepDeleteProfile) && sr.Outcome == "deleted":
			st.Deletions++
			if d >= 0 {
				r.Days[d].Deletions++
			}
		}
	}
	touched := map[int64]bool{}
	byID := map[int64]int64{}
	for _, en := range ens {
		byID[en.ID] = en.CustomerPK
	}
	for _, sr := range runs {
		if sr.Outcome == "sent" || sr.Outcome == "deleted" {
			touched[byID[sr.EnrollmentID]] = true
		}
	}
	r.Touched = len(touched)
	for _, id := range order {
		r.Steps = append(r.Steps, *steps[id])
	}
	for _, d := range r.Days {
		r.Total.Entries += d.Entries
		r.Total.Holdouts += d.Holdouts
		r.Total.Sends += d.Sends
		r.Total.Exits += d.Exits
		r.Total.Goals += d.Goals
		r.Total.Deletions += d.Deletions
	}
	sort.SliceStable(r.Days, func(i, j int) bool { return r.Days[i].Day < r.Days[j].Day })
	return r, nil
}
