package predict_test

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/predict"
)

// The published CDNOW fits, the parameters of the synthetic customers.
var (
	cdnowBG = predict.BGNBD{R: 0.243, Alpha: 4.414, A: 0.793, B: 2.426}
	cdnowGG = predict.GammaGamma{P: 6.25, Q: 3.74, Gamma: 15.44}
)

// simulate draws n customers aged 27 to 39 weeks, like the CDNOW cohort.
func simulate(n int, seed uint64) []predict.Simulated {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]predict.Simulated, n)
	for i := range out {
		T := 27 + 12*rng.Float64()
		out[i] = predict.Simulate(rng, cdnowBG, cdnowGG, T, 39)
	}
	return out
}

// TestPaperExample checks the worked example of Fader, Hardie and Lee
// (2005, section 4): a customer with x = 2, t_x = 30.43 and T = 38.86
// expects 1.226 transactions in the next 39 weeks.
func TestPaperExample(t *testing.T) {
	e, err := cdnowBG.ConditionalExpected(39, 2, 30.43, 38.86)
	require.NoError(t, err)
	require.InDelta(t, 1.226, e, 0.0005)
	require.InDelta(t, 0.7266, cdnowBG.PAlive(2, 30.43, 38.86), 0.0001)
	require.Equal(t, 1.0, cdnowBG.PAlive(0, 0, 38.86))
	e, err = cdnowBG.ConditionalExpected(0, 2, 30.43, 38.86)
	require.NoError(t, err)
	require.Equal(t, 0.0, e)
}

// TestConditionalExpectedSimulated checks the conditional expectation and
// P(alive) against customers drawn from the model itself: by calibration
// frequency, the mean expectation matches the mean simulated holdout
// count, and the mean P(alive) the share of customers still active.
func TestConditionalExpectedSimulated(t *testing.T) {
	sims := simulate(200000, 7)
	const groups = 6
	var n [groups]int
	var actual, expected, alive, pAlive [groups]float64
	for _, s := range sims {
		g := min(s.Summary.X, groups-1)
		e, err := cdnowBG.ConditionalExpected(39, s.Summary.X, s.Summary.Recency, s.Summary.Age)
		require.NoError(t, err)
		n[g]++
		expected[g] += e
		actual[g] += float64(s.Holdout)
		pAlive[g] += cdnowBG.PAlive(s.Summary.X, s.Summary.Recency, s.Summary.Age)
		if s.Alive {
			alive[g]++
		}
	}
	for g := range groups {
		t.Logf("x=%d n=%d holdout %.3f expected %.3f alive %.3f P(alive) %.3f", g, n[g],
			actual[g]/float64(n[g]), expected[g]/float64(n[g]), alive[g]/float64(n[g]), pAlive[g]/float64(n[g]))
		require.InEpsilon(t, actual[g], expected[g], 0.05, "x = %d", g)
		require.InEpsilon(t, alive[g], pAlive[g], 0.03, "x = %d", g)
	}
}

// TestFitSimulated fits customers drawn from known parameters and finds
// them again.
func TestFitSimulated(t *testing.T) {
	sims := simulate(100000, 11)
	sums := make([]predict.Summary, len(sims))
	for i, s := range sims {
		sums[i] = s.Summary
	}
	m, err := predict.Fit(context.Background(), sums, nil)
	require.NoError(t, err)
	t.Logf("%+v %+v", m.Transactions, m.Spend)
	require.InEpsilon(t, cdnowBG.R, m.Transactions.R, 0.05)
	require.InEpsilon(t, cdnowBG.Alpha, m.Transactions.Alpha, 0.08)
	require.InEpsilon(t, cdnowBG.A, m.Transactions.A, 0.15)
	require.InEpsilon(t, cdnowBG.B, m.Transactions.B, 0.15)
	require.InEpsilon(t, cdnowGG.P, m.Spend.P, 0.05)
	require.InEpsilon(t, cdnowGG.Q, m.Spend.Q, 0.08)
	require.InEpsilon(t, cdnowGG.Gamma, m.Spend.Gamma, 0.10)
}

