package campaign

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/pressure"
	"github.com/refrain-dev/refrain/scenarios"
	"github.com/refrain-dev/refrain/scenarios/engine"
)

// Forecaster projects the marketing load day by day.
type Forecaster struct {
	DB        *bun.DB
	Campaigns *Service
	Scenarios *engine.Engine
}

// ProgramDay is one program's load on one day.
type ProgramDay struct {
	Program string
	// Planned are the known sends due that day before the policy; Sends
	// those the policy lets go that day (deferred ones included);
	// Deferred and Skipped the policy's decisions that day.
	Planned, Sends, Deferred, Skipped int
	// Expected are the sends of new entries expected from the trigger
	// rates of the last four weeks (not known per customer, so not weighed
	// by the policy).
	Expected float64
}

// Day is one day of a forecast.
type Day struct {
	// Date is the day's start, UTC.
	Date time.Time
	// Sends are the known sends after the policy, Expected the expected
	// sends of new entries.
	Sends    int
	Expected float64
	// Campaigns, Scenarios and Yearly split the known planned sends by source.
	Campaigns, Scenarios, Yearly int
	// OverCap counts the customers whose planned sends that day would
	// break the cap of their rolling window, before the policy.
	OverCap  int
	Programs []*ProgramDay
}

// Forecast is the projection of a period.
type Forecast struct {
	From, To time.Time
	Days     []*Day
}

type plannedSend struct {
	at       time.Time
	program  string
	campaign string
	priority int
	override *pressure.Override
	source   int // 0 campaign, 1 scenario, 2 yearly
	// first is when the message was first deferred, key its idempotency key.
	first time.Time
	key   string
	// sc and step continue a scenario after this send (skipped or not).
	sc   *scenarios.Scenario
	step string
	// seq orders sends due at the same time as the workers take them:
	// enrollments by id, then campaigns.
	seq int64
}

type customerPlan struct {
	zone *string
	sent []time.Time
	// plans are every known send at its planned time (before the policy);
	// queue the campaign sends and the next send of each enrollment,
	// whose following ones the simulation plans as it goes.
	plans []plannedSend
	queue []plannedSend
}

const (
	srcCampaign = iota
	srcScenario
	srcYearly
)

// maxChain bounds the steps followed from one position.
const maxChain = 64

// sendsFrom lists the sends an enrollment makes from step id, reached at
// t, until to: waits are waited, wait_for takes its timeout branch, if
// its then branch, split its first variant.
func sendsFrom(sc *scenarios.Scenario, id string, t, to time.Time, loc *time.Location) []time.Time {
	idx := sc.Index()
	var out []time.Time
	for i := 0; i < maxChain && id != "" && t.Before(to); i++ {
		st := idx[id]
		if st == nil {
			break
		}
		if st.Kind == scenarios.StepSend && st.Message == scenarios.Marketing {
			out = append(out, t)
		}
		t, id = follow(st, t, loc)
	}
	return out
}

// walk finds the first marketing send from step id reached at t: its time
// and step, following the branches sendsFrom follows.
func walk(sc *scenarios.Scenario, id string, t, to time.Time, loc *time.Location) (time.Time, string, bool) {
	idx := sc.Index()
	for i := 0; i < maxChain && id != "" && t.Before(to); i++ {
		st := idx[id]
		if st == nil {
			break
		}
		if st.Kind == scenarios.StepSend && st.Message == scenarios.Marketing {
			return t, st.ID, true
		}
		t, id = follow(st, t, loc)
	}
	return time.Time{}, "", false
}

// follow passes step st, reached at t in zone loc: the time it is left
// (waits as the engine waits them) and the next step, on the branches the
// forecast assumes.
func follow(st *scenarios.Step, t time.Time, loc *time.Location) (time.Time, string) {
	next := st.Next
	switch st.Kind {
	case scenarios.StepWait:
		t = t.Add(st.Duration)
		if st.Until != nil {
			t = engine.NextLocal(t, *st.Until, st.Weekdays, loc)
		}
	case scenarios.StepWaitFor:
		t = t.Add(st.Timeout)
		next = firstOr(st.OnTimeout, next)
	case scenarios.StepIf:
		next = firstOr(st.Then, next)
	case scenarios.StepSplit:
		if len(st.Variants) > 0 {
			next = firstOr(st.Variants[0].Steps, next)
		}
	case scenarios.StepExit, scenarios.StepDeleteProfile:
		next = ""
	}
	return t, next
}

