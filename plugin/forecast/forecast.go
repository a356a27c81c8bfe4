package forecast

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"golang.org/x/sync/errgroup"

	"github.com/refrain-dev/refrain/plugin/campaign"
	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/pressure"
	"github.com/refrain-dev/refrain/scenarios"
	"github.com/refrain-dev/refrain/scenarios/engine"
)

// Forecaster projects the marketing load day by day.
type Forecaster struct {
	DB *bun.DB
	// Policy is the pressure policy the sends are weighed by.
	Policy *pressure.Policy
	// Audience reads campaign audiences and segments.
	Audience campaign.AudienceParser
	// Scenarios compiles stored scenario versions.
	Scenarios Compiler
	// StoreAnniversary is the store's anniversary as MM-DD ("" when unset).
	StoreAnniversary string
	// Clock gives now, the due time of campaigns not scheduled.
	Clock clock.Clock
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

// Compiler compiles a stored scenario version (the scenario engine).
type Compiler interface {
	Compiled(ctx context.Context, db bun.IDB, id string, version int) (*scenarios.Scenario, error)
}

// CompilerFunc is a function that is a Compiler.
type CompilerFunc func(ctx context.Context, db bun.IDB, id string, version int) (*scenarios.Scenario, error)

// Compiled calls f.
func (f CompilerFunc) Compiled(ctx context.Context, db bun.IDB, id string, version int) (*scenarios.Scenario, error) {
	return f(ctx, db, id, version)
}

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
	r, err := f.newRun(ctx, from, to, segment)
	if err != nil {
		return nil, err
	}
	steps := []func(context.Context) error{r.loadCampaigns, r.loadScenarios, r.loadBulk, r.gather, r.loadEnrollments}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	r.planDues()
	r.expect()
	r.simulate()
	r.collect()
	return r.fc, nil
}

// run is one forecast in progress: its period, what it read and what it
// has counted so far.
type run struct {
	f        *Forecaster
	from, to time.Time
	segment  string
	// segWhere and segArgs restrict the reads to the segment ("" for all).
	segWhere string
	segArgs  []any
	b        *builder
	t        *tally
	fc       *Forecast
	days     int

	// firstDue is, per customer and message key, when a message deferred
	// before the period was first due.
	firstDue map[int64]map[string]int64
	scenRows []*engine.Scenario
	rate     map[string]float64
	yearly   []int32
	rated    []int32

	// The bulk reads: the recipients of started campaigns (fixed), one
	// condition per audience and yearly program (conds, read in batches of
	// 64 flags), the waiting enrollments and the recent sends.
	fixed   []*[]custRow
	flagOf  map[string]int
	conds   []cond
	yflag   []int
	batches [][]flagRow
	ens     []enrollRow
	sent    []custRow
}

// newRun starts a forecast of [from, to) restricted to segment.
func (f *Forecaster) newRun(ctx context.Context, from, to time.Time, segment string) (*run, error) {
	r := &run{f: f, from: from, to: to, segment: segment}
	if segment != "" {
		w, args, err := campaign.AudienceWhere(ctx, f.DB, f.Audience, segment)
		if err != nil {
			return nil, fmt.Errorf("segment: %w", err)
		}
		r.segWhere, r.segArgs = w, args
	}
	r.b = &builder{f: f, policy: f.Policy, from: from, to: to, byPK: map[int64]int32{}, zones: map[string]int32{},
		scByID: map[scKey]int32{}, progs: map[string]int32{}}
	if md := f.StoreAnniversary; md != "" {
		r.b.storeDate, _ = time.Parse("2006-01-02", "2000-"+md)
	}
	r.days = int((to.Sub(from) + 24*time.Hour - 1) / (24 * time.Hour))
	r.fc = &Forecast{From: from, To: to, Days: make([]*Day, r.days)}
	for i := range r.fc.Days {
		r.fc.Days[i] = &Day{Date: from.Truncate(24*time.Hour).AddDate(0, 0, i)}
	}
	r.t = &tally{fc: r.fc, day0: r.fc.Days[0].Date}
	return r, nil
}

