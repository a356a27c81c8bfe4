package forecast

import (
	"context"
	"encoding/binary"
	"math/bits"
	"time"

	"github.com/refrain-dev/refrain/plugin/campaign"
	"github.com/refrain-dev/refrain/plugin/pressure"
	"github.com/refrain-dev/refrain/scenarios"
	"github.com/refrain-dev/refrain/scenarios/engine"
)

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

	cs     []*campaign.Campaign
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
	p.loc = b.locs[c.zone]
	p.plans, p.queue, p.sent = p.plans[:0], p.queue[:0], p.sent[:0]
	b.planCampaigns(c, p)
	b.planEnrollments(c, p)
	b.planYearly(c, p)
	for _, t := range c.sent {
		p.sent = append(p.sent, fromUnix(t))
	}
	return len(p.plans) > 0 || len(p.queue) > 0 || len(c.ens) > 0
}

// planCampaigns adds the sends of c's campaigns due in the period.
func (b *builder) planCampaigns(c *fcust, p *customerPlan) {
	for w, word := range c.camps {
		for word != 0 {
			bit := bits.TrailingZeros64(word)
			word &^= 1 << bit
			ci := int32(w*64 + bit)
			at := b.dues[ci][c.zone]
			if !at.Before(b.to) {
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
}

// planEnrollments adds the sends of c's waiting enrollments: all of them
// to the plans, the next of each to the queue.
func (b *builder) planEnrollments(c *fcust, p *customerPlan) {
	from, to, loc := b.from, b.to, p.loc
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
}

// planYearly adds the sends of c's yearly programs in the period.
func (b *builder) planYearly(c *fcust, p *customerPlan) {
	from, to, loc := b.from, b.to, p.loc
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