func firstOr(list []*scenarios.Step, next string) string {
	if len(list) > 0 {
		return list[0].ID
	}
	return next
}

// Forecast projects [from, to) day by day: the sends of scheduled
// campaigns, waiting enrollments and yearly programs, per customer and
// weighed by the pressure policy, and the sends expected from new entries
// at the last four weeks' rates. segment, when set, keeps its customers only.
func (f *Forecaster) Forecast(ctx context.Context, from, to time.Time, segment string) (*Forecast, error) {
	from, to = from.UTC(), to.UTC()
	if !to.After(from) {
		return nil, fmt.Errorf("to %s: want after from %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	if to.Sub(from) > 2*366*24*time.Hour {
		return nil, fmt.Errorf("from %s to %s: the forecast covers at most two years", from.Format(time.DateOnly), to.Format(time.DateOnly))
	}
	s := f.Campaigns
	policy := s.o.Policy
	db := f.DB
	segWhere, segArgs := "", []any(nil)
	if segment != "" {
		w, args, err := s.where(ctx, db, segment)
		if err != nil {
			return nil, fmt.Errorf("segment: %w", err)
		}
		segWhere, segArgs = w, args
	}
	inSegment := func(q *bun.SelectQuery, col string) *bun.SelectQuery {
		if segWhere == "" {
			return q
		}
		return q.Where(col+" IN (SELECT c.id FROM customers AS c WHERE "+segWhere+")", segArgs...)
	}
	plans := map[int64]*customerPlan{}
	plan := func(pk int64, zone *string) *customerPlan {
		p := plans[pk]
		if p == nil {
			p = &customerPlan{zone: zone}
			plans[pk] = p
		}
		if zone != nil {
			p.zone = zone
		}
		return p
	}
	type idZone struct {
		PK   int64   `bun:"id"`
		Zone *string `bun:"time_zone"`
	}

	// Scheduled campaigns, and what started ones have left.
	var cs []*Campaign
	if err := db.NewSelect().Model(&cs).Where("status IN (?)", bun.In([]Status{StatusScheduled, StatusSending, StatusPaused})).
		Where("scheduled_at < ?", to.Add(maxZoneOffset)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("forecast: campaigns: %w", err)
	}
	audiences := map[string][]idZone{}
	for _, c := range cs {
		var rows []idZone
		if c.AudienceFixed {
			q := db.NewSelect().TableExpr("campaign_recipients AS r").Join("JOIN customers AS c ON c.id = r.customer_id").
				ColumnExpr("c.id, c.time_zone").Where("r.campaign_id = ? AND r.state IN ('pending', 'held')", c.ID)
			if err := inSegment(q, "c.id").Scan(ctx, &rows); err != nil {
				return nil, fmt.Errorf("forecast: recipients of campaign %s: %w", c.ID, err)
			}
		} else if cached, ok := audiences[c.Audience]; ok {
			// Campaigns to the same audience read it once.
			rows = cached
		} else {
			w, args, err := s.where(ctx, db, c.Audience)
			if err != nil {
				return nil, err
			}
			q := db.NewSelect().TableExpr("customers AS c").ColumnExpr("c.id, c.time_zone").Where(w, args...)
			if err := inSegment(q, "c.id").Scan(ctx, &rows); err != nil {
				return nil, fmt.Errorf("forecast: audience of campaign %s: %w", c.ID, err)
			}
			audiences[c.Audience] = rows
		}
		o := c.Pressure
		for _, r := range rows {
			at := s.LocalDue(c, policy.Location(r.Zone))
			if at.Before(from) {
				at = from
			}
			if !at.Before(to) {
				continue
			}
			p := plan(r.PK, r.Zone)
			ps := plannedSend{at: at, program: c.Program, campaign: c.ID, priority: c.Priority, override: &o,
				source: srcCampaign, key: Key(c.ID, r.PK), seq: 1 << 62}
			p.plans = append(p.plans, ps)
			p.queue = append(p.queue, ps)
		}
	}

	// Messages deferred before the period keep their first deferral.
	var firsts []struct {
		Key string    `bun:"message_key"`
		At  time.Time `bun:"at"`
	}
	if err := db.NewSelect().Table("pressure_decisions").ColumnExpr("message_key, min(at) AS at").
		Where("decision = ? AND at > ? AND at <= ?", pressure.Deferred, from.Add(-31*24*time.Hour), from).
		Group("message_key").Scan(ctx, &firsts); err != nil {
		return nil, fmt.Errorf("forecast: deferrals: %w", err)
	}
	firstDue := make(map[string]time.Time, len(firsts))
	for _, d := range firsts {
		firstDue[d.Key] = d.At
	}
	for _, p := range plans {
		for i := range p.queue {
			p.queue[i].first = firstDue[p.queue[i].key]
		}
	}

	// Waiting enrollments, followed step by step.
	var ens []struct {
		EID     int64     `bun:"id"`
		PK      int64     `bun:"customer_id"`
		Zone    *string   `bun:"time_zone"`
		ID      string    `bun:"scenario_id"`
		Version int       `bun:"version"`
		Step    string    `bun:"step"`
		Next    time.Time `bun:"next_run_at"`
	}
	q := db.NewSelect().TableExpr("enrollments AS e").Join("JOIN customers AS c ON c.id = e.customer_id").
		Join("JOIN scenarios AS s ON s.id = e.scenario_id").
		ColumnExpr("e.id, e.customer_id, c.time_zone, e.scenario_id, e.version, e.step, e.next_run_at").
		Where("e.state = 'active' AND s.status = 'ACTIVE' AND e.next_run_at IS NOT NULL AND e.next_run_at < ?", to)
	if err := inSegment(q, "e.customer_id").Scan(ctx, &ens); err != nil {
		return nil, fmt.Errorf("forecast: enrollments: %w", err)
	}
	for _, en := range ens {
		sc, err := f.Scenarios.Compiled(ctx, db, en.ID, en.Version)
		if err != nil {
			return nil, err
		}
		at := en.Next
		if at.Before(from) {
			at = from
		}
		p := plan(en.PK, en.Zone)
		loc := policy.Location(en.Zone)
		// A waiting step ends at next_run_at: go on from the step after it.
		step := en.Step
		if st := sc.Index()[step]; st != nil && en.Next.After(from) {
			switch st.Kind {
			case scenarios.StepWait:
				step = st.Next
			case scenarios.StepWaitFor:
				step = firstOr(st.OnTimeout, st.Next)
			}
		}
		for _, t := range sendsFrom(sc, step, at, to, loc) {
			p.plans = append(p.plans, plannedSend{at: t, program: sc.ID, priority: sc.Priority, source: srcScenario})
		}
		if t, step, ok := walk(sc, step, at, to, loc); ok {
			ps := plannedSend{at: t, program: sc.ID, priority: sc.Priority, source: srcScenario, sc: sc, step: step, seq: en.EID}
			if t.Equal(at) {
				ps.first = firstDue[fmt.Sprintf("scenario:%d:%s:1", en.EID, en.Step)]
			}
			p.queue = append(p.queue, ps)
		}
	}

	// Yearly programs and the entry rates of the others.
	rows, err := engine.ListScenarios(ctx, db)
	if err != nil {
		return nil, err
	}
	days := int((to.Sub(from) + 24*time.Hour - 1) / (24 * time.Hour))
	fc := &Forecast{From: from, To: to, Days: make([]*Day, days)}
	for i := range fc.Days {
		fc.Days[i] = &Day{Date: from.Truncate(24*time.Hour).AddDate(0, 0, i)}
	}
	dayOf := func(t time.Time) int { return int(t.Sub(fc.Days[0].Date) / (24 * time.Hour)) }
	programs := map[string]map[int]*ProgramDay{}
	pday := func(program string, d int) *ProgramDay {
		m := programs[program]
		if m == nil {
			m = map[int]*ProgramDay{}
			programs[program] = m
		}
		pd := m[d]
		if pd == nil {
			pd = &ProgramDay{Program: program}
			m[d] = pd
		}
		return pd
	}
	share := 1.0
	if segment != "" {
		all, err := s.AudienceCount(ctx, db, "all")
		if err != nil {
			return nil, err
		}
		in, err := s.AudienceCount(ctx, db, segment)
		if err != nil {
			return nil, err
		}
		if all > 0 {
			share = float64(in) / float64(all)
		}
	}
	var entries []struct {
		ID string `bun:"scenario_id"`
		N  int    `bun:"n"`
	}
	if err := db.NewSelect().TableExpr("enrollments").ColumnExpr("scenario_id, count(*) AS n").
		Where("entered_at >= ? AND entered_at < ?", from.Add(-28*24*time.Hour), from).Group("scenario_id").Scan(ctx, &entries); err != nil {
		return nil, fmt.Errorf("forecast: entry rates: %w", err)
	}
	rate := map[string]float64{}
	for _, e := range entries {
		rate[e.ID] = float64(e.N) / 28 * share
	}
	for _, row := range rows {
		if row.Status != engine.StatusActive {
			continue
		}
		sc, err := f.Scenarios.Compiled(ctx, db, row.ID, row.Version)
		if err != nil {
			return nil, err
		}
		if len(sc.Steps) == 0 {
			continue
		}
		switch sc.Trigger.Kind {
		case scenarios.TriggerYearly:
			if err := f.yearly(ctx, sc, from, to, plan, inSegment); err != nil {
				return nil, err
			}
		case scenarios.TriggerEvent, scenarios.TriggerSegment:
			r := rate[sc.ID]
			if r == 0 {
				continue
			}
			// One entry a day at midnight: its sends, by day offset.
			offsets := sendsFrom(sc, sc.Steps[0].ID, time.Time{}, time.Time{}.Add(time.Duration(days)*24*time.Hour), time.UTC)
			for d := range fc.Days {
				for _, o := range offsets {
					od := d + int(o.Sub(time.Time{})/(24*time.Hour))
					if od < days {
						pday(sc.ID, od).Expected += r
						fc.Days[od].Expected += r
					}
				}
			}
		}
	}

	// What the customers already got in the window before the period.
	window := policy.Default.Window
	for _, o := range policy.Programs {
		if o.Window != nil && *o.Window > window {
			window = *o.Window
		}
	}
	if len(plans) > 0 {
		var sent []struct {
			PK int64     `bun:"customer_id"`
			At time.Time `bun:"created_at"`
		}
		q := db.NewSelect().Table("messages").Column("customer_id", "created_at").Where("kind = 'marketing'").
			Where("created_at > ? AND created_at <= ?", from.Add(-window), from).Where("state NOT IN ('failed', 'suppressed')").
			Where("customer_id IS NOT NULL")
		if err := q.Scan(ctx, &sent); err != nil {
			return nil, fmt.Errorf("forecast: recent messages: %w", err)
		}
		for _, m := range sent {
			if p := plans[m.PK]; p != nil {
				p.sent = append(p.sent, m.At)
			}
		}
	}

	// The policy, customer by customer.
	for _, p := range plans {
		simulate(p, policy, from, to, func(kind string, ps plannedSend, at time.Time) {
			d := dayOf(at)
			if d < 0 || d >= days {
				return
			}
			pd := pday(ps.program, d)
			switch kind {
			case "planned":
				pd.Planned++
				switch ps.source {
				case srcCampaign:
					fc.Days[d].Campaigns++
				case srcScenario:
					fc.Days[d].Scenarios++
				default:
					fc.Days[d].Yearly++
				}
			case "send":
				pd.Sends++
				fc.Days[d].Sends++
			case "defer":
				pd.Deferred++
			case "skip":
				pd.Skipped++
			case "overcap":
				fc.Days[d].OverCap++
			}
		})
	}
	for d, day := range fc.Days {
		for _, m := range programs {
			if pd := m[d]; pd != nil {
				day.Programs = append(day.Programs, pd)
			}
		}
		sort.Slice(day.Programs, func(i, j int) bool { return day.Programs[i].Program < day.Programs[j].Program })
	}
	return fc, nil
}

// yearly plans a yearly program's sends for its customers in [from, to).
func (f *Forecaster) yearly(ctx context.Context, sc *scenarios.Scenario, from, to time.Time, plan func(int64, *string) *customerPlan,
	inSegment func(*bun.SelectQuery, string) *bun.SelectQuery) error {
	policy := f.Campaigns.o.Policy
	field := sc.Trigger.Field
	var rows []struct {
		PK   int64      `bun:"id"`
		Zone *string    `bun:"time_zone"`
		At   *time.Time `bun:"at"`
	}
	q := f.DB.NewSelect().TableExpr("customers AS c").ColumnExpr("c.id, c.time_zone").Where(baseWhere)
	switch {
	case sc.Trigger.StoreAnniversary:
		q = q.ColumnExpr("NULL AS at")
	case field == "first_order_at" || field == "created_at":
		q = q.ColumnExpr("c." + field + " AS at").Where("c." + field + " IS NOT NULL")
	default:
		return nil
	}
	if err := inSegment(q, "c.id").Scan(ctx, &rows); err != nil {
		return fmt.Errorf("forecast: customers of %s: %w", sc.ID, err)
	}
	store := f.Scenarios.StoreAnniversary()
	for _, r := range rows {
		md := store
		var origin time.Time
		if r.At != nil {
			origin = r.At.UTC()
			md = origin.Format("01-02")
		}
		if md == "" {
			continue
		}
		for y := from.Year(); y <= to.Year(); y++ {
			day, err := time.Parse("2006-01-02", fmt.Sprintf("%d-%s", y, md))
			if err != nil || (!origin.IsZero() && y <= origin.Year()) {
				continue
			}
			if day.Add(24*time.Hour).Before(from) || !day.Before(to) {
				continue
			}
			loc := policy.Location(r.Zone)
			for _, t := range sendsFrom(sc, sc.Steps[0].ID, day, to, loc) {
				if !t.Before(from) {
					p := plan(r.PK, r.Zone)
					p.plans = append(p.plans, plannedSend{at: t, program: sc.ID, priority: sc.Priority, source: srcYearly})
				}
			}
			if t, step, ok := walk(sc, sc.Steps[0].ID, day, to, loc); ok && !t.Before(from) {
				p := plan(r.PK, r.Zone)
				p.queue = append(p.queue, plannedSend{at: t, program: sc.ID, priority: sc.Priority, source: srcYearly, sc: sc, step: step, seq: 1 << 61})
			}
		}
	}
	return nil
}

// simulate runs the policy over one customer's planned sends in time
// order, as the engine and the campaign sender would, and reports each
// planned send, send, deferral, skip and day over the cap.
func simulate(p *customerPlan, policy *pressure.Policy, from, to time.Time, report func(kind string, ps plannedSend, at time.Time)) {
	sort.Slice(p.plans, func(i, j int) bool {
		if !p.plans[i].at.Equal(p.plans[j].at) {
			return p.plans[i].at.Before(p.plans[j].at)
		}
		return p.plans[i].priority > p.plans[j].priority
	})
	loc := policy.Location(p.zone)
	// Before the policy: days on which the planned load breaks the cap.
	all := append(append([]time.Time(nil), p.sent...), make([]time.Time, 0, len(p.plans))...)
	for _, ps := range p.plans {
		all = append(all, ps.at)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Before(all[j]) })
	lastOver := -1
	lo := 0
	rules := policy.Default
	for i, t := range all {
		for all[lo].Add(rules.Window).Before(t) || all[lo].Add(rules.Window).Equal(t) {
			lo++
		}
		if rules.Cap > 0 && i-lo+1 > rules.Cap && !t.Before(from) {
			d := int(t.Sub(from.Truncate(24*time.Hour)) / (24 * time.Hour))
			if d != lastOver {
				report("overcap", plannedSend{}, t)
				lastOver = d
			}
		}
	}
	for _, ps := range p.plans {
		report("planned", ps, ps.at)
	}
	// The policy, with deferrals and the following steps put in order.
	queue := p.queue
	less := func(a, b plannedSend) bool {
		if !a.at.Equal(b.at) {
			return a.at.Before(b.at)
		}
		return a.seq < b.seq
	}
	sort.SliceStable(queue, func(i, j int) bool { return less(queue[i], queue[j]) })
	push := func(ps plannedSend) {
		i := sort.Search(len(queue), func(i int) bool { return less(ps, queue[i]) })
		queue = append(queue[:i], append([]plannedSend{ps}, queue[i:]...)...)
	}
	for len(queue) > 0 {
		ps := queue[0]
		queue = queue[1:]
		if !ps.at.Before(to) {
			continue
		}
		if ps.first.IsZero() {
			ps.first = ps.at
		}
		r := policy.RulesFor(ps.program, ps.override)
		var reserved []pressure.Reservation
		if ps.campaign == "" && r.OnCapped != pressure.OnCappedOverride {
			for _, o := range queue {
				if o.campaign != "" && o.priority > ps.priority && o.at.After(ps.at) && !o.at.After(ps.at.Add(r.Window)) {
					reserved = append(reserved, pressure.Reservation{At: o.at, Campaign: o.campaign, Priority: o.priority})
				}
			}
		}
		recent := p.sent[:0:0]
		for _, t := range p.sent {
			if t.After(ps.at.Add(-r.Window)) {
				recent = append(recent, t)
			}
		}
		p.sent = recent
		res := pressure.Evaluate(r, ps.at, loc, p.sent, ps.first, reserved)
		switch res.Decision {
		case pressure.Send, pressure.Overridden:
			p.sent = append(p.sent, ps.at)
			report("send", ps, ps.at)
		case pressure.Deferred:
			report("defer", ps, ps.at)
			ps.at = res.Until
			push(ps)
			continue
		default:
			report("skip", ps, ps.at)
		}
		if ps.sc != nil {
			if st := ps.sc.Index()[ps.step]; st != nil {
				if t, step, ok := walk(ps.sc, st.Next, ps.at, to, loc); ok {
					push(plannedSend{at: t, program: ps.program, priority: ps.priority, source: ps.source, sc: ps.sc, step: step, seq: ps.seq})
				}
			}
		}
	}
}

