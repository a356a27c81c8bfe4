package stats_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/stats"
)

// Closed forms worked by hand from the Beta densities (uniform prior):
//   - equal posteriors give exactly 1/2 by symmetry;
//   - A with no trial is Beta(1,1), B with 1 success in 1 trial is
//     Beta(2,1): P = integral of 2x*x over [0,1] = 2/3;
//   - A with 0 of 1 is Beta(1,2), B with 1 of 1 is Beta(2,1):
//     P = 2 * integral of u^2 (2-u) over [0,1] = 5/6.
//
// These are the worked cases of Evan Miller's derivation
// (https://www.evanmiller.org/bayesian-ab-testing.html), whose formula
// ProbBBeatsA implements; the larger cases are checked against an
// independent numerical integration of the two posteriors.
func TestProbBBeatsAClosedForms(t *testing.T) {
	cases := []struct {
		a, b stats.Arm
		want float64
	}{
		{stats.Arm{Trials: 10, Successes: 3}, stats.Arm{Trials: 10, Successes: 3}, 0.5},
		{stats.Arm{Trials: 1000, Successes: 100}, stats.Arm{Trials: 1000, Successes: 100}, 0.5},
		{stats.Arm{}, stats.Arm{Trials: 1, Successes: 1}, 2.0 / 3},
		{stats.Arm{Trials: 1}, stats.Arm{Trials: 1, Successes: 1}, 5.0 / 6},
		{stats.Arm{Trials: 1, Successes: 1}, stats.Arm{Trials: 1}, 1.0 / 6},
	}
	for _, c := range cases {
		got, err := stats.ProbBBeatsA(c.a, c.b)
		require.NoError(t, err)
		require.InDelta(t, c.want, got, 1e-12, "%+v vs %+v", c.a, c.b)
	}
}

func TestProbBBeatsAAgainstNumericalIntegration(t *testing.T) {
	cases := [][2]stats.Arm{
		{{Trials: 200, Successes: 120}, {Trials: 200, Successes: 100}},
		{{Trials: 1000, Successes: 100}, {Trials: 1000, Successes: 130}},
		{{Trials: 5000, Successes: 500}, {Trials: 5000, Successes: 510}},
		{{Trials: 40, Successes: 2}, {Trials: 35, Successes: 6}},
	}
	for _, c := range cases {
		got, err := stats.ProbBBeatsA(c[0], c[1])
		require.NoError(t, err)
		require.InDelta(t, integrate(c[0], c[1]), got, 2e-4, "%+v vs %+v", c[0], c[1])
	}
	// And the two orders add up to one.
	ab, _ := stats.ProbBBeatsA(cases[1][0], cases[1][1])
	ba, _ := stats.ProbBBeatsA(cases[1][1], cases[1][0])
	require.InDelta(t, 1, ab+ba, 1e-9)
}

// integrate computes P(pB > pA) = sum over x of fB(x) * FA(x) on a fine grid,
// with FA the running sum of fA: no shared code with the closed form.
func integrate(a, b stats.Arm) float64 {
	const n = 200000
	dx := 1.0 / n
	pdf := func(arm stats.Arm, x float64) float64 {
		al, be := 1+float64(arm.Successes), 1+float64(arm.Trials-arm.Successes)
		la, _ := math.Lgamma(al)
		lb, _ := math.Lgamma(be)
		lab, _ := math.Lgamma(al + be)
		return math.Exp((al-1)*math.Log(x) + (be-1)*math.Log1p(-x) - (la + lb - lab))
	}
	cdfA, p := 0.0, 0.0
	for i := 0; i < n; i++ {
		x := (float64(i) + 0.5) * dx
		fa := pdf(a, x) * dx
		p += pdf(b, x) * dx * (cdfA + fa/2)
		cdfA += fa
	}
	return p
}

func TestCompareDecisions(t *testing.T) {
	// 10% against 15% on 1,000 each: B is far ahead and both arms have
	// the minimum sample.
	res, err := stats.Compare([]stats.Arm{{Name: "A", Trials: 1000, Successes: 100}, {Name: "B", Trials: 1000, Successes: 150}}, "A", stats.Rule{})
	require.NoError(t, err)
	require.Equal(t, stats.Control, res[0].Decision)
	require.Greater(t, res[1].ProbBeatsControl, 0.999)
	require.Equal(t, stats.BeatsControl, res[1].Decision)

	// The same gap the other way round loses to control.
	res, err = stats.Compare([]stats.Arm{{Name: "A", Trials: 1000, Successes: 150}, {Name: "B", Trials: 1000, Successes: 100}}, "A", stats.Rule{})
	require.NoError(t, err)
	require.Equal(t, stats.LosesToControl, res[1].Decision)
}