// inSegment keeps the rows of q whose col is a customer of the segment.
func (r *run) inSegment(q *bun.SelectQuery, col string) *bun.SelectQuery {
	if r.segWhere == "" {
		return q
	}
	return q.Where(col+" IN (SELECT c.id FROM customers AS c WHERE "+r.segWhere+")", r.segArgs...)
}

// loadCampaigns reads the campaigns still to send and the earlier
// deferrals: messages deferred before the period keep their first deferral.
func (r *run) loadCampaigns(ctx context.Context) error {
	db := r.f.DB
	if err := db.NewSelect().Model(&r.b.cs).
		Where("status IN (?)", bun.List([]campaign.Status{campaign.StatusScheduled, campaign.StatusSending, campaign.StatusPaused})).
		Where("scheduled_at < ?", r.to.Add(campaign.MaxZoneOffset)).Scan(ctx); err != nil {
		return fmt.Errorf("forecast: campaigns: %w", err)
	}
	var firsts []struct {
		PK  int64     `bun:"customer_id"`
		Key string    `bun:"message_key"`
		At  time.Time `bun:"at"`
	}
	if err := db.NewSelect().Table("pressure_decisions").ColumnExpr("customer_id, message_key, min(at) AS at").
		Where("decision = ? AND at > ? AND at <= ?", pressure.Deferred, r.from.Add(-31*24*time.Hour), r.from).
		Group("customer_id", "message_key").Scan(ctx, &firsts); err != nil {
		return fmt.Errorf("forecast: deferrals: %w", err)
	}
	r.firstDue = map[int64]map[string]int64{}
	for _, d := range firsts {
		m := r.firstDue[d.PK]
		if m == nil {
			m = map[string]int64{}
			r.firstDue[d.PK] = m
		}
		m[d.Key] = unixOr0(d.At)
	}
	return nil
}

// loadScenarios reads the active scenarios and the entry rates of the last
// four weeks, sorts the scenarios into yearly programs and rated ones, and
// takes the campaigns' rules (after the scenarios, as programs are numbered
// in the order they are met).
func (r *run) loadScenarios(ctx context.Context) error {
	rows, err := engine.ListScenarios(ctx, r.f.DB)
	if err != nil {
		return err
	}
	r.scenRows = rows
	if err := r.loadRates(ctx); err != nil {
		return err
	}
	for _, row := range rows {
		if row.Status != engine.StatusActive {
			continue
		}
		si, err := r.b.scenario(ctx, row.ID, row.Version)
		if err != nil {
			return err
		}
		sc := r.b.scens[si].sc
		if len(sc.Steps) == 0 {
			continue
		}
		switch sc.Trigger.Kind {
		case scenarios.TriggerYearly:
			r.yearly = append(r.yearly, si)
		case scenarios.TriggerEvent, scenarios.TriggerSegment:
			if r.rate[sc.ID] != 0 {
				r.rated = append(r.rated, si)
			}
		}
	}
	for _, c := range r.b.cs {
		r.b.crules = append(r.b.crules, r.f.Policy.RulesFor(c.Program, &c.Pressure))
		r.b.cprog = append(r.b.cprog, r.b.program(c.Program))
	}
	return nil
}

// loadRates reads how many customers entered each scenario a day over the
// last four weeks, scaled to the segment's share of the base.
func (r *run) loadRates(ctx context.Context) error {
	share := 1.0
	if r.segment != "" {
		all, err := r.f.audienceCount(ctx, "all")
		if err != nil {
			return err
		}
		in, err := r.f.audienceCount(ctx, r.segment)
		if err != nil {
			return err
		}
		if all > 0 {
			share = float64(in) / float64(all)
		}
	}
	var entries []struct {
		ID string `bun:"scenario_id"`
		N  int    `bun:"n"`
	}
	if err := r.f.DB.NewSelect().TableExpr("enrollments").ColumnExpr("scenario_id, count(*) AS n").
		Where("entered_at >= ? AND entered_at < ?", r.from.Add(-28*24*time.Hour), r.from).Group("scenario_id").Scan(ctx, &entries); err != nil {
		return fmt.Errorf("forecast: entry rates: %w", err)
	}
	r.rate = map[string]float64{}
	for _, e := range entries {
		r.rate[e.ID] = float64(e.N) / 28 * share
	}
	return nil
}

