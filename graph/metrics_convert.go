package graph

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/refrain-dev/refrain/graph/model"
	"github.com/refrain-dev/refrain/plugin/campaign"
	"github.com/refrain-dev/refrain/plugin/kpi"
	"github.com/refrain-dev/refrain/plugin/stats"
	"github.com/refrain-dev/refrain/scenarios"
	"github.com/refrain-dev/refrain/scenarios/engine"
)

// StatsArgs are the arguments of every stats field (kpis, Program.stats,
// Scenario.stats, Campaign.stats).
type StatsArgs struct {
	From, To time.Time
	Interval *model.KpiInterval
	TimeZone *string
}

// query turns the arguments into a validated KPI query.
func (a StatsArgs) query(f kpi.Filter) (kpi.Query, error) {
	q := kpi.Query{Filter: f, From: a.From, To: a.To, Location: time.UTC}
	if a.Interval != nil {
		q.Interval = kpi.Interval(*a.Interval)
	}
	if a.TimeZone != nil && *a.TimeZone != "" {
		loc, err := time.LoadLocation(*a.TimeZone)
		if err != nil {
			return q, errBadInput(fmt.Sprintf("timeZone %q is not an IANA time zone name", *a.TimeZone))
		}
		q.Location = loc
	}
	if err := q.Validate(); err != nil {
		return q, errBadInput(err.Error())
	}
	return q, nil
}

func (a StatsArgs) key(parts ...string) string {
	tz := "UTC"
	if a.TimeZone != nil {
		tz = *a.TimeZone
	}
	iv := ""
	if a.Interval != nil {
		iv = string(*a.Interval)
	}
	return strings.Join(append([]string{a.From.UTC().Format(time.RFC3339Nano), a.To.UTC().Format(time.RFC3339Nano), iv, tz}, parts...), "\x00")
}

// metricsBatch holds, for one GraphQL operation, the grouped answers the
// stats fields share: the first field asks for every group at once, the
// others wait for and read the result. That keeps the SQL of a list of
// programs, scenarios or campaigns constant whatever its length; answers
// under different keys are computed concurrently.
type metricsBatch struct {
	mu      sync.Mutex
	entries map[string]*batchEntry
}

type batchEntry struct {
	once sync.Once
	val  any
	err  error
}

type metricsBatchKey struct{}

// withMetricsBatch gives an operation its batch (graph.NewServer calls it).
func withMetricsBatch(ctx context.Context) context.Context {
	return context.WithValue(ctx, metricsBatchKey{}, &metricsBatch{entries: map[string]*batchEntry{}})
}

func batchOf(ctx context.Context) *metricsBatch {
	if b, ok := ctx.Value(metricsBatchKey{}).(*metricsBatch); ok {
		return b
	}
	return &metricsBatch{entries: map[string]*batchEntry{}}
}

// load returns the value under key, computing it once per operation.
func (b *metricsBatch) load(key string, fn func() (any, error)) (any, error) {
	b.mu.Lock()
	e := b.entries[key]
	if e == nil {
		e = &batchEntry{}
		b.entries[key] = e
	}
	b.mu.Unlock()
	e.once.Do(func() { e.val, e.err = fn() })
	return e.val, e.err
}

// cube returns the operation's cube of the period and time zone of a
// validated q (nil when the period holds too many days for one): the
// totals, stats and A/B fields of one request are all summed from it, so
// they scan the rollups once.
func (r *Resolver) cube(ctx context.Context, q kpi.Query) (*kpi.Cube, error) {
	key := "cube\x00" + q.From.UTC().Format(time.RFC3339Nano) + "\x00" + q.To.UTC().Format(time.RFC3339Nano) + "\x00" + q.Location.String()
	v, err := batchOf(ctx).load(key, func() (any, error) {
		return kpi.NewCube(ctx, r.DB, q)
	})
	if err != nil {
		return nil, err
	}
	return v.(*kpi.Cube), nil
}

// compute answers q from the operation's cube when it holds it, else with
// its own statements.
func (r *Resolver) compute(ctx context.Context, q kpi.Query) ([]*kpi.Series, error) {
	if q.Filter == (kpi.Filter{}) {
		c, err := r.cube(ctx, q)
		if err != nil {
			return nil, err
		}
		if c != nil {
			if out, ok := c.Derive(q); ok {
				return out, nil
			}
		}
	}
	return kpi.Compute(ctx, r.DB, q)
}

