package kpi

import (
	"context"
	"sort"
	"strings"

	"github.com/uptrace/bun"
)

// CubeDims are the dimensions a Cube is grouped by.
var CubeDims = []Dim{DimScenario, DimVariant, DimCampaign}

// Cube is one query's answer cut into local days and grouped by CubeDims,
// from which every coarser question over the same period and time zone is
// summed in memory (Derive): the dashboard's totals, per-program days and
// A/B variants come from one scan of the rollups instead of three.
type Cube struct {
	q      Query
	series []*Series
}

// NewCube computes the cube of the period and time zone of q (its filter,
// interval and groups are ignored). It returns nil, and no error, when the
// period cannot be cut into local days (more than MaxBuckets of them, or a
// zone whose offset is not whole hours).
func NewCube(ctx context.Context, db bun.IDB, q Query) (*Cube, error) {
	q = Query{From: q.From, To: q.To, Location: q.Location, Interval: IntervalDay, GroupBy: CubeDims}
	if err := q.Validate(); err != nil {
		return nil, nil
	}
	out, err := Compute(ctx, db, q)
	if err != nil {
		return nil, err
	}
	return &Cube{q: q, series: out}, nil
}

// Derive answers q from the cube, in key order as Compute does; false when
// q is not one the cube holds (another period or zone, a filter, or a
// group outside CubeDims).
func (c *Cube) Derive(q Query) ([]*Series, bool) {
	if err := q.Validate(); err != nil || !q.From.Equal(c.q.From) || !q.To.Equal(c.q.To) ||
		q.Location.String() != c.q.Location.String() || q.Filter != (Filter{}) {
		return nil, false
	}
	pick := make([]int, len(q.GroupBy))
	for i, d := range q.GroupBy {
		pick[i] = -1
		for j, cd := range CubeDims {
			if d == cd {
				pick[i] = j
			}
		}
		if pick[i] < 0 {
			return nil, false
		}
	}
	set := q.newSeriesSet()
	parts := make([]string, len(pick))
	for _, cs := range c.series {
		key := ""
		if len(pick) > 0 {
			vals := strings.Split(cs.Key, KeySep)
			for i, j := range pick {
				parts[i] = vals[j]
			}
			key = strings.Join(parts, KeySep)
		}
		s := set.get(key)
		addTotals(&s.Total, cs.Total)
		if q.Interval == IntervalNone {
			continue
		}
		for _, b := range cs.Buckets {
			if b.Counters.zero() && len(b.Revenue) == 0 {
				continue
			}
			start := b.Start
			i := sort.Search(len(s.Buckets), func(i int) bool { return s.Buckets[i].End.After(start) })
			if i < len(s.Buckets) && !start.Before(s.Buckets[i].Start) {
				addTotals(&s.Buckets[i].Totals, b.Totals)
			}
		}
	}
	return set.sorted(), true
}

func addTotals(t *Totals, o Totals) {
	t.add(o.Counters)
	for cur, v := range o.Revenue {
		t.addRevenue(cur, v)
	}
}