// audienceCount counts the customers an audience selects now.
func (f *Forecaster) audienceCount(ctx context.Context, spec string) (int, error) {
	w, args, err := campaign.AudienceWhere(ctx, f.DB, f.Audience, spec)
	if err != nil {
		return 0, err
	}
	n, err := f.DB.NewSelect().TableExpr("customers AS c").Where(w, args...).Count(ctx)
	return int(n), err
}

// loadBulk runs the bulk reads side by side, at most four at a time.
func (r *run) loadBulk(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	if err := r.campaignReads(ctx, g); err != nil {
		return err
	}
	r.yearlyConds()
	r.flagReads(ctx, g)
	g.Go(func() error { return r.readEnrollments(ctx) })
	g.Go(func() error { return r.readSent(ctx) })
	return g.Wait()
}

// campaignReads adds a condition per audience of the campaigns not
// started, and a read of the recipients left per started campaign.
func (r *run) campaignReads(ctx context.Context, g *errgroup.Group) error {
	db := r.f.DB
	r.fixed = make([]*[]custRow, len(r.b.cs))
	r.flagOf = map[string]int{}
	for ci, c := range r.b.cs {
		if !c.AudienceFixed {
			if _, ok := r.flagOf[c.Audience]; !ok {
				a, err := r.f.Audience(ctx, db, c.Audience)
				if err != nil {
					return fmt.Errorf("audience %q: %w", c.Audience, err)
				}
				w, args := a.Where(db)
				r.flagOf[c.Audience] = len(r.conds)
				r.conds = append(r.conds, cond{strings.TrimSpace(w), args})
			}
			continue
		}
		m := new([]custRow)
		r.fixed[ci] = m
		q := db.NewSelect().TableExpr("campaign_recipients AS r").Join("JOIN customers AS c ON c.id = r.customer_id").
			ColumnExpr("c.id, c.time_zone").Where("r.campaign_id = ? AND r.state IN ('pending', 'held')", c.ID)
		q = r.inSegment(q, "c.id")
		g.Go(func() error {
			if err := scanCustomers(ctx, q, m, false); err != nil {
				return fmt.Errorf("forecast: recipients of campaign %s: %w", c.ID, err)
			}
			return nil
		})
	}
	return nil
}

// yearlyConds adds a condition per yearly program on the customers it
// reaches (-1 in yflag for a program on a date the forecast cannot read).
func (r *run) yearlyConds() {
	r.yflag = make([]int, len(r.yearly))
	for i, si := range r.yearly {
		sc := r.b.scens[si].sc
		field := sc.Trigger.Field
		switch {
		case sc.Trigger.StoreAnniversary:
			r.yflag[i] = len(r.conds)
			r.conds = append(r.conds, cond{w: ""})
		case field == "first_order_at" || field == "created_at":
			r.yflag[i] = len(r.conds)
			r.conds = append(r.conds, cond{w: "c." + field + " IS NOT NULL"})
		default:
			r.yflag[i] = -1
		}
	}
}

// flagReads reads the customers meeting any condition, 64 conditions a
// read, with a flag per condition.
func (r *run) flagReads(ctx context.Context, g *errgroup.Group) {
	r.batches = make([][]flagRow, (len(r.conds)+63)/64)
	for k := range r.batches {
		part := r.conds[64*k : min(len(r.conds), 64*k+64)]
		q := r.f.DB.NewSelect().TableExpr("customers AS c").ColumnExpr("c.id, c.time_zone, c.first_order_at, c.created_at").Where(campaign.BaseWhere)
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
		q = r.inSegment(q, "c.id")
		g.Go(func() error {
			if err := scanFlags(ctx, q, len(part), &r.batches[k]); err != nil {
				return fmt.Errorf("forecast: customers: %w", err)
			}
			return nil
		})
	}
}

