package campaign

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sort"
	"strings"
	"sync"
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
	// PerCustomer simulates every customer on their own instead of once
	// per cohort of identical customers: the same result, slower (the
	// tests compare the two).
	PerCustomer bool
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
	// Customers are the customers with known sends or enrollments,
	// Cohorts the distinct plans among them: the policy is simulated once
	// per cohort.
	Customers, Cohorts int
}

// fscen is a scenario as the forecast follows it: its steps by id, its
// program and its rules, looked up once.
type fscen struct {
	sc    *scenarios.Scenario
	idx   map[string]*scenarios.Step
	prog  int32
	rules pressure.Rules
}

type plannedSend struct {
	at time.Time
	// first is when the message was first deferred (zero if never).
	first time.Time
	rules *pressure.Rules
	// campaign is the campaign id, empty for scenario steps.
	campaign string
	// sc and step continue a scenario after this send (skipped or not).
	sc   *fscen
	step string
	// seq orders sends due at the same time as the workers take them:
	// enrollments in id order, then yearly programs, then campaigns.
	seq      int64
	priority int
	prog     int32
	source   int8
}

// customerPlan is what the policy weighs for one customer (or one
// cohort of identical customers).
type customerPlan struct {
	loc  *time.Location
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

// sendsFrom calls each with the time of every marketing send an
// enrollment makes from step id, reached at t, until to: waits are
// waited, wait_for takes its timeout branch, if its then branch, split its
// first variant.
func sendsFrom(fs *fscen, id string, t, to time.Time, loc *time.Location, each func(time.Time)) {
	for i := 0; i < maxChain && id != "" && t.Before(to); i++ {
		st := fs.idx[id]
		if st == nil {
			break
		}
		if st.Kind == scenarios.StepSend && st.Message == scenarios.Marketing {
			each(t)
		}
		t, id = follow(st, t, loc)
	}
}

// walk finds the first marketing send from step id reached at t: its time
// and step, following the branches sendsFrom follows.
func walk(fs *fscen, id string, t, to time.Time, loc *time.Location) (time.Time, string, bool) {
	for i := 0; i < maxChain && id != "" && t.Before(to); i++ {
		st := fs.idx[id]
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

// fcust is what the forecast knows of one customer, compactly: times are
// Unix nanoseconds (0 for none), campaigns a bit set over the campaigns
// read, scenarios an index into the builder's.
type fcust struct {
	zone   int32
	camps  []uint64
	cfirst []ciAt
	ens    []fenroll
	yearly []fyear
	sent   []int64
}

type ciAt struct {
	ci int32
	at int64
}

type fenroll struct {
	eid         int64
	sc          int32
	step        string
	next, first int64
}

type fyear struct {
	sc  int32
	day int64
}

// builder gathers the customers of a forecast and plans them.
type builder struct {
	f        *Forecaster
	policy   *pressure.Policy
	from, to time.Time

	pks   []int64
	custs []fcust
	byPK  map[int64]int32
	zones map[string]int32
	locs  []*time.Location

	cs     []*Campaign
	crules []pressure.Rules
	cprog  []int32
	// dues are each campaign's due time by zone, from at the earliest.
	dues [][]time.Time
	// storeDate is the store's anniversary (in 2000), zero if none.
	storeDate time.Time

	scens  []*fscen
	scByID map[scKey]int32

	progs map[string]int32
	names []string
}

type scKey struct {
	id      string
	version int
}

func unixOr0(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnix(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// customer returns the index of customer pk, adding it.
func (b *builder) customer(pk int64, zone *string) int32 {
	if i, ok := b.byPK[pk]; ok {
		return i
	}
	name := ""
	if zone != nil {
		name = *zone
	}
	z, ok := b.zones[name]
	if !ok {
		z = int32(len(b.locs))
		b.zones[name] = z
		if name == "" {
			b.locs = append(b.locs, b.policy.Location(nil))
		} else {
			b.locs = append(b.locs, b.policy.Location(&name))
		}
	}
	i := int32(len(b.custs))
	b.byPK[pk] = i
	b.pks = append(b.pks, pk)
	b.custs = append(b.custs, fcust{zone: z})
	return i
}

func (b *builder) program(name string) int32 {
	if i, ok := b.progs[name]; ok {
		return i
	}
	i := int32(len(b.names))
	b.progs[name] = i
	b.names = append(b.names, name)
	return i
}

// scenario returns the index of a scenario version, compiling it once.
func (b *builder) scenario(ctx context.Context, id string, version int) (int32, error) {
	k := scKey{id, version}
	if i, ok := b.scByID[k]; ok {
		return i, nil
	}
	sc, err := b.f.Scenarios.Compiled(ctx, b.f.DB, id, version)
	if err != nil {
		return 0, err
	}
	i := int32(len(b.scens))
	b.scens = append(b.scens, &fscen{sc: sc, idx: sc.Index(), prog: b.program(sc.ID), rules: b.policy.RulesFor(sc.ID, nil)})
	b.scByID[k] = i
	return i, nil
}

// key appends what makes customer c behave as it does: two customers with
// the same key get the same plan, so the same decisions.
func (b *builder) key(buf []byte, c *fcust) []byte {
	buf = binary.AppendUvarint(buf, uint64(c.zone))
	buf = binary.AppendUvarint(buf, uint64(len(c.camps)))
	for _, w := range c.camps {
		buf = binary.AppendUvarint(buf, w)
	}
	buf = binary.AppendUvarint(buf, uint64(len(c.cfirst)))
	for _, f := range c.cfirst {
		buf = binary.AppendUvarint(buf, uint64(f.ci))
		buf = binary.AppendVarint(buf, f.at)
	}
	buf = binary.AppendUvarint(buf, uint64(len(c.ens)))
	for _, e := range c.ens {
		buf = binary.AppendUvarint(buf, uint64(e.sc))
		buf = binary.AppendUvarint(buf, uint64(len(e.step)))
		buf = append(buf, e.step...)
		buf = binary.AppendVarint(buf, e.next)
		buf = binary.AppendVarint(buf, e.first)
	}
	buf = binary.AppendUvarint(buf, uint64(len(c.yearly)))
	for _, y := range c.yearly {
		buf = binary.AppendUvarint(buf, uint64(y.sc))
		buf = binary.AppendVarint(buf, y.day)
	}
	buf = binary.AppendUvarint(buf, uint64(len(c.sent)))
	for _, t := range c.sent {
		buf = binary.AppendVarint(buf, t)
	}
	return buf
}

// plan fills p with customer i's known sends; false if the customer has
// nothing to weigh.
func (b *builder) plan(i int32, p *customerPlan) bool {
	c := &b.custs[i]
	from, to := b.from, b.to
	loc := b.locs[c.zone]
	p.loc = loc
	p.plans, p.queue, p.sent = p.plans[:0], p.queue[:0], p.sent[:0]
	for w, word := range c.camps {
		for word != 0 {
			bit := bits.TrailingZeros64(word)
			word &^= 1 << bit
			ci := int32(w*64 + bit)
			at := b.dues[ci][c.zone]
			if !at.Before(to) {
				continue
			}
			cam := b.cs[ci]
			ps := plannedSend{at: at, rules: &b.crules[ci], campaign: cam.ID, priority: cam.Priority, prog: b.cprog[ci],
				source: srcCampaign, seq: 1 << 62}
			for _, f := range c.cfirst {
				if f.ci == ci {
					ps.first = fromUnix(f.at)
				}
			}
			p.plans = append(p.plans, ps)
			p.queue = append(p.queue, ps)
		}
	}
	for rank, en := range c.ens {
		fs := b.scens[en.sc]
		next := fromUnix(en.next)
		at := next
		if at.Before(from) {
			at = from
		}
		// A waiting step ends at next_run_at: go on from the step after it.
		step := en.step
		if st := fs.idx[step]; st != nil && next.After(from) {
			switch st.Kind {
			case scenarios.StepWait:
				step = st.Next
			case scenarios.StepWaitFor:
				step = firstOr(st.OnTimeout, st.Next)
			}
		}
		sendsFrom(fs, step, at, to, loc, func(t time.Time) {
			p.plans = append(p.plans, plannedSend{at: t, prog: fs.prog, priority: fs.sc.Priority, source: srcScenario})
		})
		if t, step, ok := walk(fs, step, at, to, loc); ok {
			ps := plannedSend{at: t, rules: &fs.rules, prog: fs.prog, priority: fs.sc.Priority, source: srcScenario, sc: fs, step: step, seq: int64(rank)}
			if t.Equal(at) {
				ps.first = fromUnix(en.first)
			}
			p.queue = append(p.queue, ps)
		}
	}
	for _, y := range c.yearly {
		fs := b.scens[y.sc]
		day := fromUnix(y.day)
		first := fs.sc.Steps[0].ID
		sendsFrom(fs, first, day, to, loc, func(t time.Time) {
			if !t.Before(from) {
				p.plans = append(p.plans, plannedSend{at: t, prog: fs.prog, priority: fs.sc.Priority, source: srcYearly})
			}
		})
		if t, step, ok := walk(fs, first, day, to, loc); ok && !t.Before(from) {
			p.queue = append(p.queue, plannedSend{at: t, rules: &fs.rules, prog: fs.prog, priority: fs.sc.Priority, source: srcYearly,
				sc: fs, step: step, seq: 1 << 61})
		}
	}
	for _, t := range c.sent {
		p.sent = append(p.sent, fromUnix(t))
	}
	return len(p.plans) > 0 || len(p.queue) > 0 || len(c.ens) > 0
}

// RangeError is returned for a forecast period the forecaster refuses
// (empty, reversed or longer than two years): the caller can fix it.
type RangeError struct{ Problem string }

func (e *RangeError) Error() string { return e.Problem }

// Forecast projects [from, to) day by day: the sends of scheduled
// campaigns, waiting enrollments and yearly programs, per customer and
// weighed by the pressure policy, and the sends expected from new entries
// at the last four weeks' rates. segment, when set, keeps its customers only.
//
// The reads are set-based, one query per source (audience, enrollments,
// yearly program, recent messages), run side by side and scanned into
// compact rows; each customer is then reduced to a key of what decides
// their plan (time zone, campaigns, enrollments with their step and due
// time, yearly dates, recent sends, earlier deferrals), and the policy is
// simulated once per distinct key, its counts multiplied by the number of
// customers sharing it. Customers with the same key get the same plan, so
// this is exact.
func (f *Forecaster) Forecast(ctx context.Context, from, to time.Time, segment string) (*Forecast, error) {
	from, to = from.UTC(), to.UTC()
	if !to.After(from) {
		return nil, &RangeError{fmt.Sprintf("to %s: want after from %s", to.Format(time.RFC3339), from.Format(time.RFC3339))}
	}
	if to.Sub(from) > 2*366*24*time.Hour {
		return nil, &RangeError{fmt.Sprintf("from %s to %s: the forecast covers at most two years", from.Format(time.DateOnly), to.Format(time.DateOnly))}
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
	b := &builder{f: f, policy: policy, from: from, to: to, byPK: map[int64]int32{}, zones: map[string]int32{},
		scByID: map[scKey]int32{}, progs: map[string]int32{}}
	if md := f.Scenarios.StoreAnniversary(); md != "" {
		b.storeDate, _ = time.Parse("2006-01-02", "2000-"+md)
	}

	// The small reads first: campaigns, earlier deferrals, scenarios and
	// entry rates.
	if err := db.NewSelect().Model(&b.cs).Where("status IN (?)", bun.In([]Status{StatusScheduled, StatusSending, StatusPaused})).
		Where("scheduled_at < ?", to.Add(maxZoneOffset)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("forecast: campaigns: %w", err)
	}
	// Messages deferred before the period keep their first deferral.
	var firsts []struct {
		PK  int64     `bun:"customer_id"`
		Key string    `bun:"message_key"`
		At  time.Time `bun:"at"`
	}
	if err := db.NewSelect().Table("pressure_decisions").ColumnExpr("customer_id, message_key, min(at) AS at").
		Where("decision = ? AND at > ? AND at <= ?", pressure.Deferred, from.Add(-31*24*time.Hour), from).
		Group("customer_id", "message_key").Scan(ctx, &firsts); err != nil {
		return nil, fmt.Errorf("forecast: deferrals: %w", err)
	}
	firstDue := map[int64]map[string]int64{}
	for _, d := range firsts {
		m := firstDue[d.PK]
		if m == nil {
			m = map[string]int64{}
			firstDue[d.PK] = m
		}
		m[d.Key] = unixOr0(d.At)
	}
	rows, err := engine.ListScenarios(ctx, db)
	if err != nil {
		return nil, err
	}
	days := int((to.Sub(from) + 24*time.Hour - 1) / (24 * time.Hour))
	fc := &Forecast{From: from, To: to, Days: make([]*Day, days)}
	for i := range fc.Days {
		fc.Days[i] = &Day{Date: from.Truncate(24*time.Hour).AddDate(0, 0, i)}
	}
	t := &tally{fc: fc, day0: fc.Days[0].Date}
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
	var yearly, rated []int32
	for _, row := range rows {
		if row.Status != engine.StatusActive {
			continue
		}
		si, err := b.scenario(ctx, row.ID, row.Version)
		if err != nil {
			return nil, err
		}
		sc := b.scens[si].sc
		if len(sc.Steps) == 0 {
			continue
		}
		switch sc.Trigger.Kind {
		case scenarios.TriggerYearly:
			yearly = append(yearly, si)
		case scenarios.TriggerEvent, scenarios.TriggerSegment:
			if rate[sc.ID] != 0 {
				rated = append(rated, si)
			}
		}
	}
	for _, c := range b.cs {
		b.crules = append(b.crules, policy.RulesFor(c.Program, &c.Pressure))
		b.cprog = append(b.cprog, b.program(c.Program))
	}

	// The bulk reads, side by side.
	var reads []func(context.Context) error
	// Scheduled campaigns, and what started ones have left. The recipients
	// of started ones are read per campaign; the audiences of the others
	// and the customers of yearly programs in one read of the customers,
	// with a flag per condition.
	fixed := make([]*[]custRow, len(b.cs))
	flagOf := map[string]int{}
	var conds []cond
	for ci, c := range b.cs {
		if !c.AudienceFixed {
			if _, ok := flagOf[c.Audience]; !ok {
				a, err := s.o.Audience(ctx, db, c.Audience)
				if err != nil {
					return nil, fmt.Errorf("audience %q: %w", c.Audience, err)
				}
				w, args := a.Where(db)
				flagOf[c.Audience] = len(conds)
				conds = append(conds, cond{strings.TrimSpace(w), args})
			}
			continue
		}
		m := new([]custRow)
		fixed[ci] = m
		q := db.NewSelect().TableExpr("campaign_recipients AS r").Join("JOIN customers AS c ON c.id = r.customer_id").
			ColumnExpr("c.id, c.time_zone").Where("r.campaign_id = ? AND r.state IN ('pending', 'held')", c.ID)
		q = inSegment(q, "c.id")
		reads = append(reads, func(ctx context.Context) error {
			if err := scanCustomers(ctx, q, m, false); err != nil {
				return fmt.Errorf("forecast: recipients of campaign %s: %w", c.ID, err)
			}
			return nil
		})
	}
	// The customers of yearly programs, with their date.
	yflag := make([]int, len(yearly))
	for i, si := range yearly {
		sc := b.scens[si].sc
		field := sc.Trigger.Field
		switch {
		case sc.Trigger.StoreAnniversary:
			yflag[i] = len(conds)
			conds = append(conds, cond{w: ""})
		case field == "first_order_at" || field == "created_at":
			yflag[i] = len(conds)
			conds = append(conds, cond{w: "c." + field + " IS NOT NULL"})
		default:
			yflag[i] = -1
		}
	}
	batches := make([][]flagRow, (len(conds)+63)/64)
	for k := range batches {
		part := conds[64*k : min(len(conds), 64*k+64)]
		q := db.NewSelect().TableExpr("customers AS c").ColumnExpr("c.id, c.time_zone, c.first_order_at, c.created_at").Where(baseWhere)
		all := false
		for _, c := range part {
			if c.w == "" {
				q = q.ColumnExpr("1")
				all = true
			} else {
				q = q.ColumnExpr("CASE WHEN ("+c.w+") THEN 1 ELSE 0 END", c.args...)
			}
		}
		if !all {
			q = q.WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
				for _, c := range part {
					q = q.WhereOr("("+c.w+")", c.args...)
				}
				return q
			})
		}
		q = inSegment(q, "c.id")
		reads = append(reads, func(ctx context.Context) error {
			if err := scanFlags(ctx, q, len(part), &batches[k]); err != nil {
				return fmt.Errorf("forecast: customers: %w", err)
			}
			return nil
		})
	}
	// Waiting enrollments.
	var ens []enrollRow
	reads = append(reads, func(ctx context.Context) error {
		// Neither the scenario (its status is known) nor the customer (the
		// audiences read most time zones; the others are read after) is
		// joined: the join alone took longer than the read.
		q := db.NewSelect().TableExpr("enrollments AS e").
			ColumnExpr("e.id, e.customer_id, e.scenario_id, e.version, e.step, e.next_run_at").
			Where("e.state = 'active' AND e.next_run_at IS NOT NULL AND e.next_run_at < ?", to)
		if err := scanEnrollments(ctx, inSegment(q, "e.customer_id"), &ens); err != nil {
			return fmt.Errorf("forecast: enrollments: %w", err)
		}
		return nil
	})
	// What the customers already got in the window before the period.
	window := policy.Default.Window
	for _, o := range policy.Programs {
		if o.Window != nil && *o.Window > window {
			window = *o.Window
		}
	}
	var sent []custRow
	reads = append(reads, func(ctx context.Context) error {
		q := db.NewSelect().Table("messages").ColumnExpr("customer_id, NULL AS time_zone, created_at").Where("kind = 'marketing'").
			Where("created_at > ? AND created_at <= ?", from.Add(-window), from).Where("state NOT IN ('failed', 'suppressed')").
			Where("customer_id IS NOT NULL")
		if err := scanCustomers(ctx, q, &sent, true); err != nil {
			return fmt.Errorf("forecast: recent messages: %w", err)
		}
		return nil
	})
	if err := parallel(ctx, 4, reads); err != nil {
		return nil, err
	}

	// The customers, in the order of the reads.
	hint := len(ens)
	for _, rows := range batches {
		hint = max(hint, len(rows))
	}
	b.custs = make([]fcust, 0, hint)
	b.pks = make([]int64, 0, hint)
	b.byPK = make(map[int64]int32, hint)
	words := (len(b.cs) + 63) / 64
	member := func(i int32, ci int) {
		fc := &b.custs[i]
		if fc.camps == nil {
			fc.camps = make([]uint64, words)
		}
		fc.camps[ci/64] |= 1 << (ci % 64)
		if m := firstDue[b.pks[i]]; m != nil {
			if at, ok := m[Key(b.cs[ci].ID, b.pks[i])]; ok {
				fc.cfirst = append(fc.cfirst, ciAt{int32(ci), at})
			}
		}
	}
	// The campaigns and yearly programs of each flag.
	flagCampaigns := make([][]int, len(conds))
	for ci, c := range b.cs {
		if !c.AudienceFixed {
			k := flagOf[c.Audience]
			flagCampaigns[k] = append(flagCampaigns[k], ci)
		}
	}
	flagYearly := make([][]int, len(conds))
	for i, k := range yflag {
		if k >= 0 {
			flagYearly[k] = append(flagYearly[k], i)
		}
	}
	for k, rows := range batches {
		for _, r := range rows {
			i := b.customer(r.pk, r.zone)
			for f := r.flags; f != 0; f &= f - 1 {
				flag := 64*k + bits.TrailingZeros64(f)
				for _, ci := range flagCampaigns[flag] {
					member(i, ci)
				}
			}
		}
	}
	for ci := range b.cs {
		if fixed[ci] != nil {
			for _, r := range *fixed[ci] {
				member(b.customer(r.pk, r.zone), ci)
			}
		}
	}
	for y, si := range yearly {
		k := yflag[y]
		if k < 0 {
			continue
		}
		field := b.scens[si].sc.Trigger.Field
		for _, r := range batches[k/64] {
			if r.flags&(1<<(k%64)) == 0 {
				continue
			}
			at := int64(0)
			switch {
			case b.scens[si].sc.Trigger.StoreAnniversary:
			case field == "first_order_at":
				at = r.firstOrder
			case field == "created_at":
				at = r.created
			}
			b.yearly(si, r.pk, r.zone, at)
		}
	}
	// The time zones of customers known from enrollments only.
	active := map[string]bool{}
	for _, row := range rows {
		active[row.ID] = row.Status == engine.StatusActive
	}
	var missing []int64
	for _, en := range ens {
		if _, ok := b.byPK[en.pk]; !ok && active[en.scenario] {
			missing = append(missing, en.pk)
		}
	}
	slices.Sort(missing)
	missing = slices.Compact(missing)
	for len(missing) > 0 {
		chunk := missing[:min(len(missing), 10000)]
		missing = missing[len(chunk):]
		var found []custRow
		q := db.NewSelect().TableExpr("customers AS c").ColumnExpr("c.id, c.time_zone").Where("c.id IN (?)", bun.In(chunk))
		if err := scanCustomers(ctx, q, &found, false); err != nil {
			return nil, fmt.Errorf("forecast: time zones: %w", err)
		}
		for _, r := range found {
			b.customer(r.pk, r.zone)
		}
	}
	for _, en := range ens {
		i, ok := b.byPK[en.pk]
		if !ok || !active[en.scenario] {
			// A scenario not running, or a customer gone.
			continue
		}
		sc, err := b.scenario(ctx, en.scenario, en.version)
		if err != nil {
			return nil, err
		}
		e := fenroll{eid: en.eid, sc: sc, step: en.step, next: en.next}
		if m := firstDue[en.pk]; m != nil {
			e.first = m[fmt.Sprintf("scenario:%d:%s:1", en.eid, en.step)]
		}
		b.custs[i].ens = append(b.custs[i].ens, e)
	}
	for _, m := range sent {
		if i, ok := b.byPK[m.pk]; ok {
			b.custs[i].sent = append(b.custs[i].sent, m.at)
		}
	}

	// Campaign due times by zone.
	b.dues = make([][]time.Time, len(b.cs))
	for ci, c := range b.cs {
		b.dues[ci] = make([]time.Time, len(b.locs))
		for z, loc := range b.locs {
			at := s.LocalDue(c, loc)
			if at.Before(from) {
				at = from
			}
			b.dues[ci][z] = at
		}
	}
	t.progs = make([][]ProgramDay, len(b.names))

	// Expected entries: one a day at midnight, its sends by day offset.
	for _, si := range rated {
		fs := b.scens[si]
		r := rate[fs.sc.ID]
		var offsets []int
		sendsFrom(fs, fs.sc.Steps[0].ID, time.Time{}, time.Time{}.Add(time.Duration(days)*24*time.Hour), time.UTC, func(o time.Time) {
			offsets = append(offsets, int(o.Sub(time.Time{})/(24*time.Hour)))
		})
		for d := range fc.Days {
			for _, o := range offsets {
				if od := d + o; od < days {
					t.pd(fs.prog, od).Expected += r
					fc.Days[od].Expected += r
				}
			}
		}
	}

	// Cohorts of customers with the same key, then the policy once per cohort.
	type cohort struct {
		rep int32
		n   int
	}
	var cohorts []cohort
	index := map[string]int32{}
	var buf []byte
	for i := range b.custs {
		c := &b.custs[i]
		slices.SortFunc(c.ens, func(a, b fenroll) int { return cmp.Compare(a.eid, b.eid) })
		slices.Sort(c.sent)
		buf = buf[:0]
		if f.PerCustomer {
			buf = binary.AppendVarint(buf, b.pks[i])
		}
		buf = b.key(buf, c)
		if k, ok := index[string(buf)]; ok {
			cohorts[k].n++
			continue
		}
		index[string(buf)] = int32(len(cohorts))
		cohorts = append(cohorts, cohort{rep: int32(i), n: 1})
	}
	fc.Customers, fc.Cohorts = len(b.custs), len(cohorts)
	var p customerPlan
	var scratch simScratch
	for _, co := range cohorts {
		if b.plan(co.rep, &p) {
			t.simulate(&p, policy.Default, from, to, co.n, &scratch)
		}
	}
	order := make([]int32, len(b.names))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(x, y int32) int { return strings.Compare(b.names[x], b.names[y]) })
	for d, day := range fc.Days {
		for _, pi := range order {
			if t.progs[pi] == nil {
				continue
			}
			if pd := t.progs[pi][d]; pd.Planned != 0 || pd.Sends != 0 || pd.Deferred != 0 || pd.Skipped != 0 || pd.Expected != 0 {
				pd.Program = b.names[pi]
				day.Programs = append(day.Programs, &pd)
			}
		}
	}
	return fc, nil
}

// parallel runs the reads, at most n at a time, and returns the first error.
func parallel(ctx context.Context, n int, reads []func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, n)
	errs := make([]error, len(reads))
	var wg sync.WaitGroup
	for i, read := range reads {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if errs[i] = read(ctx); errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return errors.Join(errs...)
}

// custRow is a customer id with a time zone and, for some reads, a time.
type custRow struct {
	pk   int64
	zone *string
	at   int64
}

// cond is an audience condition on customers AS c, empty for all.
type cond struct {
	w    string
	args []any
}

// flagRow is a customer with their dates and a bit per condition met.
type flagRow struct {
	pk                  int64
	zone                *string
	firstOrder, created int64
	flags               uint64
}

// scanFlags reads the rows of a customers read with n flags.
func scanFlags(ctx context.Context, q *bun.SelectQuery, n int, out *[]flagRow) error {
	rows, err := q.Rows(ctx)
	if err != nil {
		return err
	}
	defer rows.Close()
	names := zoneNames{}
	var zone sql.NullString
	var fo, ca nsTime
	flags := make([]int64, n)
	dest := []any{nil, &zone, &fo, &ca}
	for i := range flags {
		dest = append(dest, &flags[i])
	}
	for rows.Next() {
		var r flagRow
		dest[0] = &r.pk
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		r.zone, r.firstOrder, r.created = names.get(zone), int64(fo), int64(ca)
		for i, f := range flags {
			if f != 0 {
				r.flags |= 1 << i
			}
		}
		*out = append(*out, r)
	}
	return rows.Err()
}

type enrollRow struct {
	eid, pk  int64
	scenario string
	version  int
	step     string
	next     int64
}

// nsTime scans a time column of either database into Unix nanoseconds, 0
// for NULL.
type nsTime int64

func (t *nsTime) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*t = 0
		return nil
	case time.Time:
		*t = nsTime(v.UnixNano())
		return nil
	case string:
		return t.parse(v)
	case []byte:
		return t.parse(string(v))
	}
	return fmt.Errorf("time column: unexpected %T", v)
}

func (t *nsTime) parse(s string) error {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"} {
		if v, err := time.Parse(layout, s); err == nil {
			*t = nsTime(v.UnixNano())
			return nil
		}
	}
	return fmt.Errorf("time column: cannot parse %q", s)
}

