// Package stats holds the statistics behind A/B tests and holdouts: the
// Bayesian probability that a variant beats control on a rate
// (Beta-Binomial, exact), the decision rule that refuses to call a winner
// before the minimum sample and the probability threshold are reached, and
// the uplift of a treated group against a holdout with its interval.
//
// Everything here is pure arithmetic on counts: no storage, no clock.
package stats

import (
	"errors"
	"fmt"
	"math"
)

// Defaults of the decision rule.
const (
	// DefaultMinSample is the least number of trials per variant before a
	// decision is made.
	DefaultMinSample = 500
	// DefaultThreshold is the probability to beat control (or to lose to
	// it) a variant must reach to be called.
	DefaultThreshold = 0.95
)

// Arm is one variant of a test: Successes out of Trials (opens out of
// delivered, conversions out of recipients).
type Arm struct {
	Name      string
	Trials    int64
	Successes int64
}

// Validate reports an arm whose counts cannot be a binomial sample.
func (a Arm) Validate() error {
	switch {
	case a.Trials < 0:
		return fmt.Errorf("variant %q: trials %d is negative", a.Name, a.Trials)
	case a.Successes < 0:
		return fmt.Errorf("variant %q: successes %d is negative", a.Name, a.Successes)
	case a.Successes > a.Trials:
		return fmt.Errorf("variant %q: successes %d exceed trials %d", a.Name, a.Successes, a.Trials)
	}
	return nil
}

// Rate is Successes / Trials, 0 when there are no trials.
func (a Arm) Rate() float64 {
	if a.Trials == 0 {
		return 0
	}
	return float64(a.Successes) / float64(a.Trials)
}

// ProbBBeatsA is the probability that the true rate of b exceeds that of a
// when each rate has a uniform Beta(1, 1) prior updated by its counts, so
// pA ~ Beta(1+sA, 1+nA-sA) and pB ~ Beta(1+sB, 1+nB-sB).
//
// It is Evan Miller's exact closed form ("Formulas for Bayesian A/B
// Testing", https://www.evanmiller.org/bayesian-ab-testing.html):
//
//	P(pB > pA) = sum_{i=0}^{aB-1} B(aA+i, bA+bB) / ((bB+i) B(1+i, bB) B(aA, bA))
//
// summed in log space (log-beta through math.Lgamma), so it stays exact for
// tens of thousands of successes; the sum has aB terms.
func ProbBBeatsA(a, b Arm) (float64, error) {
	if err := a.Validate(); err != nil {
		return 0, err
	}
	if err := b.Validate(); err != nil {
		return 0, err
	}
	return probBeats(1+float64(a.Successes), 1+float64(a.Trials-a.Successes),
		1+float64(b.Successes), 1+float64(b.Trials-b.Successes)), nil
}

// probBeats is P(X_B > X_A) for X_A ~ Beta(aA, bA), X_B ~ Beta(aB, bB) with
// aB a whole number.
func probBeats(aA, bA, aB, bB float64) float64 {
	total := 0.0
	lbA := logBeta(aA, bA)
	for i := 0.0; i < aB; i++ {
		total += math.Exp(logBeta(aA+i, bA+bB) - math.Log(bB+i) - logBeta(1+i, bB) - lbA)
	}
	return math.Min(1, math.Max(0, total))
}

func logBeta(a, b float64) float64 {
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	return la + lb - lab
}

// Decision is the outcome of a test for one variant against control.
type Decision string

// Decisions.
const (
	// NotYetConclusive: too few trials, or the probability is between the
	// thresholds.
	NotYetConclusive Decision = "not_yet_conclusive"
	// BeatsControl: the variant beats control with at least the threshold
	// probability, on at least the minimum sample.
	BeatsControl Decision = "beats_control"
	// LosesToControl: control beats the variant with at least the threshold
	// probability, on at least the minimum sample.
	LosesToControl Decision = "loses_to_control"
	// Control is the decision reported for control itself.
	Control Decision = "control"
)

// Rule is when a decision may be made.
type Rule struct {
	// MinSample is the least number of trials in the variant and in
	// control (DefaultMinSample when 0).
	MinSample int64
	// Threshold is the probability needed, in (0.5, 1) (DefaultThreshold
	// when 0).
	Threshold float64
}

