package kpi

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// Interval is how a period is cut.
type Interval string

// Intervals. Weeks start on Monday (ISO 8601).
const (
	IntervalNone  Interval = ""
	IntervalDay   Interval = "DAY"
	IntervalWeek  Interval = "WEEK"
	IntervalMonth Interval = "MONTH"
)

// Dim names a dimension to filter or group by.
type Dim string

// Dimensions.
const (
	DimNone     Dim = ""
	DimProgram  Dim = "program"
	DimScenario Dim = "scenario"
	DimStep     Dim = "step"
	DimVariant  Dim = "variant"
	DimCampaign Dim = "campaign"
)

// Filter restricts a query to messages whose dimensions equal the set
// values (nil matches any; a pointer to "" matches messages without it).
type Filter struct {
	Program, Scenario, Step, Variant, Campaign *string
	// Segment, when set, keeps the messages of the current members of the
	// segment of that name. Rollups carry no customer: such a query reads
	// the members' message rows and their attributed orders instead (see
	// computeSegment), so its cost grows with the members' messages.
	Segment *string
}

// Query is a KPI question.
type Query struct {
	Filter
	// From and To bound the period [From, To) by message send time;
	// Validate widens them to whole hours (the rollups are hourly).
	From, To time.Time
	// Interval cuts the period; IntervalNone gives totals only.
	Interval Interval
	// Location is the time zone of the intervals (UTC when nil). Its
	// offsets must be whole hours over the period.
	Location *time.Location
	// GroupBy splits the answer by dimensions (one Series per combination
	// of values, keyed by the values joined with KeySep).
	GroupBy []Dim
}

// Totals are the counters and revenue of a set of messages.
type Totals struct {
	Counters
	// Revenue is attributed revenue in minor units, by currency.
	Revenue map[string]int64
}

func (t *Totals) add(c Counters) { t.Counters.Add(c) }

func (t *Totals) addRevenue(cur string, minor int64) {
	if t.Revenue == nil {
		t.Revenue = map[string]int64{}
	}
	t.Revenue[cur] += minor
}

// Bucket is one interval of a series.
type Bucket struct {
	Start, End time.Time
	Totals
}

// Series is the answer for one group.
type Series struct {
	// Key is the group's dimension value ("" without GroupBy).
	Key     string
	Total   Totals
	Buckets []*Bucket
}

// KeySep joins the values of a Series key grouped by several dimensions.
const KeySep = "|"

// MaxBuckets bounds the intervals of one query.
const MaxBuckets = 1000

// Validate checks q and reports what is wrong with it.
func (q *Query) Validate() error {
	if q.From.IsZero() || q.To.IsZero() {
		return errors.New("from and to are required")
	}
	if !q.To.After(q.From) {
		return fmt.Errorf("to (%s) must be after from (%s)", q.To.Format(time.RFC3339), q.From.Format(time.RFC3339))
	}
	// The rollups are hourly: the period widens to whole hours.
	q.From = Hour(q.From)
	if h := Hour(q.To); !h.Equal(q.To.UTC()) {
		q.To = h.Add(time.Hour)
	} else {
		q.To = h
	}
	switch q.Interval {
	case IntervalNone, IntervalDay, IntervalWeek, IntervalMonth:
	default:
		return fmt.Errorf("interval %q is not one of DAY, WEEK, MONTH", q.Interval)
	}
	for _, d := range q.GroupBy {
		switch d {
		case DimProgram, DimScenario, DimStep, DimVariant, DimCampaign:
		default:
			return fmt.Errorf("cannot group by %q", d)
		}
	}
	if q.Location == nil {
		q.Location = time.UTC
	}
	if q.Interval != IntervalNone {
		n := 0
		for s := bucketStart(q.From.In(q.Location), q.Interval); s.Before(q.To); s = next(s, q.Interval) {
			if _, off := s.Zone(); off%3600 != 0 {
				return fmt.Errorf("time zone %s is %s from UTC on %s: intervals need a whole-hour offset, since the rollups are hourly",
					q.Location, time.Duration(off)*time.Second, s.Format("2006-01-02"))
			}
			if n++; n > MaxBuckets {
				return fmt.Errorf("the period holds more than %d intervals; use a longer interval or a shorter period", MaxBuckets)
			}
		}
	}
	return nil
}