// zones interns the time zone names a read meets.
type zoneNames map[string]*string

func (z zoneNames) get(ns sql.NullString) *string {
	if !ns.Valid || ns.String == "" {
		return nil
	}
	if p, ok := z[ns.String]; ok {
		return p
	}
	p := &ns.String
	z[ns.String] = p
	return p
}

// scanCustomers reads the id, time zone and, withAt, a time of each row of q.
func scanCustomers(ctx context.Context, q *bun.SelectQuery, out *[]custRow, withAt bool) error {
	rows, err := q.Rows(ctx)
	if err != nil {
		return err
	}
	defer rows.Close()
	names := zoneNames{}
	var zone sql.NullString
	for rows.Next() {
		var r custRow
		var at nsTime
		dest := []any{&r.pk, &zone}
		if withAt {
			dest = append(dest, &at)
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		r.zone, r.at = names.get(zone), int64(at)
		*out = append(*out, r)
	}
	return rows.Err()
}

func scanEnrollments(ctx context.Context, q *bun.SelectQuery, out *[]enrollRow) error {
	rows, err := q.Rows(ctx)
	if err != nil {
		return err
	}
	defer rows.Close()
	interned := map[string]string{}
	intern := func(b []byte) string {
		if s, ok := interned[string(b)]; ok {
			return s
		}
		s := string(b)
		interned[s] = s
		return s
	}
	var scenario, step sql.RawBytes
	for rows.Next() {
		var r enrollRow
		var next nsTime
		if err := rows.Scan(&r.eid, &r.pk, &scenario, &r.version, &step, &next); err != nil {
			return err
		}
		r.scenario, r.step, r.next = intern(scenario), intern(step), int64(next)
		*out = append(*out, r)
	}
	return rows.Err()
}

// yearly adds the dates of a yearly program in [from, to) to customer pk,
// whose date is at (0 for the store's anniversary).
func (b *builder) yearly(si int32, pk int64, zone *string, at int64) {
	// The store's date, as a month and day (its year a leap one, so that
	// 02-29 parses; the years it falls in are checked below).
	md := b.storeDate
	originYear := 0
	if at != 0 {
		md = fromUnix(at)
		originYear = md.Year()
	}
	if md.IsZero() {
		return
	}
	from, to := b.from, b.to
	for y := from.Year(); y <= to.Year(); y++ {
		if originYear != 0 && y <= originYear {
			continue
		}
		if md.Month() == time.February && md.Day() == 29 && !leap(y) {
			continue
		}
		day := time.Date(y, md.Month(), md.Day(), 0, 0, 0, 0, time.UTC)
		if day.Add(24*time.Hour).Before(from) || !day.Before(to) {
			continue
		}
		i := b.customer(pk, zone)
		b.custs[i].yearly = append(b.custs[i].yearly, fyear{si, day.UnixNano()})
	}
}

func leap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// tally adds up the simulated decisions by day and program.
type tally struct {
	fc   *Forecast
	day0 time.Time
	// progs are by program index, then day; nil until the program has one.
	progs [][]ProgramDay
}

func (t *tally) day(at time.Time) int {
	d := int(at.Sub(t.day0) / (24 * time.Hour))
	if d < 0 || d >= len(t.fc.Days) {
		return -1
	}
	return d
}

func (t *tally) pd(prog int32, d int) *ProgramDay {
	if t.progs[prog] == nil {
		t.progs[prog] = make([]ProgramDay, len(t.fc.Days))
	}
	return &t.progs[prog][d]
}

type simScratch struct {
	all      []int64
	queue    []plannedSend
	sent     []time.Time
	reserved []pressure.Reservation
}

func lessSend(a, b *plannedSend) bool {
	if !a.at.Equal(b.at) {
		return a.at.Before(b.at)
	}
	return a.seq < b.seq
}

// simulate runs the policy over one customer's planned sends in time
// order, as the engine and the campaign sender would, and counts n times
// (the customers of the cohort) each planned send, send, deferral, skip
// and day over the cap.
func (t *tally) simulate(p *customerPlan, def pressure.Rules, from, to time.Time, n int, sc *simScratch) {
	// Before the policy: days on which the planned load breaks the cap.
	all := sc.all[:0]
	for _, x := range p.sent {
		all = append(all, x.UnixNano())
	}
	for i := range p.plans {
		all = append(all, p.plans[i].at.UnixNano())
	}
	slices.Sort(all)
	sc.all = all
	if def.Cap > 0 {
		lastOver := -1
		lo := 0
		w, fromN, day0 := int64(def.Window), from.UnixNano(), t.day0.UnixNano()
		for i, x := range all {
			for all[lo]+w <= x {
				lo++
			}
			if i-lo+1 > def.Cap && x >= fromN {
				d := int((x - day0) / int64(24*time.Hour))
				if d != lastOver {
					if d >= 0 && d < len(t.fc.Days) {
						t.fc.Days[d].OverCap += n
					}
					lastOver = d
				}
			}
		}
	}
	for i := range p.plans {
		ps := &p.plans[i]
		d := t.day(ps.at)
		if d < 0 {
			continue
		}
		t.pd(ps.prog, d).Planned += n
		switch ps.source {
		case srcCampaign:
			t.fc.Days[d].Campaigns += n
		case srcScenario:
			t.fc.Days[d].Scenarios += n
		default:
			t.fc.Days[d].Yearly += n
		}
	}
	// The policy, with deferrals and the following steps put in order.
	queue := append(sc.queue[:0], p.queue...)
	slices.SortStableFunc(queue, func(a, b plannedSend) int {
		switch {
		case lessSend(&a, &b):
			return -1
		case lessSend(&b, &a):
			return 1
		}
		return 0
	})
	push := func(h int, ps plannedSend) {
		i := h + sort.Search(len(queue)-h, func(i int) bool { return lessSend(&ps, &queue[h+i]) })
		queue = append(queue, plannedSend{})
		copy(queue[i+1:], queue[i:])
		queue[i] = ps
	}
	sent := append(sc.sent[:0], p.sent...)
	for h := 0; h < len(queue); {
		ps := queue[h]
		h++
		if !ps.at.Before(to) {
			continue
		}
		if ps.first.IsZero() {
			ps.first = ps.at
		}
		r := ps.rules
		reserved := sc.reserved[:0]
		if ps.campaign == "" && r.OnCapped != pressure.OnCappedOverride {
			end := ps.at.Add(r.Window)
			for j := h; j < len(queue); j++ {
				o := &queue[j]
				if o.campaign != "" && o.priority > ps.priority && o.at.After(ps.at) && !o.at.After(end) {
					reserved = append(reserved, pressure.Reservation{At: o.at, Campaign: o.campaign, Priority: o.priority})
				}
			}
		}
		sc.reserved = reserved
		// Only the sends in the longest window still count.
		cut, k := ps.at.Add(-r.Window), 0
		for _, x := range sent {
			if x.After(cut) {
				sent[k] = x
				k++
			}
		}
		sent = sent[:k]
		d := t.day(ps.at)
		res := pressure.Verdict(*r, ps.at, p.loc, sent, ps.first, reserved)
		switch res.Decision {
		case pressure.Send, pressure.Overridden:
			sent = append(sent, ps.at)
			if d >= 0 {
				t.pd(ps.prog, d).Sends += n
				t.fc.Days[d].Sends += n
			}
		case pressure.Deferred:
			if d >= 0 {
				t.pd(ps.prog, d).Deferred += n
			}
			ps.at = res.Until
			push(h, ps)
			continue
		default:
			if d >= 0 {
				t.pd(ps.prog, d).Skipped += n
			}
		}
		if ps.sc != nil {
			if st := ps.sc.idx[ps.step]; st != nil {
				if at, step, ok := walk(ps.sc, st.Next, ps.at, to, p.loc); ok {
					push(h, plannedSend{at: at, rules: ps.rules, prog: ps.prog, priority: ps.priority, source: ps.source, sc: ps.sc, step: step, seq: ps.seq})
				}
			}
		}
	}
	sc.queue, sc.sent = queue[:0], sent[:0]
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