// readEnrollments reads the waiting enrollments. Neither the scenario (its
// status is known) nor the customer (the audiences read most time zones;
// the others are read after) is joined: the join alone took longer than
// the read.
func (r *run) readEnrollments(ctx context.Context) error {
	q := r.f.DB.NewSelect().TableExpr("enrollments AS e").
		ColumnExpr("e.id, e.customer_id, e.scenario_id, e.version, e.step, e.next_run_at").
		Where("e.state = 'active' AND e.next_run_at IS NOT NULL AND e.next_run_at < ?", r.to)
	if err := scanEnrollments(ctx, r.inSegment(q, "e.customer_id"), &r.ens); err != nil {
		return fmt.Errorf("forecast: enrollments: %w", err)
	}
	return nil
}

// readSent reads what the customers already got in the longest policy
// window before the period.
func (r *run) readSent(ctx context.Context) error {
	policy := r.f.Policy
	window := policy.Default.Window
	for _, o := range policy.Programs {
		if o.Window != nil && *o.Window > window {
			window = *o.Window
		}
	}
	q := r.f.DB.NewSelect().Table("messages").ColumnExpr("customer_id, NULL AS time_zone, created_at").Where("kind = 'marketing'").
		Where("created_at > ? AND created_at <= ?", r.from.Add(-window), r.from).Where("state NOT IN ('failed', 'suppressed')").
		Where("customer_id IS NOT NULL")
	if err := scanCustomers(ctx, q, &r.sent, true); err != nil {
		return fmt.Errorf("forecast: recent messages: %w", err)
	}
	return nil
}

// gather builds the customers from the reads, in their order: audience
// members, recipients of started campaigns, customers of yearly programs.
func (r *run) gather(context.Context) error {
	b := r.b
	hint := len(r.ens)
	for _, rows := range r.batches {
		hint = max(hint, len(rows))
	}
	b.custs = make([]fcust, 0, hint)
	b.pks = make([]int64, 0, hint)
	b.byPK = make(map[int64]int32, hint)
	flagCampaigns := make([][]int, len(r.conds))
	for ci, c := range b.cs {
		if !c.AudienceFixed {
			k := r.flagOf[c.Audience]
			flagCampaigns[k] = append(flagCampaigns[k], ci)
		}
	}
	for k, rows := range r.batches {
		for _, row := range rows {
			i := b.customer(row.pk, row.zone)
			for f := row.flags; f != 0; f &= f - 1 {
				for _, ci := range flagCampaigns[64*k+bits.TrailingZeros64(f)] {
					r.member(i, ci)
				}
			}
		}
	}
	for ci := range b.cs {
		if r.fixed[ci] != nil {
			for _, row := range *r.fixed[ci] {
				r.member(b.customer(row.pk, row.zone), ci)
			}
		}
	}
	r.gatherYearly()
	return nil
}

// member makes customer i a recipient of campaign ci.
func (r *run) member(i int32, ci int) {
	b := r.b
	fc := &b.custs[i]
	if fc.camps == nil {
		fc.camps = make([]uint64, (len(b.cs)+63)/64)
	}
	fc.camps[ci/64] |= 1 << (ci % 64)
	if m := r.firstDue[b.pks[i]]; m != nil {
		if at, ok := m[campaign.Key(b.cs[ci].ID, b.pks[i])]; ok {
			fc.cfirst = append(fc.cfirst, ciAt{int32(ci), at})
		}
	}
}