func bucketStart(t time.Time, iv Interval) time.Time {
	y, m, d := t.Date()
	switch iv {
	case IntervalWeek:
		wd := (int(t.Weekday()) + 6) % 7 // Monday = 0
		return time.Date(y, m, d-wd, 0, 0, 0, 0, t.Location())
	case IntervalMonth:
		return time.Date(y, m, 1, 0, 0, 0, 0, t.Location())
	default:
		return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
	}
}

func next(t time.Time, iv Interval) time.Time {
	switch iv {
	case IntervalWeek:
		return t.AddDate(0, 0, 7)
	case IntervalMonth:
		return t.AddDate(0, 1, 0)
	default:
		return t.AddDate(0, 0, 1)
	}
}

type hourRow struct {
	Hour   *time.Time `bun:"hour"`
	Bucket string     `bun:"bkt"`
	Group  string     `bun:"grp"`
	Counters
}

type revenueRow struct {
	Hour     *time.Time `bun:"hour"`
	Bucket   string     `bun:"bkt"`
	Group    string     `bun:"grp"`
	Currency string     `bun:"currency"`
	Minor    int64      `bun:"revenue_minor"`
}

// bucketKey is how a bucket computed by PostgreSQL is named: its local
// start date.
const bucketKey = "2006-01-02"

// daily reports whether q can be answered from the daily rollups: its
// period and every interval boundary fall on a UTC midnight (totals over
// whole UTC days, or days, weeks and months in UTC or any zone at offset
// zero over the period).
func (q *Query) daily() bool {
	midnight := func(t time.Time) bool { return t.Unix()%86400 == 0 }
	if !midnight(q.From) || !midnight(q.To) {
		return false
	}
	for _, b := range q.buckets() {
		if !midnight(b.Start) || !midnight(b.End) {
			return false
		}
	}
	return true
}

// Compute answers q with two SQL statements (counters, then revenue),
// whatever the number of groups. Series come in key order.
//
// It reads the daily rollups when the period and its intervals fall on
// UTC midnights, the hourly ones otherwise. Without an interval the rows
// are summed over the period in SQL. With one, PostgreSQL cuts them into
// local days, weeks or months itself (date_trunc in the time zone,
// daylight saving included); SQLite returns the hours (or days) and they
// are cut here. With a segment filter it reads the members' messages
// instead (computeSegment).
func Compute(ctx context.Context, db bun.IDB, q Query) ([]*Series, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if q.Segment != nil {
		return computeSegment(ctx, db, q)
	}
	table, tcol := "kpi_hourly", "hour"
	if q.daily() {
		table, tcol = "kpi_daily", "day"
	}
	group, dims := "''", []string{}
	if len(q.GroupBy) > 0 {
		for _, d := range q.GroupBy {
			dims = append(dims, string(d))
		}
		group = strings.Join(dims, " || '"+KeySep+"' || ")
	}
	where, wargs := q.where(tcol)
	var timeCol string
	var args []any
	switch {
	case q.Interval == IntervalNone:
	case db.Dialect().Name() == dialect.PG:
		unit := map[Interval]string{IntervalDay: "day", IntervalWeek: "week", IntervalMonth: "month"}[q.Interval]
		timeCol = "to_char(date_trunc('" + unit + "', " + tcol + " AT TIME ZONE ?), 'YYYY-MM-DD') AS bkt, "
		args = append(args, q.Location.String())
		dims = append([]string{"bkt"}, dims...)
	default:
		timeCol = tcol + " AS hour, "
		dims = append([]string{tcol}, dims...)
	}
	args = append(args, wargs...)
	groupBy := ""
	if len(dims) > 0 {
		groupBy = " GROUP BY " + strings.Join(dims, ", ")
	}
	sums := make([]string, len(counterColumns))
	for i, c := range counterColumns {
		sums[i] = "COALESCE(SUM(" + c + "), 0) AS " + c
	}
	var rows []hourRow
	if err := db.NewRaw("SELECT "+timeCol+group+" AS grp, "+strings.Join(sums, ", ")+" FROM "+table+" WHERE "+where+
		groupBy, args...).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("read hourly counters: %w", err)
	}
	var revs []revenueRow
	revGroup := " GROUP BY " + strings.Join(append(dims, "currency"), ", ")
	if err := db.NewRaw("SELECT "+timeCol+group+" AS grp, currency, SUM(revenue_minor) AS revenue_minor FROM "+table+"_revenue WHERE "+
		where+revGroup, args...).Scan(ctx, &revs); err != nil {
		return nil, fmt.Errorf("read hourly revenue: %w", err)
	}
	return q.assemble(rows, revs), nil
}

