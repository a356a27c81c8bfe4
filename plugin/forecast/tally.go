package forecast

import (
	"slices"
	"sort"
	"time"

	"github.com/refrain-dev/refrain/plugin/pressure"
)

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
	t.overCap(p, def, from, n, sc)
	t.countPlanned(p, n)
	t.runPolicy(p, to, n, sc)
}

// overCap counts, before the policy, the days on which the planned load
// breaks the default cap.
func (t *tally) overCap(p *customerPlan, def pressure.Rules, from time.Time, n int, sc *simScratch) {
	all := sc.all[:0]
	for _, x := range p.sent {
		all = append(all, x.UnixNano())
	}
	for i := range p.plans {
		all = append(all, p.plans[i].at.UnixNano())
	}
	slices.Sort(all)
	sc.all = all
	if def.Cap <= 0 {
		return
	}
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

// countPlanned counts the planned sends by day, program and source.
func (t *tally) countPlanned(p *customerPlan, n int) {
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
}

// sendQueue is the sends still to decide, in the order the workers take
// them; h is the head.
type sendQueue struct {
	sends []plannedSend
	h     int
}

// push inserts ps after the head, in order.
func (q *sendQueue) push(ps plannedSend) {
	i := q.h + sort.Search(len(q.sends)-q.h, func(i int) bool { return lessSend(&ps, &q.sends[q.h+i]) })
	q.sends = append(q.sends, plannedSend{})
	copy(q.sends[i+1:], q.sends[i:])
	q.sends[i] = ps
}

// runPolicy runs the policy over the queue, with deferrals and the
// following steps put in order, and counts its decisions.
func (t *tally) runPolicy(p *customerPlan, to time.Time, n int, sc *simScratch) {
	q := &sendQueue{sends: append(sc.queue[:0], p.queue...)}
	slices.SortStableFunc(q.sends, func(a, b plannedSend) int {
		switch {
		case lessSend(&a, &b):
			return -1
		case lessSend(&b, &a):
			return 1
		}
		return 0
	})
	sent := append(sc.sent[:0], p.sent...)
	for q.h < len(q.sends) {
		ps := q.sends[q.h]
		q.h++
		if !ps.at.Before(to) {
			continue
		}
		if ps.first.IsZero() {
			ps.first = ps.at
		}
		r := ps.rules
		sc.reserved = reservations(q, &ps, sc.reserved[:0])
		// Only the sends in the longest window still count.
		sent = since(sent, ps.at.Add(-r.Window))
		res := pressure.Verdict(*r, ps.at, p.loc, sent, ps.first, sc.reserved)
		if res.Decision == pressure.Send || res.Decision == pressure.Overridden {
			sent = append(sent, ps.at)
		}
		t.count(&ps, res.Decision, n)
		if res.Decision == pressure.Deferred {
			ps.at = res.Until
			q.push(ps)
			continue
		}
		if ps.sc != nil {
			if st := ps.sc.idx[ps.step]; st != nil {
				if at, step, ok := walk(ps.sc, st.Next, ps.at, to, p.loc); ok {
					q.push(plannedSend{at: at, rules: ps.rules, prog: ps.prog, priority: ps.priority, source: ps.source, sc: ps.sc, step: step, seq: ps.seq})
				}
			}
		}
	}
	sc.queue, sc.sent = q.sends[:0], sent[:0]
}

// reservations are the slots that queued campaigns of higher priority hold
// in the window of scenario send ps (none for campaigns and sends that
// override the cap), appended to buf.
func reservations(q *sendQueue, ps *plannedSend, buf []pressure.Reservation) []pressure.Reservation {
	r := ps.rules
	if ps.campaign != "" || r.OnCapped == pressure.OnCappedOverride {
		return buf
	}
	end := ps.at.Add(r.Window)
	for j := q.h; j < len(q.sends); j++ {
		o := &q.sends[j]
		if o.campaign != "" && o.priority > ps.priority && o.at.After(ps.at) && !o.at.After(end) {
			buf = append(buf, pressure.Reservation{At: o.at, Campaign: o.campaign, Priority: o.priority})
		}
	}
	return buf
}

// since keeps the times of sent after cut, in place.
func since(sent []time.Time, cut time.Time) []time.Time {
	k := 0
	for _, x := range sent {
		if x.After(cut) {
			sent[k] = x
			k++
		}
	}
	return sent[:k]
}

// count counts a decision on ps for n customers on its day.
func (t *tally) count(ps *plannedSend, decision pressure.Decision, n int) {
	d := t.day(ps.at)
	if d < 0 {
		return
	}
	switch decision {
	case pressure.Send, pressure.Overridden:
		t.pd(ps.prog, d).Sends += n
		t.fc.Days[d].Sends += n
	case pressure.Deferred:
		t.pd(ps.prog, d).Deferred += n
	default:
		t.pd(ps.prog, d).Skipped += n
	}
}
