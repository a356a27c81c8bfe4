package campaign

import (
	"fmt"
	"sort"
	"strings"

	"github.com/refrain-dev/refrain/plugin/kpi"
	"github.com/refrain-dev/refrain/plugin/stats"
)

// ABMetric is the rate an A/B test compares.
type ABMetric string

// The metrics of an A/B test.
const (
	ABClickRate      ABMetric = "click_rate"
	ABOpenRate       ABMetric = "open_rate"
	ABConversionRate ABMetric = "conversion_rate"
)

// Rate is the metric's rate over c: its successes over the delivered
// messages. An unknown metric is the click rate.
func (m ABMetric) Rate(c kpi.Counters) kpi.Rate {
	switch m {
	case ABOpenRate:
		return kpi.Rate{Numerator: "unique_opens", Denominator: "delivered", Num: c.UniqueOpens, Den: c.Delivered}
	case ABConversionRate:
		return kpi.Rate{Numerator: "conversions", Denominator: "delivered", Num: c.Conversions, Den: c.Delivered}
	}
	return kpi.Rate{Numerator: "unique_clicks", Denominator: "delivered", Num: c.UniqueClicks, Den: c.Delivered}
}

// ComparedVariant is one variant's totals and result against control.
type ComparedVariant struct {
	Name             string
	Totals           kpi.Totals
	Rate             kpi.Rate
	ProbBeatsControl float64
	Decision         stats.Decision
}

// Comparison is the comparison of the variants of one scenario or campaign.
type Comparison struct {
	Metric  ABMetric
	Control string
	// Rule is the decision rule with its defaults filled in.
	Rule     stats.Rule
	Variants []ComparedVariant
}

// ABTestOpts chooses what CompareVariants compares.
type ABTestOpts struct {
	// Metric defaults to ABClickRate.
	Metric ABMetric
	// Control is the variant asked for, nil for the default: DefaultControl
	// when it sent messages, else the first variant by name.
	Control        *string
	DefaultControl string
	Rule           stats.Rule
}

// CompareVariants compares the variants of owner (a scenario id) in
// series, the KPI series grouped by scenario then variant (keys joined
// with kpi.KeySep). ok is false when owner sent no message of a variant in
// the period. A control that sent nothing is an InputError on "control".
func CompareVariants(series map[string]*kpi.Series, owner string, o ABTestOpts) (test *Comparison, ok bool, err error) {
	var names []string
	byName := map[string]*kpi.Series{}
	for key, s := range series {
		sc, variant, _ := strings.Cut(key, kpi.KeySep)
		if sc == owner && variant != "" {
			names = append(names, variant)
			byName[variant] = s
		}
	}
	if len(names) == 0 {
		return nil, false, nil
	}
	sort.Strings(names)
	ctl := names[0]
	if _, ok := byName[o.DefaultControl]; ok {
		ctl = o.DefaultControl
	}
	if o.Control != nil {
		if _, ok := byName[*o.Control]; !ok {
			return nil, false, bad("control", "control variant %q sent no message in the period (variants: %s)", *o.Control, strings.Join(names, ", "))
		}
		ctl = *o.Control
	}
	m := o.Metric
	if m == "" {
		m = ABClickRate
	}
	arms := make([]stats.Arm, len(names))
	for i, n := range names {
		rt := m.Rate(byName[n].Total.Counters)
		arms[i] = stats.Arm{Name: n, Trials: rt.Den, Successes: rt.Num}
	}
	res, err := stats.Compare(arms, ctl, o.Rule)
	if err != nil {
		return nil, false, &InputError{Field: "rule", Problem: fmt.Sprint(err)}
	}
	rule := o.Rule
	if rule.MinSample == 0 {
		rule.MinSample = stats.DefaultMinSample
	}
	if rule.Threshold == 0 {
		rule.Threshold = stats.DefaultThreshold
	}
	out := &Comparison{Metric: m, Control: ctl, Rule: rule, Variants: make([]ComparedVariant, len(res))}
	for i, vr := range res {
		t := byName[names[i]].Total
		out.Variants[i] = ComparedVariant{Name: names[i], Totals: t, Rate: m.Rate(t.Counters), ProbBeatsControl: vr.ProbBeatsControl, Decision: vr.Decision}
	}
	return out, true, nil
}