func TestCompareStaysNotYetConclusive(t *testing.T) {
	// A huge gap on 499 recipients: the probability is above 95% but the
	// minimum sample of 500 is not reached.
	res, err := stats.Compare([]stats.Arm{{Name: "A", Trials: 499, Successes: 20}, {Name: "B", Trials: 499, Successes: 80}}, "A", stats.Rule{})
	require.NoError(t, err)
	require.Greater(t, res[1].ProbBeatsControl, 0.999)
	require.Equal(t, stats.NotYetConclusive, res[1].Decision)

	// 10.0% against 10.2% on 5,000 each: plenty of sample, but the
	// probability (about 0.63) is below the threshold either way.
	res, err = stats.Compare([]stats.Arm{{Name: "A", Trials: 5000, Successes: 500}, {Name: "B", Trials: 5000, Successes: 510}}, "A", stats.Rule{})
	require.NoError(t, err)
	require.InDelta(t, 0.63, res[1].ProbBeatsControl, 0.03)
	require.Equal(t, stats.NotYetConclusive, res[1].Decision)

	// A custom rule: a lower threshold calls the 499-recipient case once
	// the minimum sample is lowered too.
	res, err = stats.Compare([]stats.Arm{{Name: "A", Trials: 499, Successes: 20}, {Name: "B", Trials: 499, Successes: 80}}, "A", stats.Rule{MinSample: 100, Threshold: 0.9})
	require.NoError(t, err)
	require.Equal(t, stats.BeatsControl, res[1].Decision)
}

func TestCompareErrors(t *testing.T) {
	_, err := stats.Compare([]stats.Arm{{Name: "A", Trials: 10}}, "control", stats.Rule{})
	require.ErrorIs(t, err, stats.ErrNoControl)
	_, err = stats.Compare([]stats.Arm{{Name: "A", Trials: 10, Successes: 11}}, "A", stats.Rule{})
	require.ErrorContains(t, err, `variant "A": successes 11 exceed trials 10`)
	_, err = stats.Compare([]stats.Arm{{Name: "A", Trials: 10}}, "A", stats.Rule{Threshold: 0.4})
	require.ErrorContains(t, err, "threshold 0.4")
}

func TestRateUplift(t *testing.T) {
	// Hand-worked: 30/100 against 20/100, difference 0.10, standard error
	// sqrt(0.3*0.7/100 + 0.2*0.8/100) = sqrt(0.0037) = 0.0608276.
	iv, err := stats.RateUplift(stats.Arm{Trials: 100, Successes: 30}, stats.Arm{Trials: 100, Successes: 20})
	require.NoError(t, err)
	require.InDelta(t, 0.10, iv.Estimate, 1e-12)
	require.InDelta(t, 0.10-1.959964*0.0608276, iv.Low, 1e-6)
	require.InDelta(t, 0.10+1.959964*0.0608276, iv.High, 1e-6)
	_, err = stats.RateUplift(stats.Arm{Trials: 100, Successes: 30}, stats.Arm{})
	require.ErrorContains(t, err, "holdout")
}

func TestMeanUplift(t *testing.T) {
	// Treated spends 1, 2, 3 (mean 2, variance 1); holdout 0, 0, 2
	// (mean 2/3, variance 4/3). Difference 4/3, standard error
	// sqrt(1/3 + 4/9) = sqrt(7/9).
	iv, err := stats.MeanUplift(stats.Sample{N: 3, Sum: 6, SumSq: 14}, stats.Sample{N: 3, Sum: 2, SumSq: 4})
	require.NoError(t, err)
	se := math.Sqrt(7.0 / 9)
	require.InDelta(t, 4.0/3, iv.Estimate, 1e-12)
	require.InDelta(t, 4.0/3-1.959964*se, iv.Low, 1e-5)
	require.InDelta(t, 4.0/3+1.959964*se, iv.High, 1e-5)
	_, err = stats.MeanUplift(stats.Sample{N: 1, Sum: 1, SumSq: 1}, stats.Sample{N: 3})
	require.Error(t, err)
}