// Warnings tells, for a campaign being scheduled, the days in its window
// on which it pushes customers over the cap, and the other campaigns
// scheduled the same day whose audiences overlap it.
func (f *Forecaster) Warnings(ctx context.Context, c *Campaign) ([]string, error) {
	if c.ScheduledAt == nil {
		return nil, nil
	}
	s := f.Campaigns
	day := c.ScheduledAt.UTC().Truncate(24 * time.Hour)
	fc, err := f.Forecast(ctx, day, day.Add(s.o.Policy.RulesFor(c.Program, &c.Pressure).Window), c.Audience)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range fc.Days {
		if d.OverCap > 0 {
			out = append(out, fmt.Sprintf("%s: %d customers of the audience over the cap of %d in %dd",
				d.Date.Format(time.DateOnly), d.OverCap, s.o.Policy.Default.Cap, int(s.o.Policy.Default.Window/(24*time.Hour))))
		}
	}
	var others []*Campaign
	if err := f.DB.NewSelect().Model(&others).Where("id <> ? AND status IN (?)", c.ID, bun.In([]Status{StatusScheduled, StatusSending, StatusPaused})).
		Where("scheduled_at >= ? AND scheduled_at < ?", day, day.Add(24*time.Hour)).Order("scheduled_at", "id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("overlapping campaigns: %w", err)
	}
	w1, a1, err := s.where(ctx, f.DB, c.Audience)
	if err != nil {
		return nil, err
	}
	for _, o := range others {
		w2, a2, err := s.where(ctx, f.DB, o.Audience)
		if err != nil {
			return nil, err
		}
		n, err := f.DB.NewSelect().TableExpr("customers AS c").Where(w1, a1...).Where(w2, a2...).Count(ctx)
		if err != nil {
			return nil, fmt.Errorf("overlap with campaign %s: %w", o.ID, err)
		}
		if n > 0 {
			out = append(out, fmt.Sprintf("%s: campaign %s (%s, priority %d) reaches %d of the same customers the same day",
				day.Format(time.DateOnly), o.ID, strings.TrimSpace(o.Name), o.Priority, n))
		}
	}
	return out, nil
}