// grouped returns the series of q grouped by dims, computed once per
// operation.
func (r *Resolver) grouped(ctx context.Context, key string, q kpi.Query, dims ...kpi.Dim) (map[string]*kpi.Series, error) {
	v, err := batchOf(ctx).load(key, func() (any, error) {
		q.GroupBy = dims
		out, err := r.compute(ctx, q)
		if err != nil {
			return nil, err
		}
		m := make(map[string]*kpi.Series, len(out))
		for _, s := range out {
			m[s.Key] = s
		}
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(map[string]*kpi.Series), nil
}

// Stats returns the KPI report of the messages whose dimension dim
// (program, scenario or campaign) equals value. Any type can serve its
// stats with it (Campaign.stats: r.Stats(ctx, kpi.DimCampaign, obj.ID,
// args)); within one operation, every call with the same dimension and
// arguments shares one grouped query.
func (r *Resolver) Stats(ctx context.Context, dim kpi.Dim, value string, args StatsArgs) (*model.KpiReport, error) {
	q, err := args.query(kpi.Filter{})
	if err != nil {
		return nil, err
	}
	all, err := r.grouped(ctx, args.key("stats", string(dim)), q, dim)
	if err != nil {
		return nil, err
	}
	s := all[value]
	if s == nil {
		s = q.EmptySeries()
	}
	return kpiReport(q, args, s), nil
}

// Kpis answers the kpis query.
func (r *Resolver) Kpis(ctx context.Context, f *model.KpiFilter, args StatsArgs) (*model.KpiReport, error) {
	var filter kpi.Filter
	if f != nil {
		filter = kpi.Filter{Program: f.Program, Scenario: f.Scenario, Step: f.Step, Variant: f.Variant, Campaign: f.Campaign, Segment: f.Segment}
	}
	q, err := args.query(filter)
	if err != nil {
		return nil, err
	}
	out, err := r.compute(ctx, q)
	if errors.Is(err, kpi.ErrUnknownSegment) {
		return nil, errBadInput(fmt.Sprintf("filter.segment: no segment is named %q", *f.Segment))
	}
	if err != nil {
		return nil, err
	}
	return kpiReport(q, args, out[0]), nil
}

func kpiReport(q kpi.Query, args StatsArgs, s *kpi.Series) *model.KpiReport {
	rep := &model.KpiReport{From: q.From, To: q.To, Interval: args.Interval, TimeZone: q.Location.String(),
		Total: kpiValues(s.Total), Intervals: make([]*model.KpiIntervalValues, len(s.Buckets))}
	for i, b := range s.Buckets {
		rep.Intervals[i] = &model.KpiIntervalValues{Start: b.Start, End: b.End, Values: kpiValues(b.Totals)}
	}
	return rep
}

func kpiRate(r kpi.Rate) *model.KpiRate {
	out := &model.KpiRate{NumeratorName: r.Numerator, DenominatorName: r.Denominator, Numerator: int(r.Num), Denominator: int(r.Den)}
	if v, ok := r.Value(); ok {
		out.Value = &v
	}
	return out
}

func kpiValues(t kpi.Totals) *model.KpiValues {
	c := t.Counters
	v := &model.KpiValues{Sent: int(c.Sent), Delivered: int(c.Delivered), HardBounces: int(c.HardBounces),
		SoftBounces: int(c.SoftBounces), UniqueOpens: int(c.UniqueOpens), MachineOpens: int(c.MachineOpens),
		UniqueClicks: int(c.UniqueClicks), Unsubscribes: int(c.Unsubscribes), Complaints: int(c.Complaints),
		Conversions: int(c.Conversions), GoalConversions: int(c.GoalConversions), Revenue: []*model.KpiRevenue{}}
	rs := c.Rates()
	all := make([]model.KpiRate, len(rs)) // one allocation for every rate
	for i, r := range rs {
		all[i] = *kpiRate(r)
		x := &all[i]
		switch r.Name {
		case "delivery_rate":
			v.DeliveryRate = x
		case "hard_bounce_rate":
			v.HardBounceRate = x
		case "soft_bounce_rate":
			v.SoftBounceRate = x
		case "open_rate":
			v.OpenRate = x
		case "machine_open_rate":
			v.MachineOpenRate = x
		case "click_rate":
			v.ClickRate = x
		case "click_to_open_rate":
			v.ClickToOpenRate = x
		case "unsubscribe_rate":
			v.UnsubscribeRate = x
		case "complaint_rate":
			v.ComplaintRate = x
		case "conversion_rate":
			v.ConversionRate = x
		case "goal_conversion_rate":
			v.GoalConversionRate = x
		}
	}
	curs := make([]string, 0, len(t.Revenue))
	for cur := range t.Revenue {
		curs = append(curs, cur)
	}
	sort.Strings(curs)
	for _, cur := range curs {
		amount := t.Revenue[cur]
		rev := &model.KpiRevenue{Revenue: &model.Money{Amount: int(amount)}}
		if cur != "" {
			c := cur
			rev.Revenue.Currency = &c
		}
		if c.Delivered > 0 {
			per := float64(amount) / float64(c.Delivered)
			rev.PerRecipient = &per
		}
		v.Revenue = append(v.Revenue, rev)
	}
	return v
}

// ABTest compares the variants of a scenario's messages on metric.
// control defaults to defaultControl, else to the first variant by name.
func (r *Resolver) ABTest(ctx context.Context, scenario string, args StatsArgs, metric *model.AbMetric, control *string, defaultControl string) (*model.AbTest, error) {
	args.Interval = nil
	q, err := args.query(kpi.Filter{})
	if err != nil {
		return nil, err
	}
	all, err := r.grouped(ctx, args.key("ab"), q, kpi.DimScenario, kpi.DimVariant)
	if err != nil {
		return nil, err
	}
	o := campaign.ABTestOpts{Control: control, DefaultControl: defaultControl, Rule: r.ABRule}
	if metric != nil {
		o.Metric = campaign.ABMetric(strings.ToLower(string(*metric)))
	}
	test, ok, err := campaign.CompareVariants(all, scenario, o)
	if err != nil || !ok {
		return nil, err
	}
	out := &model.AbTest{Metric: model.AbMetric(strings.ToUpper(string(test.Metric))), Control: test.Control,
		MinSample: int(test.Rule.MinSample), Threshold: test.Rule.Threshold}
	for _, v := range test.Variants {
		out.Variants = append(out.Variants, &model.AbVariant{Variant: v.Name, Values: kpiValues(v.Totals), Rate: kpiRate(v.Rate),
			ProbabilityToBeatControl: v.ProbBeatsControl, Decision: model.AbDecision(strings.ToUpper(string(v.Decision)))})
	}
	return out, nil
}

// HoldoutUplift compares a scenario's treated customers with its holdout
// for the enrollments that entered in [from, to).
func (r *Resolver) HoldoutUplift(ctx context.Context, scenario string, percent int, from, to time.Time) (*model.HoldoutUplift, error) {
	if !to.After(from) {
		return nil, errBadInput("to must be after from")
	}
	key := "holdout\x00" + from.UTC().Format(time.RFC3339Nano) + "\x00" + to.UTC().Format(time.RFC3339Nano)
	v, err := batchOf(ctx).load(key, func() (any, error) { return kpi.Holdouts(ctx, r.DB, from, to) })
	if err != nil {
		return nil, err
	}
	h := v.(map[string]*kpi.Holdout)[scenario]
	if percent == 0 && (h == nil || h.Holdout.Customers == 0) {
		return nil, nil
	}
	if h == nil {
		h = &kpi.Holdout{}
	}
	conv := func(g kpi.HoldoutGroup) kpi.Rate {
		return kpi.Rate{Numerator: "goals", Denominator: "customers", Num: g.Goals, Den: g.Customers}
	}
	out := &model.HoldoutUplift{HoldoutPercent: percent, TreatedCustomers: int(h.Treated.Customers), HoldoutCustomers: int(h.Holdout.Customers),
		TreatedConversion: kpiRate(conv(h.Treated)), HoldoutConversion: kpiRate(conv(h.Holdout)), RevenuePerCustomer: []*model.RevenueUplift{}}
	if iv, err := stats.RateUplift(stats.Arm{Trials: h.Treated.Customers, Successes: h.Treated.Goals},
		stats.Arm{Trials: h.Holdout.Customers, Successes: h.Holdout.Goals}); err == nil {
		out.ConversionUplift = &model.Estimate{Estimate: iv.Estimate, Low: iv.Low, High: iv.High}
	}
	curs := map[string]bool{}
	for cur := range h.Treated.Revenue {
		curs[cur] = true
	}
	for cur := range h.Holdout.Revenue {
		curs[cur] = true
	}
	names := make([]string, 0, len(curs))
	for cur := range curs {
		names = append(names, cur)
	}
	sort.Strings(names)
	for _, cur := range names {
		t, ho := h.Treated.Revenue[cur], h.Holdout.Revenue[cur]
		t.N, ho.N = h.Treated.Customers, h.Holdout.Customers
		ru := &model.RevenueUplift{Currency: cur, Treated: t.Mean(), Holdout: ho.Mean()}
		if iv, err := stats.MeanUplift(t, ho); err == nil {
			ru.Uplift = &model.Estimate{Estimate: iv.Estimate, Low: iv.Low, High: iv.High}
		}
		out.RevenuePerCustomer = append(out.RevenuePerCustomer, ru)
	}
	return out, nil
}

// programs lists every scenario as a program.
func (r *Resolver) programs(ctx context.Context) ([]*model.Program, error) {
	list, err := r.Programs.List(ctx, r.DB)
	if err != nil {
		return nil, err
	}
	out := make([]*model.Program, 0, len(list))
	for _, c := range list {
		out = append(out, programOf(c.ID, c.Status, c.Def))
	}
	return out, nil
}

func programOf(id string, status engine.Status, sc *scenarios.Scenario) *model.Program {
	p := &model.Program{ID: id, Title: sc.Title, Objective: string(sc.Objective), Priority: sc.Priority, Status: status,
		HoldoutPercent: sc.Holdout, Control: sc.Control()}
	if sc.Audience != "" {
		a := sc.Audience
		p.Audience = &a
	}
	if sc.KPI != "" {
		k := sc.KPI
		p.Kpi = &k
	}
	if sc.Goal != nil {
		g := sc.Goal.Event
		p.Goal = &g
	}
	return p
}