func (r Rule) withDefaults() (Rule, error) {
	if r.MinSample == 0 {
		r.MinSample = DefaultMinSample
	}
	if r.Threshold == 0 {
		r.Threshold = DefaultThreshold
	}
	if r.MinSample < 1 {
		return r, fmt.Errorf("minimum sample %d must be at least 1", r.MinSample)
	}
	if !(r.Threshold > 0.5 && r.Threshold < 1) {
		return r, fmt.Errorf("probability threshold %v must be between 0.5 and 1 (exclusive)", r.Threshold)
	}
	return r, nil
}

// VariantResult is one variant's result against control.
type VariantResult struct {
	Arm
	// ProbBeatsControl is P(variant rate > control rate); 0.5 for control.
	ProbBeatsControl float64
	Decision         Decision
}

// ErrNoControl is returned when the control arm is not among the arms.
var ErrNoControl = errors.New("the control variant has no results")

// Compare computes each arm's probability to beat the arm named control
// and the decision the rule allows. Arms keep their order.
func Compare(arms []Arm, control string, rule Rule) ([]VariantResult, error) {
	rule, err := rule.withDefaults()
	if err != nil {
		return nil, err
	}
	ci := -1
	for i, a := range arms {
		if err := a.Validate(); err != nil {
			return nil, err
		}
		if a.Name == control {
			ci = i
		}
	}
	if ci < 0 {
		return nil, fmt.Errorf("%w: %q", ErrNoControl, control)
	}
	ctl := arms[ci]
	out := make([]VariantResult, len(arms))
	for i, a := range arms {
		if i == ci {
			out[i] = VariantResult{Arm: a, ProbBeatsControl: 0.5, Decision: Control}
			continue
		}
		p, _ := ProbBBeatsA(ctl, a)
		d := NotYetConclusive
		if a.Trials >= rule.MinSample && ctl.Trials >= rule.MinSample {
			switch {
			case p >= rule.Threshold:
				d = BeatsControl
			case 1-p >= rule.Threshold:
				d = LosesToControl
			}
		}
		out[i] = VariantResult{Arm: a, ProbBeatsControl: p, Decision: d}
	}
	return out, nil
}

// Interval is an estimate with its two-sided 95% confidence bounds.
type Interval struct {
	Estimate, Low, High float64
}

// z95 is the standard normal quantile for a two-sided 95% interval.
const z95 = 1.959963984540054

// RateUplift is the difference of conversion rates, treated minus holdout,
// with its Wald 95% interval (normal approximation of the difference of
// two proportions). It needs trials in both groups.
func RateUplift(treated, holdout Arm) (Interval, error) {
	if err := treated.Validate(); err != nil {
		return Interval{}, err
	}
	if err := holdout.Validate(); err != nil {
		return Interval{}, err
	}
	if treated.Trials == 0 || holdout.Trials == 0 {
		return Interval{}, errors.New("uplift needs customers in both the treated group and the holdout")
	}
	p1, p0 := treated.Rate(), holdout.Rate()
	se := math.Sqrt(p1*(1-p1)/float64(treated.Trials) + p0*(1-p0)/float64(holdout.Trials))
	d := p1 - p0
	return Interval{Estimate: d, Low: d - z95*se, High: d + z95*se}, nil
}

// Sample summarises a per-customer amount (revenue per customer) by its
// count, sum and sum of squares, which is what rollups can keep.
type Sample struct {
	N          int64
	Sum, SumSq float64
}

// Mean is Sum / N, 0 for an empty sample.
func (s Sample) Mean() float64 {
	if s.N == 0 {
		return 0
	}
	return s.Sum / float64(s.N)
}

// variance is the unbiased sample variance.
func (s Sample) variance() float64 {
	if s.N < 2 {
		return 0
	}
	n := float64(s.N)
	v := (s.SumSq - s.Sum*s.Sum/n) / (n - 1)
	return math.Max(0, v)
}

// MeanUplift is the difference of means, treated minus holdout, with a 95%
// interval from the normal approximation of Welch's unequal-variance
// difference (adequate for the hundreds of customers a holdout needs). Each
// group needs at least two customers.
func MeanUplift(treated, holdout Sample) (Interval, error) {
	if treated.N < 2 || holdout.N < 2 {
		return Interval{}, errors.New("uplift of a mean needs at least two customers in the treated group and in the holdout")
	}
	se := math.Sqrt(treated.variance()/float64(treated.N) + holdout.variance()/float64(holdout.N))
	d := treated.Mean() - holdout.Mean()
	return Interval{Estimate: d, Low: d - z95*se, High: d + z95*se}, nil
}