// TestFitRefuses checks the three refusals: too few customers, an
// optimiser stopped early, and a cancelled context.
func TestFitRefuses(t *testing.T) {
	ctx := context.Background()
	sums := make([]predict.Summary, 0, 500)
	for _, s := range simulate(500, 3) {
		sums = append(sums, s.Summary)
	}

	_, err := predict.Fit(ctx, sums[:99], nil)
	require.ErrorIs(t, err, predict.ErrTooLittleHistory)
	_, err = predict.Fit(ctx, sums, &predict.FitOpts{MinRepeaters: 400})
	require.ErrorIs(t, err, predict.ErrTooLittleHistory)

	_, err = predict.Fit(ctx, sums, &predict.FitOpts{MaxIterations: 2})
	require.ErrorIs(t, err, predict.ErrNotConverged)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = predict.Fit(cancelled, sums, nil)
	require.ErrorIs(t, err, context.Canceled)

	bad := append([]predict.Summary{{Customer: "c", X: 1, Recency: 5, Age: 3}}, sums...)
	_, err = predict.Fit(ctx, bad, nil)
	require.ErrorContains(t, err, `summary of "c"`)

	m, err := predict.Fit(ctx, sums, nil)
	require.NoError(t, err)
	require.Equal(t, 500, m.Customers)
}

// TestPredict checks one customer's prediction against the formulas and
// the refusal of a customer too young.
func TestPredict(t *testing.T) {
	m := &predict.Model{Transactions: cdnowBG, Spend: cdnowGG, MinAge: predict.DefaultMinAge}
	asOf := time.Date(1997, 9, 30, 0, 0, 0, 0, time.UTC)
	s := predict.Summary{Customer: "c", X: 2, Recency: 30.43, Age: 38.86, AvgValue: 40}
	p, err := m.Predict(s, asOf)
	require.NoError(t, err)

	require.InDelta(t, 0.7266, p.PAlive, 0.0001)
	for _, h := range []struct {
		days float64
		got  float64
	}{{30, p.ExpectedOrders30}, {90, p.ExpectedOrders90}, {365, p.ExpectedOrders365}} {
		want, err := cdnowBG.ConditionalExpected(h.days/7, 2, 30.43, 38.86)
		require.NoError(t, err)
		require.Equal(t, want, h.got)
	}
	require.Less(t, p.ExpectedOrders30, p.ExpectedOrders90)
	require.Less(t, p.ExpectedOrders90, p.ExpectedOrders365)
	// 39 weeks is 1.226 orders, so 52 are more.
	require.Greater(t, p.ExpectedOrders365, 1.226)

	// Median of the Lomax wait: (alpha+T)(2^(1/(r+x)) - 1) weeks.
	weeks := (4.414 + 38.86) * (math.Pow(2, 1/2.243) - 1)
	require.InDelta(t, weeks*7*24, p.NextOrderIn.Hours(), 1e-6)
	require.Equal(t, asOf.Add(p.NextOrderIn), p.ExpectedNextOrderAt)

	// Gamma-Gamma: p(gamma + x m)/(p x + q - 1).
	require.InDelta(t, 6.25*(15.44+2*40)/(6.25*2+3.74-1), p.AvgValue, 1e-9)
	require.InDelta(t, p.ExpectedOrders365*p.AvgValue, p.ExpectedValue12m, 1e-9)

	// A customer without repeat purchase gets the population mean value.
	p, err = m.Predict(predict.Summary{Customer: "d", Age: 20}, asOf)
	require.NoError(t, err)
	require.InDelta(t, 6.25*15.44/2.74, p.AvgValue, 1e-9)
	require.Equal(t, 1.0, p.PAlive)

	_, err = m.Predict(predict.Summary{Customer: "e", Age: 3.9}, asOf)
	require.ErrorIs(t, err, predict.ErrTooLittleHistory)
	_, err = m.Predict(predict.Summary{Customer: "f", X: 0, Recency: 2, Age: 10}, asOf)
	require.Error(t, err)
	require.NotErrorIs(t, err, predict.ErrTooLittleHistory)
}

// TestSummarize checks the summaries built from transactions: same-day
// purchases merged, later ones ignored, times in weeks.
func TestSummarize(t *testing.T) {
	day := func(m time.Month, d, h int) time.Time { return time.Date(1997, m, d, h, 0, 0, 0, time.UTC) }
	end := day(time.September, 30, 0)
	sums := predict.Summarize([]predict.Transaction{
		{Customer: "b", At: day(time.January, 1, 10), Value: 10},
		{Customer: "b", At: day(time.January, 15, 9), Value: 20},
		{Customer: "b", At: day(time.January, 15, 18), Value: 5},
		{Customer: "b", At: day(time.February, 12, 12), Value: 13},
		{Customer: "b", At: day(time.October, 1, 0), Value: 100},
		{Customer: "a", At: day(time.September, 2, 23), Value: 7},
		{Customer: "a", At: day(time.September, 2, 1), Value: 8},
		{Customer: "z", At: day(time.October, 2, 0), Value: 9},
	}, end)
	require.Equal(t, []predict.Summary{
		{Customer: "a", X: 0, Recency: 0, Age: 4},
		{Customer: "b", X: 2, Recency: 6, Age: 272.0 / 7, AvgValue: 19},
	}, sums)
}