// gatherYearly gives the customers of each yearly program their date.
func (r *run) gatherYearly() {
	for y, si := range r.yearly {
		k := r.yflag[y]
		if k < 0 {
			continue
		}
		trigger := r.b.scens[si].sc.Trigger
		for _, row := range r.batches[k/64] {
			if row.flags&(1<<(k%64)) == 0 {
				continue
			}
			at := int64(0)
			switch {
			case trigger.StoreAnniversary:
			case trigger.Field == "first_order_at":
				at = row.firstOrder
			case trigger.Field == "created_at":
				at = row.created
			}
			r.b.yearly(si, row.pk, row.zone, at)
		}
	}
}

// loadEnrollments adds the waiting enrollments of running scenarios to
// their customers (reading the time zones of customers known from
// enrollments only), and the recent sends.
func (r *run) loadEnrollments(ctx context.Context) error {
	b := r.b
	active := map[string]bool{}
	for _, row := range r.scenRows {
		active[row.ID] = row.Status == engine.StatusActive
	}
	if err := r.loadZones(ctx, active); err != nil {
		return err
	}
	for _, en := range r.ens {
		i, ok := b.byPK[en.pk]
		if !ok || !active[en.scenario] {
			// A scenario not running, or a customer gone.
			continue
		}
		sc, err := b.scenario(ctx, en.scenario, en.version)
		if err != nil {
			return err
		}
		e := fenroll{eid: en.eid, sc: sc, step: en.step, next: en.next}
		if m := r.firstDue[en.pk]; m != nil {
			e.first = m[fmt.Sprintf("scenario:%d:%s:1", en.eid, en.step)]
		}
		b.custs[i].ens = append(b.custs[i].ens, e)
	}
	for _, m := range r.sent {
		if i, ok := b.byPK[m.pk]; ok {
			b.custs[i].sent = append(b.custs[i].sent, m.at)
		}
	}
	return nil
}

// loadZones reads the time zones of the customers of active enrollments
// that no other read brought, 10,000 a query.
func (r *run) loadZones(ctx context.Context, active map[string]bool) error {
	var missing []int64
	for _, en := range r.ens {
		if _, ok := r.b.byPK[en.pk]; !ok && active[en.scenario] {
			missing = append(missing, en.pk)
		}
	}
	slices.Sort(missing)
	missing = slices.Compact(missing)
	for len(missing) > 0 {
		chunk := missing[:min(len(missing), 10000)]
		missing = missing[len(chunk):]
		var found []custRow
		q := r.f.DB.NewSelect().TableExpr("customers AS c").ColumnExpr("c.id, c.time_zone").Where("c.id IN (?)", bun.List(chunk))
		if err := scanCustomers(ctx, q, &found, false); err != nil {
			return fmt.Errorf("forecast: time zones: %w", err)
		}
		for _, row := range found {
			r.b.customer(row.pk, row.zone)
		}
	}
	return nil
}

// planDues computes each campaign's due time in each zone read, from the
// period's start at the earliest.
func (r *run) planDues() {
	b := r.b
	now := r.f.Clock.Now()
	home := r.f.Policy.Location(nil)
	b.dues = make([][]time.Time, len(b.cs))
	for ci, c := range b.cs {
		b.dues[ci] = make([]time.Time, len(b.locs))
		for z, loc := range b.locs {
			at := campaign.LocalDue(c, loc, now, home)
			if at.Before(r.from) {
				at = r.from
			}
			b.dues[ci][z] = at
		}
	}
	r.t.progs = make([][]ProgramDay, len(b.names))
}

// expect counts the sends of expected entries: one a day at midnight at
// the scenario's rate, its sends by day offset.
func (r *run) expect() {
	for _, si := range r.rated {
		fs := r.b.scens[si]
		rate := r.rate[fs.sc.ID]
		var offsets []int
		sendsFrom(fs, fs.sc.Steps[0].ID, time.Time{}, time.Time{}.Add(time.Duration(r.days)*24*time.Hour), time.UTC, func(o time.Time) {
			offsets = append(offsets, int(o.Sub(time.Time{})/(24*time.Hour)))
		})
		for d := range r.fc.Days {
			for _, o := range offsets {
				if od := d + o; od < r.days {
					r.t.pd(fs.prog, od).Expected += rate
					r.fc.Days[od].Expected += rate
				}
			}
		}
	}
}