// assemble sums counter and revenue rows into series, in key order.
func (q *Query) assemble(rows []hourRow, revs []revenueRow) []*Series {
	set := q.newSeriesSet()
	series := set.get
	index := q.bucketIndex()
	for _, r := range rows {
		s := series(r.Group)
		s.Total.add(r.Counters)
		if b := q.bucketOf(s, index, r.Hour, r.Bucket); b != nil {
			b.add(r.Counters)
		}
	}
	for _, r := range revs {
		s := series(r.Group)
		s.Total.addRevenue(r.Currency, r.Minor)
		if b := q.bucketOf(s, index, r.Hour, r.Bucket); b != nil {
			b.addRevenue(r.Currency, r.Minor)
		}
	}
	return set.sorted()
}

// seriesSet gathers the series of a query's result by key, each with the
// query's buckets.
type seriesSet struct {
	q     *Query
	byKey map[string]*Series
}

func (q *Query) newSeriesSet() *seriesSet { return &seriesSet{q: q, byKey: map[string]*Series{}} }

// get returns the series of key, made on first use.
func (ss *seriesSet) get(key string) *Series {
	s := ss.byKey[key]
	if s == nil {
		s = &Series{Key: key, Buckets: ss.q.buckets()}
		ss.byKey[key] = s
	}
	return s
}

// sorted returns the series in key order; an ungrouped query always has
// its one series, empty or not.
func (ss *seriesSet) sorted() []*Series {
	if len(ss.q.GroupBy) == 0 {
		ss.get("")
	}
	out := make([]*Series, 0, len(ss.byKey))
	for _, s := range ss.byKey {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func (q *Query) where(tcol string) (string, []any) {
	conds := []string{tcol + " >= ?", tcol + " < ?"}
	args := []any{q.From.UTC(), q.To.UTC()}
	for _, f := range []struct {
		col string
		v   *string
	}{{"program", q.Program}, {"scenario", q.Scenario}, {"step", q.Step}, {"variant", q.Variant}, {"campaign", q.Campaign}} {
		if f.v != nil {
			conds = append(conds, f.col+" = ?")
			args = append(args, *f.v)
		}
	}
	return strings.Join(conds, " AND "), args
}

// buckets returns the empty intervals of the period, the first starting
// at or before From and the last ending at or after To.
func (q *Query) buckets() []*Bucket {
	if q.Interval == IntervalNone {
		return nil
	}
	var out []*Bucket
	for s := bucketStart(q.From.In(q.Location), q.Interval); s.Before(q.To); s = next(s, q.Interval) {
		out = append(out, &Bucket{Start: s, End: next(s, q.Interval)})
	}
	return out
}

// bucketIndex maps the local start date of each interval to its index.
func (q *Query) bucketIndex() map[string]int {
	bs := q.buckets()
	m := make(map[string]int, len(bs))
	for i, b := range bs {
		m[b.Start.Format(bucketKey)] = i
	}
	return m
}

// bucketOf finds the interval that holds an hour (binary search), or that
// starts on the local date key (index).
func (q *Query) bucketOf(s *Series, index map[string]int, hour *time.Time, key string) *Bucket {
	bs := s.Buckets
	switch {
	case key != "":
		if i, ok := index[key]; ok && i < len(bs) {
			return bs[i]
		}
	case hour != nil:
		i := sort.Search(len(bs), func(i int) bool { return bs[i].End.After(*hour) })
		if i < len(bs) && !hour.Before(bs[i].Start) {
			return bs[i]
		}
	}
	return nil
}

// EmptySeries is the answer of a validated q for a group with no messages:
// zero totals and every interval empty.
func (q *Query) EmptySeries() *Series { return &Series{Buckets: q.buckets()} }