// cohort is the customers sharing one key: rep stands for all n.
type cohort struct {
	rep int32
	n   int
}

// simulate groups the customers with the same key into cohorts, then runs
// the policy once per cohort.
func (r *run) simulate() {
	b := r.b
	var cohorts []cohort
	index := map[string]int32{}
	var buf []byte
	for i := range b.custs {
		c := &b.custs[i]
		slices.SortFunc(c.ens, func(a, b fenroll) int { return cmp.Compare(a.eid, b.eid) })
		slices.Sort(c.sent)
		buf = buf[:0]
		if r.f.PerCustomer {
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
	r.fc.Customers, r.fc.Cohorts = len(b.custs), len(cohorts)
	var p customerPlan
	var scratch simScratch
	for _, co := range cohorts {
		if b.plan(co.rep, &p) {
			r.t.simulate(&p, r.f.Policy.Default, r.from, r.to, co.n, &scratch)
		}
	}
}

// collect lists each day's programs, by name.
func (r *run) collect() {
	b := r.b
	order := make([]int32, len(b.names))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(x, y int32) int { return strings.Compare(b.names[x], b.names[y]) })
	for d, day := range r.fc.Days {
		for _, pi := range order {
			if r.t.progs[pi] == nil {
				continue
			}
			if pd := r.t.progs[pi][d]; pd.Planned != 0 || pd.Sends != 0 || pd.Deferred != 0 || pd.Skipped != 0 || pd.Expected != 0 {
				pd.Program = b.names[pi]
				day.Programs = append(day.Programs, &pd)
			}
		}
	}
}

// Warnings tells, for a campaign being scheduled, the days in its window
// on which it pushes customers over the cap, and the other campaigns
// scheduled the same day whose audiences overlap it.
func (f *Forecaster) Warnings(ctx context.Context, c *campaign.Campaign) ([]string, error) {
	if c.ScheduledAt == nil {
		return nil, nil
	}
	day := c.ScheduledAt.UTC().Truncate(24 * time.Hour)
	fc, err := f.Forecast(ctx, day, day.Add(f.Policy.RulesFor(c.Program, &c.Pressure).Window), c.Audience)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range fc.Days {
		if d.OverCap > 0 {
			out = append(out, fmt.Sprintf("%s: %d customers of the audience over the cap of %d in %dd",
				d.Date.Format(time.DateOnly), d.OverCap, f.Policy.Default.Cap, int(f.Policy.Default.Window/(24*time.Hour))))
		}
	}
	overlaps, err := f.overlaps(ctx, c, day)
	if err != nil {
		return nil, err
	}
	return append(out, overlaps...), nil
}

// overlaps tells the other campaigns scheduled on day whose audiences
// share customers with c's.
func (f *Forecaster) overlaps(ctx context.Context, c *campaign.Campaign, day time.Time) ([]string, error) {
	var others []*campaign.Campaign
	if err := f.DB.NewSelect().Model(&others).
		Where("id <> ? AND status IN (?)", c.ID, bun.List([]campaign.Status{campaign.StatusScheduled, campaign.StatusSending, campaign.StatusPaused})).
		Where("scheduled_at >= ? AND scheduled_at < ?", day, day.Add(24*time.Hour)).Order("scheduled_at", "id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("overlapping campaigns: %w", err)
	}
	w1, a1, err := campaign.AudienceWhere(ctx, f.DB, f.Audience, c.Audience)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, o := range others {
		w2, a2, err := campaign.AudienceWhere(ctx, f.DB, f.Audience, o.Audience)
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

// RangeError is returned for a forecast period the forecaster refuses
// (empty, reversed or longer than two years): the caller can fix it.
type RangeError struct{ Problem string }

func (e *RangeError) Error() string { return e.Problem }
